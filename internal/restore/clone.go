package restore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/blockdev"
	"github.com/pibackup/pibackup/internal/disklayout"
	"github.com/pibackup/pibackup/internal/i18n"
	"github.com/pibackup/pibackup/internal/progress"
	"github.com/pibackup/pibackup/internal/size"
)

// cloneMarker is the file at the root of a cloned root filesystem that
// marks it as ours: it names the source disk, so a second clone run knows
// it may sync instead of formatting. rsync excludes it (and so never
// deletes it).
const cloneMarker = ".pibackup-clone"

// marker is the content of cloneMarker.
type marker struct {
	SourceDiskID   string    `json:"source_disk_id"`
	SourceRootUUID string    `json:"source_root_uuid"`
	Cloned         time.Time `json:"cloned"`
}

// CloneOptions says what to clone where.
type CloneOptions struct {
	// Source is a disk or image file to clone; "" clones the running
	// system (its root and boot filesystems, live).
	Source string
	Target string // block device or image file
	Size   int64  // size for an image file that does not exist yet
	// RootSource is the disk or image holding the root filesystem when it
	// is not on Source's disk (an SD card that boots a USB root,
	// raspiBackup's "external root"); "" when it is. For the running
	// system it is found.
	RootSource string
	// RootTarget takes the copy of the root disk when boot and root are on
	// two disks (the boot partition goes to Target); RootSize sizes it
	// when it is an image file that does not exist yet.
	RootTarget string
	RootSize   int64
	// Sys is where the running system is found and the targets are
	// checked; the zero value means the running kernel's.
	Sys      blockdev.Sys
	Log      *slog.Logger
	Progress progress.Reporter
}

// ClonePlan is a decided clone.
type ClonePlan struct {
	Target *Target
	Source *backupset.Disk // the source disk's layout
	Layout *backupset.Disk // the target's layout after the clone
	// With an external root (boot and root on two disks), Target, Source
	// and Layout are the boot disk's; RootTarget, RootSource and
	// RootLayout the root disk's. Without, these are nil.
	RootTarget *Target
	RootSource *backupset.Disk
	RootLayout *backupset.Disk
	// Sync is true when the target already is a clone of this source with
	// the planned layout: only changes are copied, nothing is formatted.
	Sync bool
	Need int64 // the smallest (root) target that works

	o        CloneOptions
	log      *slog.Logger
	rep      progress.Reporter
	ids      *ids
	boot     int
	root     int
	live     bool   // the source is the running system
	srcDev   string // the source disk (image file or /dev/...)
	rootDev  string // the source's root disk when it is another one ("" otherwise)
	rootIDs  *ids   // the root disk's ids alone (external root), for the plan
	rootData int64
	why      i18n.Msg // why a full clone (not a sync) is planned
}

// CloneResult reports a clone.
type CloneResult struct {
	Result
	Sync bool // only changes were copied
	// RootTransferred is what rsync sent (its "Total transferred file
	// size"); BootWritten is what changed on the boot partition.
	RootTransferred int64
	FilesChanged    int64
	BootWritten     int64
}

