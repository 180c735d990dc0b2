package restore

import (
	"fmt"
	"sort"
	"strings"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/disklayout"
	"github.com/pibackup/pibackup/internal/i18n"
	"github.com/pibackup/pibackup/internal/size"
)

// String is the plan in English (Text with an English printer).
func (p *Plan) String() string { return p.Text(i18n.New(i18n.English)) }

// Text describes the plan, in pr's language, for a person about to confirm
// it: the set, the target, the old and new partition tables, what is
// formatted and copied, the new ids, the cmdline.txt and fstab changes,
// and the space needed.
func (p *Plan) Text(pr *i18n.Printer) string {
	var b strings.Builder
	line := func(id i18n.ID, args ...any) { b.WriteString(pr.Sprintf(id, args...) + "\n") }
	s := p.set
	kind := pr.Sprintf(s.kind.msgID())
	if s.comp != backupset.CompressNone && s.payload != "" {
		kind += ", " + string(s.comp)
	}
	if s.manifest == nil {
		kind += ", " + pr.Sprintf(i18n.PlanKindNoManifest)
	}
	line(i18n.PlanRestoreHead, p.o.SetName, kind)
	line(i18n.PlanOnto, p.Target.Text(pr))
	if p.Target.IsFile && p.Target.Exists && p.Target.OldSize != p.Target.Size {
		line(i18n.PlanResizedFrom, size.Format(p.Target.OldSize))
	}
	if c := p.Target.Current; c != nil && len(c.Partitions) > 0 {
		writeSection(&b, pr, pr.Sprintf(i18n.PlanNowOnTarget), c, nil)
	}
	writeSection(&b, pr, pr.Sprintf(i18n.PlanSourceTable), p.Source, nil)
	writeSection(&b, pr, pr.Sprintf(i18n.PlanNewTable), p.Layout, p.Source)

	b.WriteString("\n")
	line(i18n.PlanSteps)
	for _, step := range p.steps(pr) {
		fmt.Fprintf(&b, "  - %s\n", step)
	}

	b.WriteString("\n")
	line(i18n.PlanIdentifiers)
	if p.o.KeepIDs {
		line(i18n.PlanKeptIDs)
	} else {
		line(i18n.PlanDiskID, p.ids.OldDiskID, p.ids.NewDiskID)
		for _, n := range sortedIDParts(p.ids) {
			pi := p.ids.Parts[n]
			if pi.NewPartUUID != "" {
				fmt.Fprintf(&b, "  PARTUUID  p%d  %s -> %s\n", n, pi.OldPartUUID, pi.NewPartUUID)
			}
			if pi.NewUUID != "" && (n == p.boot || n == p.root || p.set.kind == kindPartition) {
				fmt.Fprintf(&b, "  UUID      p%d  %s -> %s\n", n, orUnknown(pr, pi.OldUUID), pi.NewUUID)
			}
		}
	}
	if changes := p.previewChanges(pr); len(changes) > 0 {
		b.WriteString("\n")
		line(i18n.PlanBootConfig)
		for _, c := range changes {
			fmt.Fprintf(&b, "  %s\n", c)
		}
	}

	b.WriteString("\n")
	line(i18n.PlanSpace)
	if p.rootData > 0 {
		line(i18n.PlanRootData, size.Format(p.rootData))
	}
	if p.Need > 0 {
		line(i18n.PlanNeeds, size.Format(p.Need), p.Need, size.Format(p.Target.Size))
	} else {
		line(i18n.PlanFits, size.Format(p.Target.Size))
	}
	for _, n := range p.notes {
		line(i18n.PlanNote, n)
	}
	return b.String()
}

