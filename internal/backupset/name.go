// Package backupset names, parses, lists and sorts backup sets in
// raspiBackup's on-disk layout, and reads and writes the manifest that our
// own sets carry. It does no I/O beyond listing directories, so the rules
// that decide what a set is live in one place for backupctl and the
// recovery image alike.
package backupset

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Type is the kind of payload a set holds, as it appears in the set name.
type Type string

// The types raspiBackup knows. They appear verbatim in set names.
const (
	TypeDD    Type = "dd"
	TypeDDZ   Type = "ddz"
	TypeTar   Type = "tar"
	TypeTGZ   Type = "tgz"
	TypeRsync Type = "rsync"
)

// Types lists every valid type in raspiBackup's order.
var Types = []Type{TypeDD, TypeDDZ, TypeTar, TypeTGZ, TypeRsync}

// ParseType checks a type name.
func ParseType(s string) (Type, error) {
	for _, t := range Types {
		if string(t) == s {
			return t, nil
		}
	}
	return "", fmt.Errorf("unknown backup type %q (want dd, ddz, tar, tgz or rsync)", s)
}

// TimeLayout is the timestamp format in set names (YYYYMMDD-HHMMSS).
const TimeLayout = "20060102-150405"

// TmpDir is the folder under a host folder where sets in progress live.
// Nothing in it is ever a valid set.
const TmpDir = "tmp"

// Name is the parsed name of a set folder:
// <host>[@<osrelease>]-<type>-backup-<YYYYMMDD-HHMMSS>[_<snapshot>].
type Name struct {
	Host      string
	OSRelease string // "" for the old naming without @osrelease
	Type      Type
	Time      time.Time // local wall time as written, location UTC
	Snapshot  string    // the -M text after "_", "" when not a named snapshot
}

// nameRE follows raspiBackup's restore parser (§1.14 of the reference):
// the host may itself contain dashes, so the type and date anchor the match
// from the right.
var nameRE = regexp.MustCompile(`^(.+?)(?:@([A-Za-z0-9~]+))?-(dd|ddz|tar|tgz|rsync)-backup-([0-9]{8}-[0-9]{6})(?:_(.+))?$`)

// ErrNotASet is returned by Parse for names that are not set names.
var ErrNotASet = errors.New("not a backup set name")

// Parse parses a set folder name.
func Parse(s string) (Name, error) {
	m := nameRE.FindStringSubmatch(s)
	if m == nil {
		return Name{}, fmt.Errorf("%q: %w", s, ErrNotASet)
	}
	if strings.ContainsAny(m[1], "/@") {
		return Name{}, fmt.Errorf("%q: host part %q: %w", s, m[1], ErrNotASet)
	}
	t, err := time.Parse(TimeLayout, m[4])
	if err != nil {
		return Name{}, fmt.Errorf("%q: timestamp %q: %w", s, m[4], ErrNotASet)
	}
	return Name{Host: m[1], OSRelease: m[2], Type: Type(m[3]), Time: t, Snapshot: m[5]}, nil
}

// String formats the name as raspiBackup does.
func (n Name) String() string {
	var b strings.Builder
	b.WriteString(n.Host)
	if n.OSRelease != "" {
		b.WriteString("@" + n.OSRelease)
	}
	b.WriteString("-" + string(n.Type) + "-backup-" + n.Time.Format(TimeLayout))
	if n.Snapshot != "" {
		b.WriteString("_" + n.Snapshot)
	}
	return b.String()
}

// Series is the scope of link-dest and retention: same host, OS release and
// type, as raspiBackup scopes them.
func (n Name) Series() string {
	return n.Host + "@" + n.OSRelease + "-" + string(n.Type)
}

// OSReleaseTag turns /etc/os-release ID and VERSION_ID into the name part,
// replacing the characters raspiBackup replaces with "~" ("unknownOS" when
// both are empty).
func OSReleaseTag(id, versionID string) string {
	s := id + versionID
	if s == "" {
		return "unknownOS"
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '/', '\\', ':', '.', '-', '_':
			return '~'
		}
		return r
	}, s)
}

// SnapshotTag turns a -M text into the name suffix as raspiBackup does:
// space / \ : . - become "_" and double quotes are dropped.
func SnapshotTag(text string) string {
	text = strings.ReplaceAll(text, `"`, "")
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '/', '\\', ':', '.', '-':
			return '_'
		}
		return r
	}, text)
}

// ParseOSRelease reads ID and VERSION_ID out of /etc/os-release content.
func ParseOSRelease(content string) (id, versionID string) {
	for _, line := range strings.Split(content, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok {
			continue
		}
		v = strings.Trim(v, `"'`)
		switch k {
		case "ID":
			id = v
		case "VERSION_ID":
			versionID = v
		}
	}
	return id, versionID
}