// NewClonePlan reads source and target and decides the clone; it writes
// nothing.
func NewClonePlan(ctx context.Context, o CloneOptions) (*ClonePlan, error) {
	p := &ClonePlan{o: o, log: o.Log, rep: progress.OrNop(o.Progress)}
	if p.log == nil {
		p.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	sys := o.Sys.OrHost()
	liveRoot := 0 // the running root's partition number on its own disk
	if o.Source == "" {
		s, err := sys.FindSystem()
		if err != nil {
			return nil, fmt.Errorf("find the running system: %w", err)
		}
		p.live, p.srcDev = true, "/dev/"+s.RootPart.Disk
		if s.BootPart != nil && s.BootPart.Disk != s.RootPart.Disk {
			p.srcDev, p.rootDev, liveRoot = "/dev/"+s.BootPart.Disk, "/dev/"+s.RootPart.Disk, s.RootPart.Number
		}
	} else {
		p.srcDev, p.rootDev = o.Source, o.RootSource
	}
	switch {
	case p.rootDev != "" && o.RootTarget == "":
		return nil, fmt.Errorf("the root filesystem is on %s, the boot partition on %s: %w", p.rootDev, p.srcDev, ErrRootElsewhere)
	case p.rootDev == "" && o.RootTarget != "":
		return nil, fmt.Errorf("%s holds both boot and root: %w", p.srcDev, ErrNoRootDisk)
	}
	src, err := disklayout.ReadFile(p.srcDev)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", p.srcDev, err)
	}
	if ext, ok := disklayout.Extended(src); ok {
		return nil, fmt.Errorf("source %s has an extended partition (%d) with logical partitions (a NOOBS/PINN card); cloning it is %w: back it up with -P and restore that set", p.srcDev, ext.Number, ErrNotSupported)
	}
	p.Source = src
	p.boot, p.root = bootRoot(nil, src)
	rootSrc, rootDev := src, p.srcDev
	if p.rootDev != "" {
		if rootSrc, err = disklayout.ReadFile(p.rootDev); err != nil {
			return nil, fmt.Errorf("root source %s: %w", p.rootDev, err)
		}
		p.RootSource, rootDev = rootSrc, p.rootDev
		if _, p.root = bootRoot(nil, rootSrc); liveRoot != 0 {
			p.root = liveRoot
		}
		if p.boot == 0 {
			return nil, fmt.Errorf("source %s: no FAT boot partition found", p.srcDev)
		}
	}
	rootPart, ok := disklayout.PartitionByNumber(rootSrc, p.root)
	if !ok || !strings.HasPrefix(rootPart.FSType, "ext") {
		return nil, fmt.Errorf("source %s: no ext2/3/4 root partition found", rootDev)
	}
	if p.boot != 0 {
		if bp, _ := disklayout.PartitionByNumber(src, p.boot); bp.FSType != "vfat" {
			return nil, fmt.Errorf("source %s: partition %d is not FAT (%q)", p.srcDev, p.boot, bp.FSType)
		}
	}
	protect := []string{}
	if !p.live {
		protect = append(protect, o.Source)
		if o.RootSource != "" {
			protect = append(protect, o.RootSource)
		}
	}
	p.Target, err = inspectTarget(sys, o.Target, o.Size, protect)
	if err != nil {
		return nil, err
	}
	for _, t := range []string{o.Target, o.RootTarget} {
		if t != "" && (abs(t) == abs(p.srcDev) || p.rootDev != "" && abs(t) == abs(p.rootDev)) {
			return nil, fmt.Errorf("%s: %w", t, ErrSameDisk)
		}
	}
	if p.rootDev != "" {
		if abs(o.RootTarget) == abs(o.Target) {
			return nil, fmt.Errorf("%s: %w", o.RootTarget, ErrRootTargetIsTarget)
		}
		if p.RootTarget, err = inspectTarget(sys, o.RootTarget, o.RootSize, append(protect, o.Target)); err != nil {
			return nil, fmt.Errorf("root target: %w", err)
		}
		return p, p.planExternalRoot(rootPart)
	}
	layout, err := p.planRootDisk(src, rootPart, p.Target)
	if err != nil {
		return nil, err
	}
	p.Layout = layout
	p.Sync, p.why = p.canSync()
	if p.Sync {
		p.ids = syncIDs(src, p.Target.Current, p.boot, p.root)
		p.Layout = p.Target.Current
	} else {
		p.ids, err = newIDs(src, p.Layout, p.boot, p.root, false)
		if err != nil {
			return nil, err
		}
	}
	return p, nil
}

