package restore

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/disklayout"
)

// ids are the identifiers a restored (or cloned) disk carries, and those
// the source had, so cmdline.txt and /etc/fstab can be rewritten from one
// to the other.
type ids struct {
	OldDiskID, NewDiskID string
	// Per partition number.
	Parts map[int]*partIDs
	Boot  int // partition number of the boot (FAT) filesystem, 0 if none
	Root  int // partition number of the root filesystem
}

// partIDs holds one partition's identifiers before and after. An empty
// Old value is unknown (raspiBackup sets do not record filesystem UUIDs);
// an empty New value means "unchanged".
type partIDs struct {
	OldPartUUID, NewPartUUID string
	OldUUID, NewUUID         string // filesystem UUID; FAT: "ABCD-1234"
	Label                    string // filesystem label, kept
}

// partUUID returns the PARTUUID partition n has after the restore.
func (m *ids) partUUID(n int) string {
	p := m.Parts[n]
	if p == nil {
		return ""
	}
	if p.NewPartUUID != "" {
		return p.NewPartUUID
	}
	return p.OldPartUUID
}

// fsUUID returns the filesystem UUID partition n has after the restore.
func (m *ids) fsUUID(n int) string {
	p := m.Parts[n]
	if p == nil {
		return ""
	}
	if p.NewUUID != "" {
		return p.NewUUID
	}
	return p.OldUUID
}

// newIDs decides the identifiers of layout (the disk about to be written,
// a copy of src resized): with keep, the source's; otherwise fresh random
// ones, as raspiBackup's --updateUUIDs does (so the copy and the original
// can be attached to one machine, and blkid never confuses them). layout's
// DiskID and PartUUIDs are set accordingly.
func newIDs(src, layout *backupset.Disk, boot, root int, keep bool) (*ids, error) {
	m := &ids{OldDiskID: src.DiskID, NewDiskID: src.DiskID, Parts: map[int]*partIDs{}, Boot: boot, Root: root}
	if !keep {
		switch layout.Table {
		case "dos":
			old, _ := disklayout.ParseMBRDiskID(src.DiskID)
			id := old
			for id == old || id == 0 {
				id = randUint32()
			}
			m.NewDiskID = disklayout.FormatMBRDiskID(id)
		case "gpt":
			m.NewDiskID = strings.ToUpper(uuid.NewString())
		default:
			return nil, fmt.Errorf("partition table %q not supported", layout.Table)
		}
	}
	layout.DiskID = m.NewDiskID
	newID, _ := disklayout.ParseMBRDiskID(m.NewDiskID)
	for i := range layout.Partitions {
		p := &layout.Partitions[i]
		pi := &partIDs{OldPartUUID: strings.ToLower(p.PartUUID), OldUUID: p.UUID, Label: p.Label}
		if layout.Table == "dos" {
			pi.OldPartUUID = disklayout.MBRPartUUID(mustMBRID(src.DiskID), p.Number)
			p.PartUUID = disklayout.MBRPartUUID(newID, p.Number)
		} else if !keep || p.PartUUID == "" {
			p.PartUUID = uuid.NewString()
		}
		if p.PartUUID != pi.OldPartUUID {
			pi.NewPartUUID = strings.ToLower(p.PartUUID)
		}
		if !keep {
			switch {
			case p.Number == boot || p.FSType == "vfat":
				pi.NewUUID = fatSerialString(randUint32())
			case disklayout.IsExtendedType(p.Type) && layout.Table == "dos":
				// a container: no filesystem, no UUID
			case p.Number == root || strings.HasPrefix(p.FSType, "ext") || p.FSType == "swap" || p.FSType == "":
				pi.NewUUID = uuid.NewString()
			}
		}
		m.Parts[p.Number] = pi
	}
	return m, nil
}

func mustMBRID(s string) uint32 {
	v, _ := disklayout.ParseMBRDiskID(s)
	return v
}

func randUint32() uint32 {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("BUG: crypto/rand failed: " + err.Error())
	}
	return binary.LittleEndian.Uint32(b[:])
}

// fatSerialString formats a FAT volume serial as blkid and fstab show it.
func fatSerialString(v uint32) string { return fmt.Sprintf("%04X-%04X", v>>16, v&0xffff) }

// parseFATSerial parses "ABCD-1234".
func parseFATSerial(s string) (uint32, error) {
	var hi, lo uint32
	if _, err := fmt.Sscanf(s, "%04X-%04X", &hi, &lo); err != nil {
		return 0, fmt.Errorf("FAT serial %q: %w", s, err)
	}
	return hi<<16 | lo, nil
}

// change is one rewritten reference, shown in the plan and logged.
type change struct {
	File     string // "cmdline.txt" or "/etc/fstab"
	Old, New string // the reference before and after, e.g. "root=PARTUUID=5e3da1b7-02"
}