func orUnknown(pr *i18n.Printer, s string) string {
	if s == "" {
		return pr.Sprintf(i18n.PlanNotRecorded)
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
func (p *Plan) steps(pr *i18n.Printer) []string {
	s := p.set
	var out []string
	step := func(id i18n.ID, args ...any) { out = append(out, pr.Sprintf(id, args...)) }
	switch s.kind {
	case kindImage:
		if p.shrink != nil {
			out = append(out, p.shrinkSteps(pr)...)
			break
		}
		if s.manifest != nil {
			step(i18n.StepWriteImage, s.payload)
		} else {
			step(i18n.StepWriteImageRaw, s.payload)
		}
		if p.growRoot {
			step(i18n.StepGrowRoot, p.root, size.Format(p.resized.OldSize), size.Format(p.resized.NewSize))
		}
		if !p.o.KeepIDs {
			step(i18n.StepNewImageIDs)
		}
	case kindTar, kindRsync:
		if s.bootImg != "" {
			step(i18n.StepCopyBootImg, s.bootImg, p.boot)
		} else {
			step(i18n.StepBootTar, p.boot, s.bootTar)
		}
		step(i18n.StepFormatRoot, p.root, size.Format(p.partition(p.root).Size), p.labelText(pr))
		switch {
		case s.kind == kindTar:
			step(i18n.StepExtractTar, s.payload)
		case p.tree != nil:
			out = append(out, treeStep(pr, p.tree, false))
		default:
			step(i18n.StepRsyncTree, p.o.LocalDir)
		}
		if s.kind == kindTar && s.manifest != nil {
			step(i18n.StepCheckTar, s.payload)
		}
		step(i18n.StepFsck)
		for _, q := range p.Layout.Partitions {
			if q.Number != p.boot && q.Number != p.root && !disklayout.IsExtendedType(q.Type) {
				step(i18n.StepLeave, q.Number)
			}
		}
	case kindPartition:
		for _, n := range p.selected {
			pp := s.partPayloads[n]
			q := p.partition(n)
			if g := p.partTrees[n]; g != nil {
				step(i18n.StepFormatTree, n, orUnknown(pr, q.FSType), treeStep(pr, g, q.FSType == "vfat"))
				continue
			}
			step(i18n.StepFormatFill, n, orUnknown(pr, q.FSType), pp.name)
		}
	}
	if !p.o.KeepIDs {
		step(i18n.StepRewriteIDs)
	}
	step(i18n.StepTableLast)
	return out
}

// previewChanges shows the cmdline.txt and fstab rewrites known before
// the restore: the set's cmdline.txt (boot image) and fstab (rsync tree).
func (p *Plan) previewChanges(pr *i18n.Printer) []string {
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
			out = append(out, pr.Sprintf(i18n.PlanRootStays, strings.TrimPrefix(k, "/"), rootRefFromCmdline(p.cmdlines[k])))
		}
	}
	if p.fstab != "" {
		_, changes := p.ids.rewriteFstab(p.fstab)
		for _, c := range changes {
			out = append(out, c.String())
		}
	} else if p.root != 0 {
		out = append(out, pr.Sprintf(i18n.PlanFstabPreview, p.ids.partUUID(p.root), p.ids.partUUID(p.boot)))
	}
	return out
}

// writeSection prints a blank line, title and the layout d (see
// writeTable).
func writeSection(b *strings.Builder, pr *i18n.Printer, title string, d, old *backupset.Disk) {
	b.WriteString("\n" + title + "\n")
	writeTable(b, pr, d, old)
}

// writeTable prints a layout; with old, changed sizes and starts are
// marked.
func writeTable(b *strings.Builder, pr *i18n.Printer, d *backupset.Disk, old *backupset.Disk) {
	if d == nil {
		b.WriteString(pr.Sprintf(i18n.PlanNoTable) + "\n")
		return
	}
	b.WriteString(pr.Sprintf(i18n.PlanTableHead, d.Table, size.Format(d.Size), d.DiskID) + "\n")
	for _, q := range d.Partitions {
		b.WriteString(pr.Sprintf(i18n.PlanTableRow, q.Number, size.Format(q.Start), size.Format(q.Size), shortType(q.Type)))
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
					b.WriteString(pr.Sprintf(i18n.PlanGrownFrom, size.Format(o.Size)))
				case q.Size < o.Size:
					b.WriteString(pr.Sprintf(i18n.PlanShrunkFrom, size.Format(o.Size)))
				}
				if q.Start != o.Start {
					b.WriteString(pr.Sprintf(i18n.PlanMovedFrom, size.Format(o.Start)))
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
func treeStep(pr *i18n.Printer, g *goTree, fat bool) string {
	where := pr.Sprintf(i18n.PlanTheSetsTree)
	if g.root != "." {
		where = g.root + "/"
	}
	s := pr.Sprintf(i18n.StepTree, where, g.files, size.Format(g.bytes), g.listing)
	if !fat {
		s += pr.Sprintf(i18n.StepTreeMeta, g.listing, g.extras)
	}
	return s
}

// labelText is the " label NAME" of the root's format step ("" without a
// label).
func (p *Plan) labelText(pr *i18n.Printer) string {
	if p.rootLabel == "" {
		return ""
	}
	return pr.Sprintf(i18n.PlanLabel, p.rootLabel)
}