// planRootDisk measures the root's data and lays the disk holding it (src)
// out for target t: its root partition grown or shrunk to fill t, no
// smaller than the data needs.
func (p *ClonePlan) planRootDisk(src *backupset.Disk, rootPart *backupset.Partition, t *Target) (*backupset.Disk, error) {
	p.rootData = rootPart.FSUsed
	if p.live {
		if used, err := usedBytes("/"); err == nil {
			p.rootData = used
		}
	}
	minRoot := ext4Need(max(p.rootData-ext4Overhead(rootPart.Size), p.rootData/2))
	layout, _, err := disklayout.Resize(src, t.Size, disklayout.ResizeOptions{MinSize: minRoot})
	p.Need = disklayout.MinDiskSize(src) - rootPart.Size + minRoot
	return layout, err
}

// rootDiskKey: in the ids of a clone with an external root, the root
// disk's partitions are keyed by rootDiskKey+number, so one map names the
// partitions of both disks (cmdline.txt on the boot disk names the root
// disk's partition; fstab on the root names both).
const rootDiskKey = 1000

// planExternalRoot plans a clone whose boot partition (on p.Source) and
// root (on p.RootSource) are on two disks, onto two targets, as the
// source was and as raspiBackup's restore -R ("hybrid boot") keeps it: a
// Pi that cannot boot from USB needs its boot partition on the SD card.
// The boot target gets the boot partition alone, where it was; the root
// target the root disk's layout with its root partition fitted.
func (p *ClonePlan) planExternalRoot(rootPart *backupset.Partition) error {
	bootPart, _ := disklayout.PartitionByNumber(p.Source, p.boot)
	boot := cloneLayout(p.Source)
	boot.Partitions = []backupset.Partition{*bootPart}
	boot.Size = p.Target.Size
	if end := disklayout.MinDiskSize(boot); end > p.Target.Size {
		return &disklayout.TooSmallError{What: "boot target", Need: end, Have: p.Target.Size}
	}
	p.Layout = boot
	layout, err := p.planRootDisk(p.RootSource, rootPart, p.RootTarget)
	if err != nil {
		return fmt.Errorf("root target: %w", err)
	}
	p.RootLayout = layout
	p.Sync, p.why = p.canSync()
	var bootIDs, rootIDs *ids
	if p.Sync {
		p.Layout, p.RootLayout = p.Target.Current, p.RootTarget.Current
		bootIDs = syncIDs(p.Source, p.Layout, p.boot, 0)
		rootIDs = syncIDs(p.RootSource, p.RootLayout, 0, p.root)
	} else {
		if bootIDs, err = newIDs(p.Source, p.Layout, p.boot, 0, false); err != nil {
			return err
		}
		if rootIDs, err = newIDs(p.RootSource, p.RootLayout, 0, p.root, false); err != nil {
			return err
		}
	}
	p.rootIDs = rootIDs
	p.ids = &ids{OldDiskID: bootIDs.OldDiskID, NewDiskID: bootIDs.NewDiskID, Parts: map[int]*partIDs{}, Boot: p.boot, Root: rootDiskKey + p.root}
	for n, pi := range bootIDs.Parts {
		p.ids.Parts[n] = pi
	}
	for n, pi := range rootIDs.Parts {
		p.ids.Parts[rootDiskKey+n] = pi
	}
	return nil
}

// rootSide returns the disk the root is cloned from and onto: the root
// disk's source layout, target and planned layout, which are the boot
// disk's unless the root is external.
func (p *ClonePlan) rootSide() (src *backupset.Disk, t *Target, layout *backupset.Disk, dev string) {
	if p.RootTarget != nil {
		return p.RootSource, p.RootTarget, p.RootLayout, p.rootDev
	}
	return p.Source, p.Target, p.Layout, p.srcDev
}

// rootID is the root's key in p.ids.
func (p *ClonePlan) rootID() int {
	if p.RootTarget != nil {
		return rootDiskKey + p.root
	}
	return p.root
}

func abs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	return a
}