func (c change) String() string { return fmt.Sprintf("%s: %s -> %s", c.File, c.Old, c.New) }

// refFor returns the reference to partition n in the same form as old
// ("PARTUUID=...", "UUID=...", "LABEL=..."), naming what n has after the
// restore; ok is false for forms that name no id (a /dev path), which stay.
func (m *ids) refFor(old string, n int) (string, bool) {
	key, _, ok := strings.Cut(old, "=")
	if !ok {
		return old, false
	}
	switch strings.ToUpper(key) {
	case "PARTUUID":
		if v := m.partUUID(n); v != "" {
			return key + "=" + v, true
		}
	case "UUID":
		if v := m.fsUUID(n); v != "" {
			return key + "=" + v, true
		}
	case "LABEL":
		// A label is kept by the restore, so the reference stays valid.
		return old, false
	}
	return old, false
}

// partByOldRef finds the partition an fstab spec named on the source disk.
func (m *ids) partByOldRef(spec string) (int, bool) {
	key, val, ok := strings.Cut(spec, "=")
	if !ok {
		return 0, false
	}
	val = strings.ToLower(strings.Trim(val, `"`))
	for n, p := range m.Parts {
		switch strings.ToUpper(key) {
		case "PARTUUID":
			if p.OldPartUUID != "" && strings.EqualFold(p.OldPartUUID, val) {
				return n, true
			}
		case "UUID":
			if p.OldUUID != "" && strings.EqualFold(p.OldUUID, val) {
				return n, true
			}
		}
	}
	return 0, false
}

// rewriteCmdline points root= in a kernel command line at the restored
// root partition. Other parameters and the spacing are kept.
func (m *ids) rewriteCmdline(s string) (string, []change) {
	var changes []change
	var out strings.Builder
	rest := s
	for rest != "" {
		// Copy separators as they are.
		i := strings.IndexFunc(rest, func(r rune) bool { return r != ' ' && r != '\t' && r != '\n' && r != '\r' })
		if i < 0 {
			out.WriteString(rest)
			break
		}
		out.WriteString(rest[:i])
		rest = rest[i:]
		j := strings.IndexAny(rest, " \t\n\r")
		if j < 0 {
			j = len(rest)
		}
		tok := rest[:j]
		rest = rest[j:]
		if v, ok := strings.CutPrefix(tok, "root="); ok {
			if nv, ok := m.refFor(v, m.Root); ok && nv != v {
				changes = append(changes, change{File: "cmdline.txt", Old: tok, New: "root=" + nv})
				tok = "root=" + nv
			}
		}
		out.WriteString(tok)
	}
	return out.String(), changes
}

// isBootMount reports whether an fstab mount point is where the boot
// partition goes.
func isBootMount(mp string) bool {
	return mp == "/boot" || mp == "/boot/firmware" || strings.HasPrefix(mp, "/boot/")
}

// rewriteFstab points the entries of / and /boot* at the restored
// partitions, and every other entry that named a partition of the source
// disk by PARTUUID or UUID at the same partition on the new disk.
// Comments, spacing and all other fields are kept byte for byte.
func (m *ids) rewriteFstab(s string) (string, []change) {
	var changes []change
	lines := strings.SplitAfter(s, "\n")
	for i, line := range lines {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		f := strings.Fields(trimmed)
		if len(f) < 2 {
			continue
		}
		spec, mp := f[0], f[1]
		n := 0
		switch {
		case mp == "/":
			n = m.Root
		case isBootMount(mp) && m.Boot != 0:
			n = m.Boot
		default:
			n, _ = m.partByOldRef(spec)
		}
		if n == 0 {
			continue
		}
		nv, ok := m.refFor(spec, n)
		if !ok || nv == spec {
			continue
		}
		// Replace the first field only, where it is.
		at := strings.Index(line, spec)
		lines[i] = line[:at] + nv + line[at+len(spec):]
		changes = append(changes, change{File: "/etc/fstab", Old: spec + " " + mp, New: nv + " " + mp})
	}
	return strings.Join(lines, ""), changes
}

// rootLabelFromCmdline returns x for root=LABEL=x, so a restore that
// formats the root can give it the label the boot loader looks for.
func rootRefFromCmdline(s string) string {
	for _, tok := range strings.Fields(s) {
		if v, ok := strings.CutPrefix(tok, "root="); ok {
			return v
		}
	}
	return ""
}

// fstabSpec returns the spec of the entry mounted at mp ("" if none).
func fstabSpec(s, mp string) string {
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && !strings.HasPrefix(f[0], "#") && f[1] == mp {
			return f[0]
		}
	}
	return ""
}
