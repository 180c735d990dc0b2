package restore

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/blockdev"
	"github.com/pibackup/pibackup/internal/disklayout"
	"github.com/pibackup/pibackup/internal/i18n"
	"github.com/pibackup/pibackup/internal/size"
)

// A dd/ddz image onto a target smaller than the image's partitions: the
// partitions before the root (the boot partition) are written as they
// are, byte for byte; the root partition is made anew, smaller, and the
// files of the image's root filesystem are copied into it.
//
// Why files and not resize2fs: shrinking with resize2fs needs the whole
// source filesystem on a device first, at its full size, and the target
// is by definition too small for it; a scratch copy elsewhere would need
// the full partition (or, sparse, its data) and then one more copy. A
// file copy reads the image's root where it lies — in place, through a
// read-only loop device, for an uncompressed image in a local set — and
// writes each file once onto a fresh mkfs.ext4, so a card only has to
// hold the data, as with a tar or rsync set. rsync -aHAX --numeric-ids
// (already the restore's and the clone's copier, and in the recovery
// image) keeps owners, modes, times, symlinks, hardlinks, xattrs, ACLs
// and device nodes. The new filesystem gets mkfs.ext4's defaults, not the
// image's tuning (like a tar restore).
//
// A compressed image (or one read over SFTP/SMB) cannot be mounted where
// it lies: its root partition is decompressed into a sparse file in the
// temporary folder ($TMPDIR, /tmp by default) first; all-zero blocks stay
// holes, so the file takes about the filesystem's used blocks (a
// backupctl image holds zeros in free blocks; a raspiBackup image may
// hold old data there and then takes more). The plan checks the free
// space there. When it is too small (the recovery's /tmp is RAM), the
// scratch file goes into a temporary ext4 at the end of the target's new
// root partition: the root is made in the partition's first part, just
// large enough for the data, and grown over the temporary filesystem
// (resize2fs) once the copy is done, so a card of about twice the data
// needs no other space.

// imageShrink is the plan for an image whose root partition shrinks.
type imageShrink struct {
	src  backupset.Partition // the root partition as it is in the image
	used int64               // bytes its filesystem has allocated (superblock)
	// inPlace is the uncompressed image in a local set folder, mounted
	// read-only where it lies; "" means a scratch copy in scratchDir.
	inPlace    string
	scratchDir string
	// onTarget > 0: no room in scratchDir, so the scratch file lives in a
	// temporary ext4 at the end of the target's root partition; the new
	// root is made in its first onTarget bytes and grown over the
	// temporary one when the copy is done.
	onTarget int64
	recover  bool // the filesystem's journal needs replaying
}

// ext4 superblock s_feature_incompat "needs_recovery".
const ext4IncompatRecover = 0x4

