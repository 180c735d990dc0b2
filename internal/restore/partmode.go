package restore

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/blockdev"
	"github.com/pibackup/pibackup/internal/disklayout"
	"github.com/pibackup/pibackup/internal/i18n"
)

// ErrNotSupported is returned for sets this build cannot restore yet.
var ErrNotSupported = errors.New("not supported yet")

// Partition-oriented (-P) sets hold one payload per partition: a tar
// (<part>.tar, .tgz, .tar.zst) or an rsync tree (<part>/), plus the
// partition table (.sfdisk), the filesystem identities (.blkid) and
// parted's view (.parted, which names FAT16 or FAT32). The restore is
// raspiBackup's (reference §1.5): the table as in normal mode with the
// last partition resized, then every selected partition formatted by its
// filesystem type, labelled as .blkid says, and filled; then the ids and
// the cmdline.txt/fstab references as in normal mode. FAT partitions are
// made and filled in-process (go-diskfs; the host may have no vfat
// driver), ext2/3/4 with mke2fs, mount and GNU tar, or for trees the Go
// tree restorer (tree.go; rsync for trees without an extras file).

// planPartitions plans a partition-oriented (-P) restore.
func (p *Plan) planPartitions(ctx context.Context) error {
	s := p.set
	src := s.layoutFromMeta()
	if src.Size == 0 {
		src.Size = disklayout.MinDiskSize(src)
	}
	parted := map[int]string{}
	if b, err := readSmall(s, backupset.MetaFile(s.name.Host, backupset.SuffixParted)); err == nil {
		pd, err := backupset.ParseParted(bytes.NewReader(b))
		if err != nil {
			return err
		}
		parted = pd.FSByNumber()
	}
	for i := range src.Partitions {
		q := &src.Partitions[i]
		if e, ok := s.blkidOf(q); ok {
			if q.FSType == "" {
				q.FSType = e.Type
			}
			if q.UUID == "" {
				q.UUID = strings.ToLower(e.UUID)
			}
			if q.Label == "" || (src.Table == "gpt" && s.manifest == nil) {
				q.Label = e.Label // in a GPT sfdisk dump, name= is the partition name
			}
		}
		if q.FSType == "" && strings.HasPrefix(parted[q.Number], "fat") {
			q.FSType = "vfat"
		}
	}
	p.Source = src

	p.selected = p.o.Partitions
	if p.selected == nil {
		p.selected = sortedParts(s.partPayloads)
	}
	for _, n := range p.selected {
		if _, ok := s.partPayloads[n]; !ok {
			return fmt.Errorf("set %s has no payload for partition %d (it has %v): %w", s.dirName, n, sortedParts(s.partPayloads), ErrBadSet)
		}
		q, ok := disklayout.PartitionByNumber(src, n)
		if !ok {
			return fmt.Errorf("set %s: partition %d is not in the partition table: %w", s.dirName, n, ErrBadSet)
		}
		if _, err := p.partFS(q, parted); err != nil {
			return fmt.Errorf("set %s: %w", s.dirName, err)
		}
		if pp := s.partPayloads[n]; pp.dir {
			g, err := p.planTree(ctx, pp.name)
			if err != nil {
				return err
			}
			if g != nil {
				if p.partTrees == nil {
					p.partTrees = map[int]*goTree{}
				}
				p.partTrees[n] = g
			}
		}
	}
	p.parted = parted
	p.boot, p.root = bootRoot(s.manifest, src)
	if s.manifest == nil || s.manifest.RootPartition == 0 {
		// raspiBackup records neither, nor does a -P manifest: on a NOOBS/PINN card the first FAT
		// is the recovery and the last Linux partition may be data. The
		// boot partition is the FAT whose cmdline.txt names a partition of
		// the card as root=.
		if boot, root, ok := p.bootRootFromCmdline(ctx, src); ok {
			p.boot, p.root = boot, root
		}
	}
	if q, ok := disklayout.PartitionByNumber(src, p.boot); !ok || q.FSType != "vfat" {
		p.boot = 0
	}
	for _, q := range src.Partitions {
		if !slices.Contains(p.selected, q.Number) && q.Number != p.boot && q.Number != p.root &&
			!disklayout.IsExtendedType(q.Type) && q.FSType != "swap" {
			p.notes = append(p.notes, i18n.M(i18n.NotePartLeft, q.Number))
		}
	}
	for _, n := range []int{p.boot, p.root} {
		if n != 0 && !slices.Contains(p.selected, n) {
			p.notes = append(p.notes, i18n.M(i18n.NoteNotRestored, n, i18n.M(map[bool]i18n.ID{true: i18n.PlanBootPartition, false: i18n.PlanRootFilesystem}[n == p.boot])))
		}
	}

	// The last Linux partition is resized to the target; data decides
	// how small it may get.
	last := 0
	if _, res, err := disklayout.Resize(src, src.Size, disklayout.ResizeOptions{}); err == nil {
		last = res.Number
	}
	if last != 0 {
		if err := p.estimatePartData(ctx, last, false); err != nil {
			return err
		}
	}
	layout, res, err := p.resizeForData(src)
	if err != nil && errors.Is(err, disklayout.ErrTooSmall) && p.rootData == 0 && last != 0 {
		if err := p.estimatePartData(ctx, last, true); err != nil {
			return err
		}
		layout, res, err = p.resizeForData(src)
	}
	if err != nil {
		return err
	}
	p.Layout, p.resized = layout, res
	if lp, ok := disklayout.PartitionByNumber(src, last); ok && p.rootData > 0 {
		p.Need = disklayout.MinDiskSize(src) - lp.Size + ext4Need(p.rootData)
	}
	if s.manifest == nil {
		p.notes = append(p.notes, i18n.M(i18n.NoteNoManifestParts))
	}
	if p.ids, err = newIDs(src, p.Layout, p.boot, p.root, p.o.KeepIDs); err != nil {
		return err
	}
	// Partitions that are not restored keep no filesystem to give an id
	// to; the extended partition has none at all.
	for n, pi := range p.ids.Parts {
		q, _ := disklayout.PartitionByNumber(src, n)
		if !slices.Contains(p.selected, n) && (q == nil || q.FSType != "swap") {
			pi.NewUUID = ""
		}
	}
	return nil
}