// canSync decides whether the target(s) already are our clone of the
// source: same partition positions and types as planned, an ext4 root
// carrying our marker for this source.
func (p *ClonePlan) canSync() (bool, i18n.Msg) {
	switch differsFrom(p.Target.Current, p.Layout) {
	case tableMissing:
		return false, i18n.M(i18n.CloneWhyNoTable)
	case tableOther:
		return false, i18n.M(i18n.CloneWhyOtherParts)
	}
	src, t, layout, _ := p.rootSide()
	if p.RootTarget != nil {
		switch differsFrom(t.Current, layout) {
		case tableMissing:
			return false, i18n.M(i18n.CloneWhyRootNoTable)
		case tableOther:
			return false, i18n.M(i18n.CloneWhyRootOther)
		}
	}
	root, _ := disklayout.PartitionByNumber(t.Current, p.root)
	if !strings.HasPrefix(root.FSType, "ext") {
		return false, i18n.M(i18n.CloneWhyNoExt4)
	}
	m, err := readMarker(t.Path, *root)
	if err != nil {
		return false, i18n.M(i18n.CloneWhyNoMarker, err.Error())
	}
	srcRoot, _ := disklayout.PartitionByNumber(src, p.root)
	if !strings.EqualFold(m.SourceDiskID, src.DiskID) || !strings.EqualFold(m.SourceRootUUID, srcRoot.UUID) {
		return false, i18n.M(i18n.CloneWhyOtherSource, m.SourceDiskID)
	}
	return true, i18n.Msg{}
}

// tableDiff is how a target's current partition table differs from the
// planned one.
type tableDiff int

const (
	tableSame    tableDiff = iota // the same partitions at the same places
	tableMissing                  // the target has no partition table
	tableOther                    // other partitions than the planned ones
)

// differsFrom says how a target's current table cur differs from the
// planned one.
func differsFrom(cur, planned *backupset.Disk) tableDiff {
	if cur == nil {
		return tableMissing
	}
	if cur.Table != planned.Table || len(cur.Partitions) != len(planned.Partitions) {
		return tableOther
	}
	for _, want := range planned.Partitions {
		got, ok := disklayout.PartitionByNumber(cur, want.Number)
		if !ok || got.Start != want.Start || got.Size != want.Size || !strings.EqualFold(got.Type, want.Type) {
			return tableOther
		}
	}
	return tableSame
}

// readMarker reads the clone marker from the root filesystem of a target
// without mounting it (debugfs).
func readMarker(target string, root backupset.Partition) (*marker, error) {
	out, err := blockdev.Runner{}.Run(context.Background(), nil, "debugfs",
		[]string{"-R", "cat /" + cloneMarker, fmt.Sprintf("%s?offset=%d", target, root.Start)})
	if err != nil {
		return nil, err
	}
	var m marker
	if err := json.Unmarshal(out, &m); err != nil {
		return nil, fmt.Errorf("clone marker: %w", err)
	}
	return &m, nil
}

// syncIDs maps the source's ids to those the existing clone already has.
func syncIDs(src, cur *backupset.Disk, boot, root int) *ids {
	m := &ids{OldDiskID: src.DiskID, NewDiskID: cur.DiskID, Parts: map[int]*partIDs{}, Boot: boot, Root: root}
	for _, s := range src.Partitions {
		c, ok := disklayout.PartitionByNumber(cur, s.Number)
		if !ok {
			continue
		}
		m.Parts[s.Number] = &partIDs{OldPartUUID: strings.ToLower(s.PartUUID), NewPartUUID: strings.ToLower(c.PartUUID),
			OldUUID: s.UUID, NewUUID: c.UUID, Label: s.Label}
	}
	return m
}

// String is the clone plan in English (Text with an English printer).
func (p *ClonePlan) String() string { return p.Text(i18n.New(i18n.English)) }

