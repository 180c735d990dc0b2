package restore

import (
	"fmt"
	"sort"
	"strings"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/disklayout"
	"github.com/pibackup/pibackup/internal/size"
)

// String describes the plan for a person about to confirm it: the set,
// the target, the old and new partition tables, what is formatted and
// copied, the new ids, the cmdline.txt and fstab changes, and the space
// needed.
func (p *Plan) String() string {
	var b strings.Builder
	s := p.set
	kind := s.kind.String()
	if s.comp != backupset.CompressNone && s.payload != "" {
		kind += ", " + string(s.comp)
	}
	if s.manifest == nil {
		kind += ", raspiBackup set without manifest"
	}
	fmt.Fprintf(&b, "Restore %s (%s)\n", p.o.SetName, kind)
	fmt.Fprintf(&b, "onto    %s\n", p.Target.Describe())
	if p.Target.IsFile && p.Target.Exists && p.Target.OldSize != p.Target.Size {
		fmt.Fprintf(&b, "        (resized from %s)\n", size.Format(p.Target.OldSize))
	}
	if c := p.Target.Current; c != nil && len(c.Partitions) > 0 {
		b.WriteString("\nNow on the target (will be overwritten):\n")
		writeTable(&b, c, nil)
	}
	b.WriteString("\nSource partition table:\n")
	writeTable(&b, p.Source, nil)
	b.WriteString("\nNew partition table:\n")
	writeTable(&b, p.Layout, p.Source)

	b.WriteString("\nSteps:\n")
	for _, step := range p.steps() {
		fmt.Fprintf(&b, "  - %s\n", step)
	}

	b.WriteString("\nIdentifiers:\n")
	if p.o.KeepIDs {
		b.WriteString("  kept as in the source (--keep-ids): disk id, PARTUUIDs, filesystem UUIDs\n")
	} else {
		fmt.Fprintf(&b, "  disk id       %s -> %s\n", p.ids.OldDiskID, p.ids.NewDiskID)
		for _, n := range sortedIDParts(p.ids) {
			pi := p.ids.Parts[n]
			if pi.NewPartUUID != "" {
				fmt.Fprintf(&b, "  PARTUUID  p%d  %s -> %s\n", n, pi.OldPartUUID, pi.NewPartUUID)
			}
			if pi.NewUUID != "" && (n == p.boot || n == p.root || p.set.kind == kindPartition) {
				fmt.Fprintf(&b, "  UUID      p%d  %s -> %s\n", n, orUnknown(pi.OldUUID), pi.NewUUID)
			}
		}
	}
	if changes := p.previewChanges(); len(changes) > 0 {
		b.WriteString("\nBoot configuration:\n")
		for _, c := range changes {
			fmt.Fprintf(&b, "  %s\n", c)
		}
	}

	b.WriteString("\nSpace:\n")
	if p.rootData > 0 {
		fmt.Fprintf(&b, "  root data about %s\n", size.Format(p.rootData))
	}
	if p.Need > 0 {
		fmt.Fprintf(&b, "  the target needs at least %s (%d bytes); it has %s\n", size.Format(p.Need), p.Need, size.Format(p.Target.Size))
	} else {
		fmt.Fprintf(&b, "  the target has %s; the data fits (the source's root partition was no larger)\n", size.Format(p.Target.Size))
	}
	for _, n := range p.notes {
		fmt.Fprintf(&b, "  note: %s\n", n)
	}
	return b.String()
}

func orUnknown(s string) string {
	if s == "" {
		return "(not recorded)"
	}
	return s
}

func sortedIDParts(m *ids) []int {
	var out []int
	for n := range m.Parts {
		out = append(out, n)
	}
	sort.Ints(out)
	return out
}