// restores reports whether partition n gets a filesystem from the set:
// every partition of an image or normal-mode set, the selected ones of a
// partition-oriented set.
func (p *Plan) restores(n int) bool {
	return p.set.kind != kindPartition || slices.Contains(p.selected, n)
}

// bootRootFromCmdline finds the boot partition of a set without a
// manifest: the first selected FAT partition whose payload holds a
// cmdline.txt whose root= names a partition of src (by PARTUUID, UUID,
// LABEL or device name). Payloads that cannot be read are passed over;
// the restore reads and checks them again.
func (p *Plan) bootRootFromCmdline(ctx context.Context, src *backupset.Disk) (boot, root int, ok bool) {
	for _, n := range p.selected {
		q, _ := disklayout.PartitionByNumber(src, n)
		if kind, err := p.partFS(q, p.parted); err != nil || !strings.HasPrefix(kind, "fat") {
			continue
		}
		b, err := p.set.partFile(ctx, p.set.partPayloads[n], "cmdline.txt")
		if err != nil {
			p.log.Debug("no cmdline.txt", "partition", n, "err", err)
			continue
		}
		if r, ok := disklayout.PartitionByRef(src, rootRefFromCmdline(string(b))); ok && r != n {
			return n, r, true
		}
	}
	return 0, 0, false
}

// partFile reads a small file at the top of a partition payload: from
// the tree of an rsync set, or by reading the tar up to the member.
func (s *setInfo) partFile(ctx context.Context, pp partPayload, name string) ([]byte, error) {
	if pp.dir {
		return readSmall(s, path.Join(pp.name, name))
	}
	r, err := s.open(pp.name, pp.comp)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		h, err := tr.Next()
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", pp.name, name, err)
		}
		if path.Clean(strings.TrimPrefix(h.Name, "./")) == name && h.Typeflag == tar.TypeReg {
			return io.ReadAll(io.LimitReader(tr, 1<<20))
		}
	}
}