// Text describes the clone plan in pr's language.
func (p *ClonePlan) Text(pr *i18n.Printer) string {
	var b strings.Builder
	line := func(id i18n.ID, args ...any) { b.WriteString(pr.Sprintf(id, args...) + "\n") }
	src := p.srcDev
	if p.live {
		src += pr.Sprintf(i18n.CloneRunning)
	}
	if p.RootTarget == nil {
		line(i18n.CloneHead, src, p.Target.Text(pr))
	} else {
		line(i18n.CloneHeadExternal, src, p.boot, p.srcDev, p.root, p.rootDev, p.Target.Text(pr), p.RootTarget.Text(pr))
	}
	b.WriteString("\n")
	if p.Sync {
		line(i18n.CloneSync)
	} else {
		line(i18n.CloneFull, p.why)
		for _, t := range []*Target{p.Target, p.RootTarget} {
			if t != nil && t.Current != nil && len(t.Current.Partitions) > 0 {
				writeSection(&b, pr, pr.Sprintf(i18n.CloneNowOn, t.Path), t.Current, nil)
			}
		}
	}
	writeSection(&b, pr, pr.Sprintf(i18n.PlanSourceTable), p.Source, nil)
	writeSection(&b, pr, pr.Sprintf(i18n.CloneTargetTable), p.Layout, p.Source)
	if p.RootTarget != nil {
		writeSection(&b, pr, pr.Sprintf(i18n.CloneRootSource, p.rootDev), p.RootSource, nil)
		writeSection(&b, pr, pr.Sprintf(i18n.CloneRootTarget, p.RootTarget.Path), p.RootLayout, p.RootSource)
	}
	b.WriteString("\n")
	line(i18n.CloneIdentifiers)
	line(i18n.PlanDiskID, p.ids.OldDiskID, p.ids.NewDiskID)
	if p.rootIDs != nil {
		line(i18n.CloneRootDiskID, p.rootIDs.OldDiskID, p.rootIDs.NewDiskID)
	}
	for _, n := range sortedIDParts(p.ids) {
		pi := p.ids.Parts[n]
		name := fmt.Sprintf("p%d ", n)
		if n >= rootDiskKey {
			name = pr.Sprintf(i18n.CloneRootDiskPart, n-rootDiskKey)
		}
		fmt.Fprintf(&b, "  PARTUUID  %s %s -> %s\n", name, pi.OldPartUUID, p.ids.partUUID(n))
		if n == p.boot || n == p.rootID() {
			fmt.Fprintf(&b, "  UUID      %s %s -> %s\n", name, orUnknown(pr, pi.OldUUID), p.ids.fsUUID(n))
		}
	}
	b.WriteString("\n")
	line(i18n.CloneBootConfig)
	_, rt, _, _ := p.rootSide()
	b.WriteString("\n")
	line(i18n.CloneSpace, size.Format(p.rootData), size.Format(p.Need), size.Format(rt.Size))
	return b.String()
}

// Execute clones (or syncs) the source onto the target.
func (p *ClonePlan) Execute(ctx context.Context) (*CloneResult, error) {
	start := time.Now()
	res := &CloneResult{Sync: p.Sync}
	release, err := lockTarget(p.Target)
	if err != nil {
		return res, err
	}
	defer release()
	what := p.Target.Path
	if p.RootTarget != nil {
		releaseRoot, err := lockTarget(p.RootTarget)
		if err != nil {
			return res, err
		}
		defer releaseRoot()
		what += " and " + p.RootTarget.Path
	}
	err = p.execute(ctx, res)
	res.Duration = time.Since(start)
	if err != nil && res.Incomplete {
		err = fmt.Errorf("%w (%s: no partition table now; run the clone again): %w", ErrIncomplete, what, err)
	}
	return res, err
}

// openForClone opens a target; on a full clone of a device its partition
// table is wiped first.
func (p *ClonePlan) openForClone(t *Target) (*os.File, error) {
	f, err := openTarget(t, t.IsFile && !p.Sync)
	if err != nil {
		return nil, err
	}
	if !p.Sync && !t.IsFile {
		if err := wipeTable(f, t.Size); err != nil {
			f.Close()
			return nil, err
		}
	}
	return f, nil
}