// planImageShrink plans the restore of an image whose partitions end
// after the target's end: the root partition (the last one) is shrunk to
// fit the target and refilled file by file. tooSmall is the error without
// shrinking; it is returned, with figures, when the root's data does not
// fit either.
func (p *Plan) planImageShrink(ctx context.Context, src *backupset.Disk, tooSmall *disklayout.TooSmallError) error {
	s := p.set
	rp, ok := disklayout.PartitionByNumber(src, p.root)
	if p.root == 0 || !ok {
		return tooSmall
	}
	if rp.Start < blockSize {
		return fmt.Errorf("%w; the root partition starts in the image's first MiB, so it is not shrunk", tooSmall)
	}
	sb, err := s.readImage(ctx, rp.Start, 4096)
	if err != nil {
		return fmt.Errorf("set %s: root filesystem: %w", s.dirName, err)
	}
	id, _ := disklayout.Identify(bytes.NewReader(sb))
	if !strings.HasPrefix(id.Type, "ext") || id.Used == 0 {
		what := "no filesystem this restore knows"
		if id.Type != "" {
			what = id.Type
		}
		return fmt.Errorf("%w; the image's root partition %d holds %s, not an ext2/3/4 filesystem whose files could be copied into a smaller partition",
			tooSmall, p.root, what)
	}
	// What the image's superblock says, for the new filesystem and its ids.
	rp.FSType = id.Type
	if rp.UUID == "" {
		rp.UUID = id.UUID
	}
	if rp.Label == "" || src.Table == "gpt" {
		rp.Label = id.Label
	}
	p.rootLabel = id.Label
	// The superblock counts the image's own journal and inode tables.
	p.rootData = max(id.Used-ext4Overhead(rp.Size), id.Used/2)
	need := ext4Need(p.rootData)
	layout, res, err := disklayout.Resize(src, p.Target.Size, disklayout.ResizeOptions{MinSize: need, KeepFollowing: true})
	var ts *disklayout.TooSmallError
	if errors.As(err, &ts) {
		return fmt.Errorf("%w: the image's root filesystem (partition %d, %s) holds about %s of data, which needs a partition of at least %s; "+
			"the partitions before it end at %s", ts, p.root, size.Format(rp.Size), size.Format(p.rootData), size.Format(need), size.Format(rp.Start))
	}
	if err != nil {
		return err
	}
	if res.Number != p.root || res.NewSize >= rp.Size {
		// Another partition follows the root: its data sits at a fixed
		// offset in the image.
		return fmt.Errorf("%w; partitions after the root partition %d are not moved", tooSmall, p.root)
	}
	p.Layout, p.resized = layout, res
	p.Need = disklayout.MinDiskSize(src) - rp.Size + need
	sh := &imageShrink{src: *rp, used: id.Used, recover: len(sb) >= 1024+0x64 && binary.LittleEndian.Uint32(sb[1024+0x60:])&ext4IncompatRecover != 0}
	if s.comp == backupset.CompressNone && p.o.LocalDir != "" && !sh.recover {
		// A journal to replay needs a writable copy; otherwise the set's
		// image is read where it lies.
		if fi, err := os.Stat(filepath.Join(p.o.LocalDir, s.payload)); err == nil && fi.Mode().IsRegular() {
			sh.inPlace = filepath.Join(p.o.LocalDir, s.payload)
		}
	}
	if sh.inPlace == "" {
		sh.scratchDir = os.TempDir()
		free, err := blockdev.FreeBytes(sh.scratchDir)
		if err != nil {
			return fmt.Errorf("scratch folder: %w", err)
		}
		if free < sh.used {
			// The target's root partition may hold the scratch copy
			// beside the data (a card twice the data): a Pi Zero's RAM
			// /tmp cannot.
			rest := res.NewSize - need
			if rest < ext4Need(sh.used) {
				return fmt.Errorf("the image's root filesystem must be decompressed into a scratch file to be copied into the smaller partition; "+
					"it needs about %s (%d bytes): %s has %s free, and the target's root partition (%s) cannot hold it beside the data "+
					"(it would need %s): set TMPDIR to a folder with more room (not on the target), or use a larger target",
					size.Format(sh.used), sh.used, sh.scratchDir, size.Format(free), size.Format(res.NewSize), size.Format(need+ext4Need(sh.used)))
			}
			sh.onTarget, sh.scratchDir = need, ""
		}
	}
	p.shrink = sh
	return nil
}

// readImage returns n bytes of the decompressed image at offset off: read
// in place when the file allows it, else by decompressing up to there.
func (s *setInfo) readImage(ctx context.Context, off int64, n int) ([]byte, error) {
	buf := make([]byte, n)
	if s.comp == backupset.CompressNone {
		f, err := s.fsys.Open(s.payload)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", s.payload, err)
		}
		defer f.Close()
		if ra, ok := f.(io.ReaderAt); ok {
			m, err := ra.ReadAt(buf, off)
			if err != nil && err != io.EOF {
				return nil, fmt.Errorf("read %s at %d: %w", s.payload, off, err)
			}
			return buf[:m], nil
		}
	}
	r, err := s.open(s.payload, s.comp)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if _, err := io.CopyN(io.Discard, ctxReader{ctx, r}, off); err != nil {
		return nil, fmt.Errorf("read %s up to %d: %w", s.payload, off, err)
	}
	m, err := io.ReadFull(r, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, fmt.Errorf("read %s at %d: %w", s.payload, off, err)
	}
	return buf[:m], nil
}

// ctxReader stops a long read when ctx is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(b []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(b)
}