// partFS returns the filesystem to make on q: "fat16", "fat32", "ext2",
// "ext3", "ext4".
func (p *Plan) partFS(q *backupset.Partition, parted map[int]string) (string, error) {
	switch {
	case q.FSType == "vfat" || strings.HasPrefix(parted[q.Number], "fat"):
		bits := parted[q.Number]
		if bits != "fat16" && bits != "fat32" {
			bits = "fat32"
			if q.Type == "4" || q.Type == "6" || q.Type == "e" {
				bits = "fat16"
			}
		}
		if bits == "fat32" && q.Size < minFAT32 {
			bits = "fat16" // too few clusters for FAT32
		}
		return bits, nil
	case q.FSType == "ext2" || q.FSType == "ext3" || q.FSType == "ext4":
		return q.FSType, nil
	case q.FSType == "" && disklayout.IsLinuxType(q.Type):
		return "ext4", nil
	}
	return "", fmt.Errorf("partition %d: filesystem %q: %w (only vfat and ext2/3/4)", q.Number, q.FSType, ErrNotSupported)
}

// minFAT32 is the smallest partition go-diskfs's FAT32 (512-byte clusters
// up to 260 MB) gives the 65525 clusters FAT32 needs.
const minFAT32 = 34 << 20

// estimatePartData sets p.rootData to the data of partition n's payload:
// an uncompressed tar's size, an rsync tree's usage, the manifest's
// record; with measure, a compressed tar is read once to count it.
func (p *Plan) estimatePartData(ctx context.Context, n int, measure bool) error {
	s := p.set
	pp, ok := s.partPayloads[n]
	if !ok || !slices.Contains(p.selected, n) {
		return nil
	}
	switch {
	case pp.dir && p.o.LocalDir == "":
		g := p.partTrees[n]
		if g == nil {
			return fmt.Errorf("BUG: set %s: partition %d: no tree planned for a remote set", s.dirName, n)
		}
		p.rootData = g.usage
	case pp.dir:
		b, _, err := treeUsage(ctx, os.DirFS(filepath.Join(p.o.LocalDir, pp.name)), nil)
		if err != nil {
			return fmt.Errorf("set %s: %w", s.dirName, err)
		}
		p.rootData = b
	case pp.comp == backupset.CompressNone:
		info, err := s.entries[pp.name].Info()
		if err != nil {
			return fmt.Errorf("set %s: %w", s.dirName, err)
		}
		p.rootData = info.Size()
	case measure:
		r, err := s.openPayload(pp.name, pp.comp, p.rep, false)
		if err != nil {
			return fmt.Errorf("set %s: %w", s.dirName, err)
		}
		defer r.Close()
		p.rep.Phase("measure archive", 0)
		if _, err := countStream(ctx, r); err != nil {
			return fmt.Errorf("set %s: %s: %w", s.dirName, pp.name, err)
		}
		p.rootData = r.N
	case s.manifest != nil:
		if q, ok := disklayout.PartitionByNumber(&s.manifest.Disk, n); ok && q.FSUsed > 0 {
			p.rootData = max(q.FSUsed-ext4Overhead(q.Size), q.FSUsed/2)
		}
	}
	return nil
}

// executePartitions runs a partition-oriented restore.
func (p *Plan) executePartitions(ctx context.Context, res *Result) (err error) {
	s := p.set
	f, err := p.openForRestore(res)
	if err != nil {
		return err
	}
	defer f.Close()
	defer func() {
		if err == nil {
			res.Incomplete = false
		}
	}()
	run := blockdev.Runner{Log: p.log}
	for _, n := range p.selected {
		q := p.partition(n)
		pp := s.partPayloads[n]
		kind, err := p.partFS(&q, p.parted)
		if err != nil {
			return err
		}
		var written int64
		if strings.HasPrefix(kind, "fat") {
			written, err = p.restoreFATPart(ctx, f, q, pp, kind)
		} else {
			written, err = p.restoreExtPart(ctx, run, q, pp, kind, res)
		}
		if err != nil {
			return fmt.Errorf("partition %d: %w", n, err)
		}
		res.Bytes += written
	}
	if err := p.makeSwap(ctx, run); err != nil {
		return err
	}
	if !p.o.KeepIDs && p.boot != 0 && slices.Contains(p.selected, p.boot) {
		p.rep.Phase("boot configuration", 0)
		boot := p.partition(p.boot)
		changes, err := rewriteCmdlines(f, boot.Start, boot.Size, p.ids)
		if err != nil {
			res.Warnings = append(res.Warnings, fmt.Sprintf("partition %d: cmdline.txt not rewritten: %v", p.boot, err))
		}
		for _, c := range changes {
			res.Changes = append(res.Changes, c.String())
		}
	}
	return p.finish(ctx, f, res)
}