// writeCloneTable writes layout onto f, with the boot code of the source
// disk src (DOS), and flushes it.
func writeCloneTable(f, src *os.File, t *Target, layout *backupset.Disk, write bool) error {
	if write {
		opts := disklayout.WriteOptions{Wipe: true}
		if layout.Table == "dos" {
			code := make([]byte, 440)
			if _, err := src.ReadAt(code, 0); err == nil {
				opts.BootCode = code
			}
		}
		if err := disklayout.WriteTable(f, layout, opts); err != nil {
			return err
		}
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("flush %s: %w", t.Path, err)
	}
	if !t.IsFile {
		rereadTable(f)
	}
	return nil
}

func (p *ClonePlan) execute(ctx context.Context, res *CloneResult) (err error) {
	t := p.Target
	f, err := p.openForClone(t)
	if err != nil {
		return err
	}
	defer f.Close()
	if !p.Sync {
		res.Incomplete = true
		defer func() {
			if err == nil {
				res.Incomplete = false
			}
		}()
	}
	var rootF, rootSrc *os.File // the root disk's target and source, when it is another disk
	if p.RootTarget != nil {
		if rootF, err = p.openForClone(p.RootTarget); err != nil {
			return err
		}
		defer rootF.Close()
		if rootSrc, err = os.Open(p.rootDev); err != nil {
			return fmt.Errorf("open root source: %w", err)
		}
		defer rootSrc.Close()
	}
	run := blockdev.Runner{Log: p.log}
	src, err := os.Open(p.srcDev)
	if err != nil {
		return fmt.Errorf("open source: %w", err)
	}
	defer src.Close()

	// Boot partition: block copy, only what differs on a sync.
	if p.boot != 0 {
		sb, _ := disklayout.PartitionByNumber(p.Source, p.boot)
		tb := p.part(p.boot)
		p.rep.Phase("boot partition", sb.Size)
		n, err := syncBlocks(ctx, f, tb.Start, io.NewSectionReader(src, sb.Start, sb.Size), sb.Size, !p.Sync && t.IsFile, p.rep)
		if err != nil {
			return fmt.Errorf("boot partition: %w", err)
		}
		res.BootWritten = n
		res.Bytes += n
		serial, err := parseFATSerial(p.ids.fsUUID(p.boot))
		if err != nil {
			return fmt.Errorf("BUG: %w", err)
		}
		if err := setFATSerial(f, f, tb.Start, serial); err != nil {
			return err
		}
	}

	// Root filesystem.
	if err := p.cloneRoot(ctx, run, res); err != nil {
		return err
	}

	if p.boot != 0 {
		tb := p.part(p.boot)
		changes, err := rewriteCmdlines(f, tb.Start, tb.Size, p.ids)
		if err != nil {
			return err
		}
		for _, c := range changes {
			res.Changes = append(res.Changes, c.String())
		}
	}
	if rootF != nil {
		if err := writeCloneTable(rootF, rootSrc, p.RootTarget, p.RootLayout, !p.Sync); err != nil {
			return err
		}
	}
	if err := writeCloneTable(f, src, t, p.Layout, !p.Sync); err != nil {
		return err
	}
	res.Verified = true
	return nil
}

func (p *ClonePlan) part(n int) backupset.Partition {
	return layoutPart(p.Layout, n)
}

func layoutPart(d *backupset.Disk, n int) backupset.Partition {
	q, ok := disklayout.PartitionByNumber(d, n)
	if !ok {
		panic(fmt.Sprintf("BUG: partition %d not in the layout", n))
	}
	return *q
}