// shrinkSteps describes executeImageShrink for the plan.
func (p *Plan) shrinkSteps(pr *i18n.Printer) []string {
	sh := p.shrink
	s := p.set
	var out []string
	step := func(id i18n.ID, args ...any) { out = append(out, pr.Sprintf(id, args...)) }
	step(i18n.StepShrinkHead, s.payload, size.Format(sh.src.Start))
	switch {
	case sh.inPlace != "":
		step(i18n.StepShrinkInPlace, p.root, size.Format(sh.src.Size))
	case sh.onTarget > 0:
		step(i18n.StepShrinkOnTarget, size.Format(p.resized.NewSize-sh.onTarget), p.root, os.TempDir(), p.root, size.Format(sh.src.Size), size.Format(sh.used))
	default:
		step(i18n.StepShrinkScratch, p.root, size.Format(sh.src.Size), sh.scratchDir, size.Format(sh.used))
	}
	step(i18n.StepShrinkCopy, p.root, size.Format(cmp.Or(sh.onTarget, p.resized.NewSize)), size.Format(sh.src.Size), p.labelText(pr))
	step(i18n.StepFsck)
	if sh.onTarget > 0 {
		step(i18n.StepShrinkGrow, size.Format(p.resized.NewSize))
	}
	if !p.o.KeepIDs {
		step(i18n.StepNewBootSerial)
	}
	return out
}

// writeImageShrunk writes an image whose root partition shrinks (see the
// top of this file); executeImage has read the first MiB (head) of zr.
func (p *Plan) writeImageShrunk(ctx context.Context, f *os.File, zr *payload, head []byte, res *Result) error {
	t := p.Target
	s := p.set
	sh := p.shrink
	hn := len(head)
	if hn < blockSize {
		return fmt.Errorf("image %s: %d bytes, but its root partition starts at %d (the file is truncated): %w", s.payload, hn, sh.src.Start, ErrDamaged)
	}
	front := sh.src.Start - int64(hn)
	n, err := copyToDisk(ctx, io.NewOffsetWriter(f, int64(hn)), io.LimitReader(zr, front), front, t.IsFile)
	if err != nil {
		return fmt.Errorf("image %s: %w", s.payload, err)
	}
	res.Bytes = int64(hn) + n
	srcPath, srcOff := sh.inPlace, sh.src.Start
	// dropTemp unmounts the temporary filesystem on the target, if one
	// was made: before the root grows over it, or on the way out.
	dropTemp := func() error { return nil }
	defer func() {
		if err := dropTemp(); err != nil {
			p.log.Error("remove the temporary filesystem", "err", err)
		}
	}()
	if sh.inPlace == "" {
		dir := sh.scratchDir
		if sh.onTarget > 0 {
			var unmount func() error
			if dir, unmount, err = p.scratchOnTarget(ctx); err != nil {
				return err
			}
			dropTemp = func() error {
				f := unmount
				unmount = func() error { return nil }
				return f()
			}
		}
		name, err := p.writeScratch(ctx, dir, zr)
		if err != nil {
			return err
		}
		defer os.Remove(name)
		srcPath, srcOff = name, 0
	}
	// The rest (the root partition when read in place) is read for its
	// checksum only.
	if err := zr.finish(ctx); err != nil {
		return fmt.Errorf("image: %w", err)
	}
	if err := p.checkImageLength(zr.N); err != nil {
		return err
	}
	run := blockdev.Runner{Log: p.log}
	m, err := p.fillShrunkRoot(ctx, run, srcPath, srcOff, res)
	if err != nil {
		return err
	}
	res.Bytes += m
	if sh.onTarget > 0 {
		if err := dropTemp(); err != nil {
			return fmt.Errorf("temporary filesystem: %w", err)
		}
		if err := p.growShrunkRoot(ctx, run); err != nil {
			return err
		}
	}
	if _, err := f.WriteAt(head, 0); err != nil {
		return fmt.Errorf("image: write first MiB: %w", err)
	}
	if err := p.adjustImageBoot(f, res); err != nil {
		return err
	}
	return p.finish(ctx, f, res)
}