// restoreFATPart makes a FAT filesystem on q with go-diskfs and fills it
// from the partition's tar or tree.
func (p *Plan) restoreFATPart(ctx context.Context, f *os.File, q backupset.Partition, pp partPayload, kind string) (int64, error) {
	s := p.set
	p.rep.Phase(fmt.Sprintf("partition %d", q.Number), 0)
	fsys, err := p.makeFAT(f, q, kind)
	if err != nil {
		return 0, err
	}
	if pp.dir {
		var n int64
		if g := p.partTrees[q.Number]; g != nil {
			n, err = fillFATFromListing(ctx, fsys, g, p.log)
		} else {
			n, err = fillFATFromTree(ctx, fsys, filepath.Join(p.o.LocalDir, pp.name), p.log)
		}
		if err != nil {
			return n, err
		}
		return n, p.setFATIDs(f, q)
	}
	r, err := s.openPayload(pp.name, pp.comp, p.rep, true)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	n, err := fillFATFromTar(ctx, fsys, r, p.log)
	if err != nil {
		if r.err != nil {
			return n, fmt.Errorf("read %s: %w (the archive is truncated or corrupt): %w", pp.name, r.err, ErrDamaged)
		}
		return n, fmt.Errorf("%s: %w", pp.name, err)
	}
	if err := r.finish(ctx); err != nil {
		return n, err
	}
	return n, p.setFATIDs(f, q)
}

// setFATIDs gives a made FAT filesystem its serial (the planned one) and
// a finished boot sector (disklayout.FixGoDiskfsFAT).
func (p *Plan) setFATIDs(f *os.File, q backupset.Partition) error {
	if err := disklayout.FixGoDiskfsFAT(f, f, q.Start); err != nil {
		return err
	}
	if u := p.ids.fsUUID(q.Number); u != "" {
		serial, err := parseFATSerial(u)
		if err != nil {
			p.log.Warn("FAT serial not set", "partition", q.Number, "err", err)
			return nil
		}
		return setFATSerial(f, f, q.Start, serial)
	}
	return nil
}

// restoreExtPart formats q (ext2/3/4) with the planned UUID and the
// source's label, fills it from its tar or tree, fixes /etc/fstab when it
// is the root, and checks it.
func (p *Plan) restoreExtPart(ctx context.Context, run blockdev.Runner, q backupset.Partition, pp partPayload, kind string, res *Result) (int64, error) {
	s := p.set
	att, err := blockdev.AttachPartition(ctx, p.Target.Path, 0, q.Start, q.Size, false)
	if err != nil {
		return 0, err
	}
	defer att.Detach()
	p.rep.Phase(fmt.Sprintf("format partition %d", q.Number), 0)
	label := q.Label
	if src, ok := disklayout.PartitionByNumber(p.Source, q.Number); ok {
		label = src.Label
	}
	if _, err := run.Run(ctx, nil, "mkfs."+kind, mkfsExt4Args(att.Path, label, p.ids.fsUUID(q.Number), q.Size)); err != nil {
		return 0, err
	}
	mnt, unmount, err := blockdev.MountExt4(att.Path, false)
	if err != nil {
		return 0, err
	}
	mounted := true
	defer func() {
		if mounted {
			if err := unmount(); err != nil {
				p.log.Error("unmount", "partition", q.Number, "err", err)
			}
		}
	}()
	var n int64
	if g := p.partTrees[q.Number]; pp.dir && g != nil {
		p.rep.Phase(fmt.Sprintf("partition %d", q.Number), g.bytes)
		if n, err = restoreTree(ctx, g, mnt, p.rep); err != nil {
			return n, err
		}
	} else if pp.dir {
		p.rep.Phase(fmt.Sprintf("partition %d", q.Number), 0)
		src := filepath.Join(p.o.LocalDir, pp.name)
		if _, err := run.Run(ctx, nil, "rsync", rsyncRestoreArgs(src, mnt, s.name.Host)); err != nil {
			return 0, err
		}
	} else {
		info, _ := s.entries[pp.name].Info()
		var size int64
		if info != nil {
			size = info.Size()
		}
		p.rep.Phase(fmt.Sprintf("partition %d", q.Number), size)
		if n, err = p.extractTar(ctx, run, pp.name, pp.comp, mnt); err != nil {
			return n, err
		}
	}
	keepUUID := ""
	if q.Number == p.root {
		var changes []change
		changes, keepUUID, err = p.fixFstab(mnt, res)
		if err != nil {
			return n, err
		}
		for _, c := range changes {
			res.Changes = append(res.Changes, c.String())
		}
	}
	mounted = false
	if err := unmount(); err != nil {
		return n, err
	}
	if keepUUID != "" {
		if _, err := run.Run(ctx, nil, "tune2fs", tune2fsUUIDArgs(att.Path, keepUUID)); err != nil {
			return n, err
		}
	}
	p.rep.Phase(fmt.Sprintf("check partition %d", q.Number), 0)
	if _, err := run.Run(ctx, nil, "e2fsck", e2fsckArgs(att.Path, true), 1); err != nil {
		return n, err
	}
	return n, nil
}

