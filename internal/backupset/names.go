package backupset

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// The names of backupctl's own files in a set. raspiBackup's restore of an
// rsync set copies the whole set folder onto the new root and leaves out
// only its exclude /<host>-backup.* (<host> being the host in the set
// folder name, as for the boot files). So every file backupctl adds to a
// set is named <host>-backup.<something>: raspiBackup never copies it into
// a restored root, and its other lookups (.img, .tmg, .sfdisk, .mbr,
// .blkid, ...) match none of these suffixes.
const (
	SuffixManifest = "-backup.manifest.json" // the manifest (manifest.go)
	SuffixRunLog   = "-backup.backupctl.log" // the log of the run that wrote the set
	suffixTree     = "-backup.tree"          // + [.<part>] + .list: an rsync tree's listing
	suffixExtras   = "-backup.extras"        // + [.<part>] + .list: its symlink targets and xattrs
)

// The names backupctl gave its files before they followed the rule above.
// Sets made then keep them, so they are read (after the current name) and
// never written; an rsync tree's listing and extras file need no lookup,
// because the manifest names them (Tree.Listing, Tree.Extras).
const (
	LegacyManifestFile = "pibackup-manifest.json"
	LegacyRunLogFile   = "backupctl.log"
	legacyPrefix       = "pibackup-" // pibackup-tree[.<part>].list, pibackup-extras[.<part>].list
)

// ManifestName is the name the manifest of a set of host is written as,
// e.g. "pi-backup.manifest.json".
func ManifestName(host string) string { return host + SuffixManifest }

// RunLogName is the name the run log of a set of host is written as.
func RunLogName(host string) string { return host + SuffixRunLog }

// TreeListingName is the name of the listing of an rsync tree of a set of
// host: part is "" for the root tree of a normal-mode set, the partition
// (e.g. "mmcblk0p2") in partition-oriented mode.
func TreeListingName(host, part string) string { return host + suffixTree + dotPart(part) + ".list" }

// TreeExtrasName is the name of the extras file of an rsync tree, as
// TreeListingName.
func TreeExtrasName(host, part string) string { return host + suffixExtras + dotPart(part) + ".list" }

func dotPart(part string) string {
	if part == "" {
		return ""
	}
	return "." + part
}

// ManifestNames are the names the manifest of a set of host may have, in
// the order a reader tries them: the current name, then the legacy one.
func ManifestNames(host string) []string { return []string{ManifestName(host), LegacyManifestFile} }

// RunLogNames are the names the run log of a set of host may have, current
// first.
func RunLogNames(host string) []string { return []string{RunLogName(host), LegacyRunLogFile} }

// IsManifestName reports whether name, at the top of a set of host, is its
// manifest under the current or the legacy name.
func IsManifestName(host, name string) bool {
	return name == ManifestName(host) || name == LegacyManifestFile
}

// FindManifest returns the name of the manifest in the set folder dir of
// fsys: the current name if that file exists, else the legacy one. With
// neither, the error wraps fs.ErrNotExist (a raspiBackup set has none).
func FindManifest(fsys fs.FS, dir, host string) (string, error) {
	for _, n := range ManifestNames(host) {
		_, err := fs.Stat(fsys, path.Join(dir, n))
		if err == nil {
			return n, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("look for the manifest %s: %w", n, err)
		}
	}
	return "", fmt.Errorf("no %s or %s in %s: %w", ManifestName(host), LegacyManifestFile, dir, fs.ErrNotExist)
}

// ReadManifestIn finds (FindManifest), reads and checks the manifest of the
// set folder dir of fsys, and returns it with the name it has.
func ReadManifestIn(fsys fs.FS, dir, host string) (*Manifest, string, error) {
	name, err := FindManifest(fsys, dir, host)
	if err != nil {
		return nil, "", err
	}
	f, err := fsys.Open(path.Join(dir, name))
	if err != nil {
		return nil, name, fmt.Errorf("open %s: %w", name, err)
	}
	defer f.Close()
	m, err := ReadManifest(f)
	if err != nil {
		return nil, name, fmt.Errorf("%s: %w", name, err)
	}
	return m, name, nil
}

// OwnFilePatterns are the top-level names of a normal-mode rsync set of
// host that belong to the set and not to the backed-up tree, as anchored
// rsync patterns: ours (current and legacy names) and raspiBackup's logs.
// The backup's rsync neither copies a source file of these names over
// them nor deletes them, listings leave them out and a restore skips
// them. IsOwnFile is the same rule for one name.
func OwnFilePatterns(host string) []string {
	return []string{"/" + host + "-backup.*", "/" + legacyPrefix + "*", "/" + LegacyRunLogFile, "/" + LogFile, "/" + MsgFile}
}

// IsOwnFile reports whether name, at the top of a normal-mode rsync set of
// host, is one of the set's own files (OwnFilePatterns).
//
// The legacy names are left out of new sets too, so one rule lists the
// tree of a set of any age (verify regenerates the listings of old and new
// sets alike); a file of such a name at the top of a source root is not
// backed up, as it never was.
func IsOwnFile(host, name string) bool {
	return strings.HasPrefix(name, host+"-backup.") || strings.HasPrefix(name, legacyPrefix) ||
		name == LegacyRunLogFile || name == LogFile || name == MsgFile
}

// TreeExclude is the exclude function for treelist.Write that lists the
// tree of a normal-mode rsync set of host without the set's own files
// (IsOwnFile at the top of the tree). The backup writes the listing with
// it and verify regenerates a set's listing with it, so both leave out
// the same names.
func TreeExclude(host string) func(rel string) bool {
	return func(rel string) bool {
		return !strings.Contains(rel, "/") && IsOwnFile(host, rel)
	}
}

// RaspiBackupProblem says why raspiBackup's restore (0.7.x) cannot restore
// a set of type t whose payload is compressed with c, or "" when it can.
// It restores every other set backupctl writes: dd, ddz with gzip, tar
// (also with zstd: it runs tar -I zstd), tgz and rsync, in normal and
// partition-oriented mode.
func RaspiBackupProblem(t Type, c Compression) string {
	if t == TypeDDZ && c == CompressZstd {
		// Its ddz restore is gunzip -c IMAGE | dd, whatever the extension.
		return "raspiBackup restores a ddz image with gunzip and this one is zstd; -z gzip makes a ddz set it restores"
	}
	return ""
}

// RaspiBackupProblem is RaspiBackupProblem for a listed set, judged by its
// payload files.
func (s Set) RaspiBackupProblem() string {
	for _, p := range s.Payload {
		if why := RaspiBackupProblem(s.Name.Type, CompressionOf(p)); why != "" {
			return why
		}
	}
	return ""
}