// fillShrunkRoot formats the target's (smaller) root partition and copies
// the files of the image's root filesystem, at srcOff in srcPath, into it.
func (p *Plan) fillShrunkRoot(ctx context.Context, run blockdev.Runner, srcPath string, srcOff int64, res *Result) (int64, error) {
	sh := p.shrink
	sa, err := blockdev.AttachPartition(ctx, srcPath, 0, srcOff, sh.src.Size, sh.inPlace != "")
	if err != nil {
		return 0, fmt.Errorf("image root: %w", err)
	}
	defer sa.Detach()
	if sh.recover {
		// Only a scratch copy gets here: replay the journal into it, so
		// the files are those the system last wrote.
		if _, err := run.Run(ctx, nil, "e2fsck", e2fsckArgs(sa.Path, true), 1); err != nil {
			return 0, fmt.Errorf("image root: %w", err)
		}
	}
	srcDir, unmountSrc, err := blockdev.MountTempRO(sa.Path, "ext4")
	if err != nil {
		return 0, fmt.Errorf("image root: %w", err)
	}
	defer func() {
		if err := unmountSrc(); err != nil {
			p.log.Error("unmount image root", "err", err)
		}
	}()
	root := p.partition(p.root)
	if sh.onTarget > 0 {
		root.Size = sh.onTarget // the rest holds the scratch copy for now
	}
	return p.makeRoot(ctx, run, root, res, func(mnt string) (int64, error) {
		p.rep.Phase("root filesystem", p.rootData)
		out, err := run.Run(ctx, nil, "rsync", imageRootRsyncArgs(srcDir, mnt))
		if err != nil {
			return 0, fmt.Errorf("root filesystem: %w", err)
		}
		n := parseRsyncStats(string(out)).transferred
		p.rep.Add(n)
		return n, nil
	})
}

// writeScratch writes the image's root partition, the next bytes of zr,
// into a new sparse file in dir and returns its name.
func (p *Plan) writeScratch(ctx context.Context, dir string, zr io.Reader) (string, error) {
	sh := p.shrink
	scratch, err := os.CreateTemp(dir, "pibackup-root-*.img")
	if err != nil {
		return "", fmt.Errorf("scratch file: %w", err)
	}
	defer scratch.Close()
	fail := func(err error) (string, error) {
		os.Remove(scratch.Name())
		if errors.Is(err, syscall.ENOSPC) {
			return "", fmt.Errorf("scratch file %s: %w: set TMPDIR to a folder with more room", scratch.Name(), err)
		}
		return "", fmt.Errorf("scratch file: %w", err)
	}
	if err := scratch.Truncate(sh.src.Size); err != nil {
		return fail(err)
	}
	p.log.Info("decompressing the image's root filesystem into a scratch file", "file", scratch.Name(), "size", sh.src.Size)
	if _, err := copyToDisk(ctx, io.NewOffsetWriter(scratch, 0), io.LimitReader(zr, sh.src.Size), sh.src.Size, true); err != nil {
		return fail(err)
	}
	if err := scratch.Close(); err != nil {
		return fail(err)
	}
	return scratch.Name(), nil
}

// scratchOnTarget makes a temporary ext4 (no journal: it is thrown away)
// in the part of the target's root partition after the first
// shrink.onTarget bytes, mounts it and returns its folder and the
// function that unmounts and detaches it.
func (p *Plan) scratchOnTarget(ctx context.Context) (string, func() error, error) {
	root := p.partition(p.root)
	start := root.Start + p.shrink.onTarget
	att, err := blockdev.AttachPartition(ctx, p.Target.Path, 0, start, root.Start+root.Size-start, false)
	if err != nil {
		return "", nil, fmt.Errorf("temporary filesystem: %w", err)
	}
	run := blockdev.Runner{Log: p.log}
	if _, err := run.Run(ctx, nil, "mkfs.ext4", []string{"-F", "-q", "-O", "^has_journal", "-m", "0", att.Path}); err != nil {
		att.Detach()
		return "", nil, fmt.Errorf("temporary filesystem: %w", err)
	}
	dir, unmount, err := blockdev.MountExt4(att.Path, false)
	if err != nil {
		att.Detach()
		return "", nil, fmt.Errorf("temporary filesystem: %w", err)
	}
	return dir, func() error {
		return errors.Join(unmount(), att.Detach())
	}, nil
}

// growShrunkRoot grows the root filesystem, made in the first
// shrink.onTarget bytes of its partition, over the temporary one to
// fill the partition.
func (p *Plan) growShrunkRoot(ctx context.Context, run blockdev.Runner) error {
	root := p.partition(p.root)
	att, err := blockdev.AttachPartition(ctx, p.Target.Path, 0, root.Start, root.Size, false)
	if err != nil {
		return fmt.Errorf("root partition: %w", err)
	}
	defer att.Detach()
	p.rep.Phase("grow root filesystem", 0)
	if _, err := run.Run(ctx, nil, "resize2fs", resize2fsArgs(att.Path)); err != nil {
		return fmt.Errorf("root partition: %w", err)
	}
	return nil
}