// makeSwap recreates the swap partitions the set records (-P sets skip
// them) with their label and planned UUID.
func (p *Plan) makeSwap(ctx context.Context, run blockdev.Runner) error {
	for _, q := range p.Source.Partitions {
		if q.FSType != "swap" || slices.Contains(p.selected, q.Number) {
			continue
		}
		lq := p.partition(q.Number)
		att, err := blockdev.AttachPartition(ctx, p.Target.Path, 0, lq.Start, lq.Size, false)
		if err != nil {
			return fmt.Errorf("partition %d: %w", q.Number, err)
		}
		_, err = run.Run(ctx, nil, "mkswap", mkswapArgs(att.Path, q.Label, p.ids.fsUUID(q.Number)))
		att.Detach()
		if err != nil {
			return fmt.Errorf("partition %d: %w", q.Number, err)
		}
	}
	return nil
}

// restoreBootTar makes a FAT32 boot partition from a .tmg tar.
func (p *Plan) restoreBootTar(ctx context.Context, f *os.File, boot backupset.Partition) (int64, error) {
	s := p.set
	info, err := s.entries[s.bootTar].Info()
	if err != nil {
		return 0, err
	}
	p.rep.Phase("boot partition", info.Size())
	kind := "fat32"
	if boot.Size < minFAT32 {
		kind = "fat16"
	}
	fsys, err := p.makeFAT(f, boot, kind)
	if err != nil {
		return 0, fmt.Errorf("boot partition: %w", err)
	}
	r, err := s.openPayload(s.bootTar, backupset.CompressionOf(s.bootTar), p.rep, true)
	if err != nil {
		return 0, fmt.Errorf("boot partition: %w", err)
	}
	defer r.Close()
	n, err := fillFATFromTar(ctx, fsys, r, p.log)
	if err != nil {
		if r.err != nil {
			return n, fmt.Errorf("boot partition: read %s: %w (the archive is truncated or corrupt): %w", s.bootTar, r.err, ErrDamaged)
		}
		return n, fmt.Errorf("boot partition: %s: %w", s.bootTar, err)
	}
	if err := r.finish(ctx); err != nil {
		return n, fmt.Errorf("boot partition: %w", err)
	}
	if err := disklayout.FixGoDiskfsFAT(f, f, boot.Start); err != nil {
		return n, fmt.Errorf("boot partition: %w", err)
	}
	return n, p.newFATSerial(f, boot)
}

// readSmall reads a small metadata file of the set.
func readSmall(s *setInfo, name string) ([]byte, error) {
	r, err := s.fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(io.LimitReader(r, 1<<20))
}

// blkidOf returns the .blkid line of partition q: the line of its
// device as the sfdisk dump names it, else the one line whose device
// name ends in q's number (as raspiBackup maps them). raspiBackup runs
// blkid for every device, so the file also lists the backup disk
// (/dev/sda1) and others; a number two devices share names neither.
func (s *setInfo) blkidOf(q *backupset.Partition) (backupset.BlkidEntry, bool) {
	if e, ok := s.blkid[q.Device]; ok && q.Device != "" {
		return e, true
	}
	var found []backupset.BlkidEntry
	for dev, e := range s.blkid {
		if partNumber(dev) == q.Number {
			found = append(found, e)
		}
	}
	if len(found) == 1 {
		return found[0], true
	}
	return backupset.BlkidEntry{}, false
}