// cloneRoot formats the clone's root (first run) and rsyncs the source
// root onto it.
func (p *ClonePlan) cloneRoot(ctx context.Context, run blockdev.Runner, res *CloneResult) error {
	rootSource, rt, rootLayout, rootDev := p.rootSide()
	tr := layoutPart(rootLayout, p.root)
	att, err := blockdev.AttachPartition(ctx, rt.Path, 0, tr.Start, tr.Size, false)
	if err != nil {
		return fmt.Errorf("root partition: %w", err)
	}
	defer att.Detach()
	srcRoot, _ := disklayout.PartitionByNumber(rootSource, p.root)
	if !p.Sync {
		p.rep.Phase("format root filesystem", 0)
		if _, err := run.Run(ctx, nil, "mkfs.ext4", mkfsExt4Args(att.Path, srcRoot.Label, p.ids.fsUUID(p.rootID()), tr.Size)); err != nil {
			return fmt.Errorf("root partition: %w", err)
		}
	}
	srcDir := "/"
	// A live clone also leaves out /mnt, as raspiBackupClone leaves out
	// its /mnt/clone: what is mounted there is not the system.
	excludes := append(blockdev.LiveExcludes(), "/mnt/*")
	if !p.live {
		sa, err := blockdev.AttachPartition(ctx, rootDev, 0, srcRoot.Start, srcRoot.Size, true)
		if err != nil {
			return fmt.Errorf("source root: %w", err)
		}
		defer sa.Detach()
		dir, unmount, err := blockdev.MountTempRO(sa.Path, "ext4")
		if err != nil {
			return fmt.Errorf("source root: %w", err)
		}
		defer func() {
			if err := unmount(); err != nil {
				p.log.Error("unmount source root", "err", err)
			}
		}()
		srcDir, excludes = dir, nil
	}
	mnt, unmount, err := blockdev.MountExt4(att.Path, false)
	if err != nil {
		return fmt.Errorf("root partition: %w", err)
	}
	mounted := true
	defer func() {
		if mounted {
			unmount()
		}
	}()
	p.rep.Phase("root filesystem", p.rootData)
	out, err := run.Run(ctx, nil, "rsync", cloneRsyncArgs(srcDir, mnt, excludes), 24) // 24: files vanished (live source)
	if err != nil {
		return fmt.Errorf("root filesystem: %w", err)
	}
	st := parseRsyncStats(string(out))
	res.RootTransferred, res.FilesChanged = st.transferred, st.files
	res.Bytes += st.transferred
	p.rep.Add(st.transferred)
	if p.Sync {
		// rsync sets a directory's times before it writes into it and
		// does not set them again, so directories that got new or
		// changed files end up with the time of the sync.
		if err := syncDirTimes(ctx, srcDir, mnt); err != nil {
			return fmt.Errorf("root filesystem: %w", err)
		}
	}
	changes, err := syncFstab(srcDir, mnt, p.ids)
	if err != nil {
		return err
	}
	for _, c := range changes {
		res.Changes = append(res.Changes, c.String())
	}
	mk, _ := json.Marshal(marker{SourceDiskID: rootSource.DiskID, SourceRootUUID: srcRoot.UUID, Cloned: time.Now().UTC()})
	if err := os.WriteFile(filepath.Join(mnt, cloneMarker), append(mk, '\n'), 0o600); err != nil {
		return fmt.Errorf("write clone marker: %w", err)
	}
	// Creating the marker and fstab touched the times of / and /etc; the
	// clone's must stay the source's.
	for _, d := range []string{".", "etc"} {
		if err := copyTimes(filepath.Join(srcDir, d), filepath.Join(mnt, d)); err != nil {
			return err
		}
	}
	mounted = false
	if err := unmount(); err != nil {
		return fmt.Errorf("root partition: %w", err)
	}
	if !p.Sync {
		p.rep.Phase("check root filesystem", 0)
		if _, err := run.Run(ctx, nil, "e2fsck", e2fsckArgs(att.Path, true), 1); err != nil {
			return fmt.Errorf("root partition: %w", err)
		}
	}
	return nil
}