// steps lists what Execute will do, in order.
func (p *Plan) steps() []string {
	s := p.set
	var out []string
	switch s.kind {
	case kindImage:
		if p.shrink != nil {
			out = append(out, p.shrinkSteps()...)
			break
		}
		if s.manifest != nil {
			out = append(out, fmt.Sprintf("write %s onto the whole target; the first MiB (partition table) only after the whole image matched its SHA-256 and size in the manifest", s.payload))
		} else {
			out = append(out, fmt.Sprintf("write %s onto the whole target (first MiB last)", s.payload))
		}
		if p.growRoot {
			out = append(out, fmt.Sprintf("grow partition %d from %s to %s and its filesystem (resize2fs)", p.root, size.Format(p.resized.OldSize), size.Format(p.resized.NewSize)))
		}
		if !p.o.KeepIDs {
			out = append(out, "give the root filesystem a new UUID (tune2fs -U) and the boot filesystem a new serial")
		}
	case kindTar, kindRsync:
		if s.bootImg != "" {
			out = append(out, fmt.Sprintf("copy %s into partition %d (boot)", s.bootImg, p.boot))
		} else {
			out = append(out, fmt.Sprintf("format partition %d FAT32 and extract %s into it", p.boot, s.bootTar))
		}
		label := ""
		if p.rootLabel != "" {
			label = " label " + p.rootLabel
		}
		out = append(out, fmt.Sprintf("format partition %d ext4 (%s%s)", p.root, size.Format(p.partition(p.root).Size), label))
		switch {
		case s.kind == kindTar:
			out = append(out, fmt.Sprintf("extract %s into it (GNU tar, numeric owners, xattrs, ACLs)", s.payload))
		case p.tree != nil:
			out = append(out, treeStep(p.tree, false))
		default:
			out = append(out, fmt.Sprintf("copy the tree of %s into it (rsync -aHAX)", p.o.LocalDir))
		}
		if s.kind == kindTar && s.manifest != nil {
			out = append(out, fmt.Sprintf("check %s against its SHA-256 in the manifest (hashed while it is extracted)", s.payload))
		}
		out = append(out, "e2fsck -fy the root filesystem")
		for _, q := range p.Layout.Partitions {
			if q.Number != p.boot && q.Number != p.root {
				out = append(out, fmt.Sprintf("leave partition %d unformatted (not in the backup)", q.Number))
			}
		}
	case kindPartition:
		for _, n := range p.selected {
			pp := s.partPayloads[n]
			q := p.partition(n)
			if g := p.partTrees[n]; g != nil {
				out = append(out, fmt.Sprintf("format partition %d %s and %s", n, orUnknown(q.FSType), treeStep(g, q.FSType == "vfat")))
				continue
			}
			out = append(out, fmt.Sprintf("format partition %d %s and fill it from %s", n, orUnknown(q.FSType), pp.name))
		}
	}
	if !p.o.KeepIDs {
		out = append(out, "rewrite root= in cmdline.txt and the / and /boot entries of /etc/fstab")
	}
	out = append(out, "write the partition table (last, so an interrupted restore leaves no half-valid disk)")
	return out
}

// previewChanges shows the cmdline.txt and fstab rewrites known before
// the restore: the set's cmdline.txt (boot image) and fstab (rsync tree).
func (p *Plan) previewChanges() []string {
	if p.o.KeepIDs || p.ids == nil {
		return nil
	}
	var out []string
	paths := make([]string, 0, len(p.cmdlines))
	for k := range p.cmdlines {
		paths = append(paths, k)
	}
	sort.Strings(paths)
	for _, k := range paths {
		_, changes := p.ids.rewriteCmdline(p.cmdlines[k])
		for _, c := range changes {
			c.File = strings.TrimPrefix(k, "/")
			out = append(out, c.String())
		}
		if len(changes) == 0 {
			out = append(out, fmt.Sprintf("%s: root=%s stays", strings.TrimPrefix(k, "/"), rootRefFromCmdline(p.cmdlines[k])))
		}
	}
	if p.fstab != "" {
		_, changes := p.ids.rewriteFstab(p.fstab)
		for _, c := range changes {
			out = append(out, c.String())
		}
	} else if p.root != 0 {
		out = append(out, fmt.Sprintf("/etc/fstab: entries for / and /boot* naming PARTUUID= or UUID= get %s and %s",
			p.ids.partUUID(p.root), p.ids.partUUID(p.boot)))
	}
	return out
}

// writeTable prints a layout; with old, changed sizes and starts are
// marked.
func writeTable(b *strings.Builder, d *backupset.Disk, old *backupset.Disk) {
	if d == nil {
		b.WriteString("  (none)\n")
		return
	}
	fmt.Fprintf(b, "  %s, %s, disk id %s\n", d.Table, size.Format(d.Size), d.DiskID)
	for _, q := range d.Partitions {
		fmt.Fprintf(b, "  %2d  start %10s  size %10s  type %-4s", q.Number, size.Format(q.Start), size.Format(q.Size), shortType(q.Type))
		if q.FSType != "" {
			fmt.Fprintf(b, "  %s", q.FSType)
		}
		if q.Label != "" {
			fmt.Fprintf(b, " %q", q.Label)
		}
		if old != nil {
			if o, ok := disklayout.PartitionByNumber(old, q.Number); ok {
				switch {
				case q.Size > o.Size:
					fmt.Fprintf(b, "  (grown from %s)", size.Format(o.Size))
				case q.Size < o.Size:
					fmt.Fprintf(b, "  (shrunk from %s)", size.Format(o.Size))
				}
				if q.Start != o.Start {
					fmt.Fprintf(b, "  (moved from %s)", size.Format(o.Start))
				}
			}
		}
		b.WriteString("\n")
	}
}

func shortType(t string) string {
	switch strings.ToUpper(t) {
	case "0FC63DAF-8483-4772-8E79-3D69D8477DE4":
		return "linux"
	case "C12A7328-F81F-11D2-BA4B-00A0C93EC93B":
		return "efi"
	case "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7":
		return "msdata"
	case "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F":
		return "swap"
	}
	return t
}

// treeStep describes how the Go tree restorer fills a filesystem (FAT:
// content and times only).
func treeStep(g *goTree, fat bool) string {
	where := "the set's tree"
	if g.root != "." {
		where = g.root + "/"
	}
	s := fmt.Sprintf("fill it file by file from %s: %d files (%s), each checked against its SHA-256 in %s while it is copied",
		where, g.files, size.Format(g.bytes), g.listing)
	if !fat {
		s += fmt.Sprintf("; owners, modes, times, xattrs, ACLs, capabilities, symlinks, hardlinks and device nodes from %s and %s", g.listing, g.extras)
	}
	return s
}
