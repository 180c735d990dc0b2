package backupset

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// The partition-oriented metadata files (.blkid, .parted, .fdisk) are
// generated from the layout we read rather than by running blkid, parted
// and fdisk: the tools may be missing (parted is not installed on Raspberry
// Pi OS Lite), their output drifts between releases, and for an image
// file they would print the image's name instead of the device names a
// restore maps. raspiBackup's restore reads only the presence of .blkid,
// LABEL and TYPE from it, and the filesystem column of .parted; the rest
// is for humans and follows util-linux 2.38 / parted 3.5 as closely as the
// layout allows. The parsers read raspiBackup's files (made by the real
// tools) as well as ours.

// PartNamer names the device of partition number n as the files show it
// after /dev/, e.g. "mmcblk0p2".
type PartNamer func(n int) string

// BlkidEntry is one line of <host>-backup.blkid.
type BlkidEntry struct {
	Dev, UUID, Label, Type, PartUUID string
}

// WriteBlkid writes blkid(8) lines for every partition of d.
func WriteBlkid(w io.Writer, d *Disk, name PartNamer) error {
	var b strings.Builder
	for _, p := range d.Partitions {
		fmt.Fprintf(&b, "/dev/%s:", name(p.Number))
		if p.FSType == "vfat" && p.Label != "" {
			fmt.Fprintf(&b, " LABEL_FATBOOT=%q", p.Label)
		}
		if p.Label != "" {
			fmt.Fprintf(&b, " LABEL=%q", p.Label)
		}
		if p.UUID != "" {
			fmt.Fprintf(&b, " UUID=%q", p.UUID)
		}
		if p.FSType != "" {
			fmt.Fprintf(&b, " TYPE=%q", p.FSType)
		}
		if p.PartUUID != "" {
			fmt.Fprintf(&b, " PARTUUID=%q", p.PartUUID)
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// ParseBlkid parses `blkid` output lines by device name (without /dev/):
//
//	/dev/mmcblk0p1: LABEL_FATBOOT="bootfs" LABEL="bootfs" UUID="5E3D-A1B7" TYPE="vfat" PARTUUID="5e3da1b7-01"
//
// raspiBackup runs blkid for every device, so the file may list other
// disks too. Lines that are not a device's are skipped.
func ParseBlkid(r io.Reader) (map[string]BlkidEntry, error) {
	out := map[string]BlkidEntry{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		dev, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || !strings.HasPrefix(dev, "/dev/") {
			continue
		}
		e := BlkidEntry{Dev: strings.TrimPrefix(dev, "/dev/")}
		for _, kv := range splitQuoted(rest) {
			k, v, _ := strings.Cut(kv, "=")
			v = strings.Trim(v, `"`)
			switch k {
			case "UUID":
				e.UUID = v
			case "LABEL":
				e.Label = v
			case "TYPE":
				e.Type = v
			case "PARTUUID":
				e.PartUUID = v
			}
		}
		out[e.Dev] = e
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read blkid lines: %w", err)
	}
	return out, nil
}

// splitQuoted splits s at spaces outside double quotes.
func splitQuoted(s string) []string {
	var out []string
	var cur strings.Builder
	q := false
	for _, r := range s {
		switch {
		case r == '"':
			q = !q
			cur.WriteRune(r)
		case r == ' ' && !q:
			if cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
		}
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}