// syncFstab writes the source's /etc/fstab, rewritten for the clone's
// ids, to the clone, only when the clone's differs. rsync leaves fstab out
// (cloneRsyncArgs): otherwise every run would copy the source's version
// over the rewritten one and count it as a change.
func syncFstab(srcDir, mnt string, m *ids) ([]change, error) {
	src := filepath.Join(srcDir, "etc", "fstab")
	b, err := os.ReadFile(src)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read source fstab: %w", err)
	}
	want, changes := m.rewriteFstab(string(b))
	dst := filepath.Join(mnt, "etc", "fstab")
	if have, err := os.ReadFile(dst); err == nil && string(have) == want {
		return nil, nil
	}
	fi, err := os.Stat(src)
	if err != nil {
		return nil, fmt.Errorf("stat source fstab: %w", err)
	}
	if err := os.WriteFile(dst, []byte(want), fi.Mode().Perm()); err != nil {
		return nil, fmt.Errorf("write fstab: %w", err)
	}
	if uid, gid, ok := owner(fi); ok {
		if err := os.Lchown(dst, uid, gid); err != nil {
			return nil, fmt.Errorf("write fstab: %w", err)
		}
	}
	if err := os.Chmod(dst, fi.Mode().Perm()); err != nil {
		return nil, fmt.Errorf("write fstab: %w", err)
	}
	return changes, copyTimes(src, dst)
}

// syncBlocks makes [off, off+size) of f equal to r, writing only the
// 1 MiB blocks that differ (all of them with holes=false on a fresh
// target, where reading first is wasted; all-zero blocks are then
// skipped). It returns the bytes written.
func syncBlocks(ctx context.Context, f *os.File, off int64, r io.Reader, size int64, fresh bool, rep progress.Reporter) (int64, error) {
	want := make([]byte, blockSize)
	have := make([]byte, blockSize)
	var written int64
	for done := int64(0); done < size; {
		if err := ctx.Err(); err != nil {
			return written, err
		}
		n := int(min(int64(blockSize), size-done))
		if _, err := io.ReadFull(r, want[:n]); err != nil {
			return written, fmt.Errorf("read source at %d: %w", done, err)
		}
		write := true
		if fresh {
			write = !isZero(want[:n])
		} else if _, err := f.ReadAt(have[:n], off+done); err == nil && bytes.Equal(have[:n], want[:n]) {
			write = false
		}
		if write {
			if _, err := f.WriteAt(want[:n], off+done); err != nil {
				return written, fmt.Errorf("write at %d: %w", off+done, err)
			}
			written += int64(n)
		}
		done += int64(n)
		rep.Add(int64(n))
	}
	return written, nil
}

type rsyncStats struct {
	files       int64
	transferred int64
}

var (
	rsyncFilesRE = regexp.MustCompile(`Number of regular files transferred: ([0-9,.]+)`)
	rsyncBytesRE = regexp.MustCompile(`Total transferred file size: ([0-9,.]+) bytes`)
)

// parseRsyncStats reads rsync --stats output (numbers may carry
// thousands separators).
func parseRsyncStats(s string) rsyncStats {
	num := func(re *regexp.Regexp) int64 {
		m := re.FindStringSubmatch(s)
		if m == nil {
			return 0
		}
		v, _ := strconv.ParseInt(strings.NewReplacer(",", "", ".", "").Replace(m[1]), 10, 64)
		return v
	}
	return rsyncStats{files: num(rsyncFilesRE), transferred: num(rsyncBytesRE)}
}

// Errors of a clone whose root is on its own disk. They say what is
// wrong; backupctl names the flag that fixes it.
var (
	// ErrRootElsewhere: the source's root is on another disk than its
	// boot partition, and no second target was given for it.
	ErrRootElsewhere = errors.New("the root's copy needs a disk of its own")
	// ErrNoRootDisk: a second target was given for a source whose root
	// is on the boot disk.
	ErrNoRootDisk = errors.New("a separate root target is only for a root on another disk")
	// ErrRootTargetIsTarget: the root's target is the boot's target.
	ErrRootTargetIsTarget = errors.New("the root's target is the boot partition's target: boot and root go to two disks, as on the source")
)

// ErrSameDisk is returned when source and target are one disk.
var ErrSameDisk = errors.New("source and target are the same disk")
