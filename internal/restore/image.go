package restore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/blockdev"
	"github.com/pibackup/pibackup/internal/compress"
	"github.com/pibackup/pibackup/internal/disklayout"
	"github.com/pibackup/pibackup/internal/i18n"
	"github.com/pibackup/pibackup/internal/size"
)

// blockSize is the unit of image copies and of hole detection.
const blockSize = 1 << 20

func decompressor(r io.Reader, c backupset.Compression) (io.ReadCloser, error) {
	return compress.NewReader(r, c)
}

// ErrTooMuchData is returned when a stream holds more than its
// destination can take.
var ErrTooMuchData = errors.New("more data than fits")

// copyToDisk copies r to w (starting at w's offset 0) in 1 MiB blocks. At
// most limit bytes are accepted: more is an error wrapping ErrTooMuchData.
// With holes, all-zero blocks are skipped instead of written: on a fresh
// (sparse, all-zero) image file they stay holes.
func copyToDisk(ctx context.Context, w *io.OffsetWriter, r io.Reader, limit int64, holes bool) (int64, error) {
	buf := make([]byte, blockSize)
	var off int64
	for {
		if err := ctx.Err(); err != nil {
			return off, err
		}
		n, err := readBlock(r, buf)
		if n > 0 {
			if off+int64(n) > limit {
				return off, fmt.Errorf("%w: %d bytes into a %d-byte area", ErrTooMuchData, off+int64(n), limit)
			}
			if !holes || !isZero(buf[:n]) {
				if _, werr := w.WriteAt(buf[:n], off); werr != nil {
					return off, fmt.Errorf("write at %d: %w", off, werr)
				}
			}
			off += int64(n)
		}
		if err == io.EOF {
			return off, nil
		}
		if err != nil {
			return off, fmt.Errorf("read: %w", err)
		}
	}
}

func isZero(b []byte) bool {
	for len(b) >= 8 {
		if b[0]|b[1]|b[2]|b[3]|b[4]|b[5]|b[6]|b[7] != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// planImage plans a dd/ddz restore: the image is written as is; a larger
// target gets the last Linux partition grown (when nothing follows it)
// and its ext4 resized; a smaller target is accepted when every partition
// ends before its end, or, when the root partition does not, if the
// root's files fit a smaller root partition (imageshrink.go).
func (p *Plan) planImage(ctx context.Context) error {
	s := p.set
	head, err := s.imageHead(blockSize)
	if err != nil {
		return fmt.Errorf("set %s: %w", s.dirName, err)
	}
	if s.comp == backupset.CompressNone {
		p.imageSize = s.payloadSize
		if s.manifest != nil && s.manifest.ImageSize > 0 {
			// Known before a byte is written: refuse now, not after.
			if err := CheckImageLength(s.payloadSize, s.manifest.ImageSize, nil); err != nil {
				return fmt.Errorf("set %s: %s: %w: %w", s.dirName, s.payload, err, ErrBadSet)
			}
		}
	} else if s.manifest != nil && s.manifest.ImageSize > 0 {
		p.imageSize = s.manifest.ImageSize
	}
	src, err := disklayout.ReadTable(head, p.imageSize)
	if err != nil {
		return fmt.Errorf("set %s: %s: %w", s.dirName, s.payload, err)
	}
	if s.manifest != nil { // filesystem facts the image head cannot tell
		for i := range src.Partitions {
			if m, ok := disklayout.PartitionByNumber(&s.manifest.Disk, src.Partitions[i].Number); ok {
				q := &src.Partitions[i]
				q.FSType, q.UUID, q.FSUsed = m.FSType, m.UUID, m.FSUsed
				if q.Label == "" {
					q.Label = m.Label
				}
			}
		}
	}
	if ext, ok := disklayout.Extended(src); ok {
		// The logical partitions' EBRs lie deep in the image, beyond the
		// head read here: the plan could not see the boot and root.
		return fmt.Errorf("set %s: the image has an extended partition (%d) with logical partitions (a NOOBS/PINN card); restoring such a dd image is %w: use a partition-oriented (-P) set", s.dirName, ext.Number, ErrNotSupported)
	}
	p.Source = src
	if s.manifest == nil {
		// A raspiBackup image carries no checksum.
		end := disklayout.End(src)
		if s.comp == backupset.CompressNone {
			if s.payloadSize < end {
				return fmt.Errorf("set %s: %s is %d bytes, but its last partition ends at %d: the image is truncated: %w", s.dirName, s.payload, s.payloadSize, end, ErrBadSet)
			}
			p.notes = append(p.notes, i18n.M(i18n.NoteNoManifestDD))
		} else {
			p.notes = append(p.notes, i18n.M(i18n.NoteNoManifestDDZ, s.comp))
		}
	}
	p.boot, p.root = bootRoot(s.manifest, src)
	p.Need = disklayout.MinDiskSize(src)
	if p.Target.Size < p.Need {
		// The root partition shrinks, when its files fit.
		if err := p.planImageShrink(ctx, src, &disklayout.TooSmallError{What: "target", Need: p.Need, Have: p.Target.Size}); err != nil {
			return err
		}
		return p.planImageIDs()
	}
	layout := cloneLayout(src)
	layout.Size = p.Target.Size
	if src.Table == "gpt" && p.Target.Size < src.Size {
		// The backup GPT moves to the new end; nothing else changes.
		p.notes = append(p.notes, i18n.M(i18n.NoteImageLarger))
	}
	if p.Target.Size > src.Size && p.root != 0 {
		grown, res, err := disklayout.Resize(src, p.Target.Size, disklayout.ResizeOptions{KeepFollowing: true})
		if err == nil && res.Number == p.root && res.NewSize > res.OldSize {
			layout, p.resized, p.growRoot = grown, res, true
		}
	}
	if p.imageSize == 0 {
		p.notes = append(p.notes, i18n.M(i18n.NoteNoImageSize))
	} else if p.imageSize > p.Target.Size {
		p.notes = append(p.notes, i18n.M(i18n.NoteTailLeftOut, size.Format(p.imageSize-p.Target.Size)))
	}
	p.Layout = layout
	return p.planImageIDs()
}

// planImageIDs decides the ids of the restored image and reads the
// cmdline.txt files they are written into, for the plan.
func (p *Plan) planImageIDs() error {
	s, src := p.set, p.Source
	var err error
	p.ids, err = newIDs(src, p.Layout, p.boot, p.root, p.o.KeepIDs)
	if err != nil {
		return err
	}
	if !p.o.KeepIDs && p.boot != 0 {
		// The image's cmdline.txt is what gets rewritten; show it.
		if bp, ok := disklayout.PartitionByNumber(src, p.boot); ok && s.comp == backupset.CompressNone {
			if f, err := s.fsys.Open(s.payload); err == nil {
				if c, err := readCmdlines(f, bp.Start, bp.Size); err == nil {
					p.cmdlines = c
				}
				f.Close()
			}
		}
	}
	return nil
}

func cloneLayout(d *backupset.Disk) *backupset.Disk {
	out := *d
	out.Partitions = append([]backupset.Partition(nil), d.Partitions...)
	return &out
}

// executeImage writes a dd image, then grows the root and gives the copy
// its own ids.
func (p *Plan) executeImage(ctx context.Context, res *Result) (err error) {
	t := p.Target
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
	p.rep.Phase("write image", s.payloadSize)
	zr, err := s.openPayload(s.payload, s.comp, p.rep, false)
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	defer zr.Close()
	// The first MiB (the partition table, the boot code) is held back
	// and written last, only after the whole stream was read and found
	// to be the image the set recorded: a damaged image never leaves a
	// target that looks restored.
	head := make([]byte, blockSize)
	hn, err := readBlock(zr, head)
	if err != nil && err != io.EOF {
		return fmt.Errorf("image %s: %w (the file is truncated or corrupt): %w", s.payload, err, ErrDamaged)
	}
	head = head[:hn]
	if p.shrink != nil {
		return p.writeImageShrunk(ctx, f, zr, head, res)
	}
	// Data past the target's end lies after the last partition (the plan
	// checked): it is read and dropped.
	var n int64
	if err != io.EOF {
		w := io.NewOffsetWriter(f, int64(hn))
		n, err = copyToDisk(ctx, w, zr, t.Size-int64(hn), t.IsFile)
		if errors.Is(err, ErrTooMuchData) {
			rest, cerr := countStream(ctx, zr)
			if cerr != nil {
				return fmt.Errorf("image %s: %w", s.payload, cerr)
			}
			p.log.Info("image data after the target's end dropped", "bytes", rest)
			n = t.Size - int64(hn)
			err = nil
		}
		if err != nil {
			return fmt.Errorf("image %s: %w", s.payload, err)
		}
	}
	res.Bytes = int64(hn) + n
	if err := zr.finish(ctx); err != nil {
		return fmt.Errorf("image: %w", err)
	}
	if err := p.checkImageLength(zr.N); err != nil {
		return err
	}
	if _, err := f.WriteAt(head, 0); err != nil {
		return fmt.Errorf("image: write first MiB: %w", err)
	}
	// From here on the disk is the image; its table is rewritten (for the
	// new size and ids) after the filesystems are adjusted.
	if err := p.adjustImage(ctx, f, res); err != nil {
		return err
	}
	return p.finish(ctx, f, res)
}

// CheckImageLength checks the uncompressed length n of a dd image: the
// manifest's image_size (want) when recorded, else (a raspiBackup image)
// at least the end of the last partition of its table d. The restore
// checks it before writing (uncompressed) or before it writes the
// partition table (compressed); verify after decompressing.
func CheckImageLength(n, want int64, d *backupset.Disk) error {
	if want > 0 {
		if n != want {
			return fmt.Errorf("the image is %d bytes, the manifest's image_size is %d (truncated or replaced)", n, want)
		}
		return nil
	}
	if end := disklayout.End(d); n < end {
		return fmt.Errorf("the image is %d bytes, but its last partition ends at %d: the image is truncated", n, end)
	}
	return nil
}

// checkImageLength checks the uncompressed length of the image.
func (p *Plan) checkImageLength(n int64) error {
	s := p.set
	var want int64
	if s.manifest != nil {
		want = s.manifest.ImageSize
	}
	if err := CheckImageLength(n, want, p.Source); err != nil {
		return fmt.Errorf("%s: %w: %w", s.payload, err, ErrDamaged)
	}
	return nil
}

// adjustImage grows the root filesystem, and gives the copy new ids and
// the boot configuration that names them.
func (p *Plan) adjustImage(ctx context.Context, f *os.File, res *Result) error {
	run := blockdev.Runner{Log: p.log}
	if p.root != 0 {
		root := p.partition(p.root)
		id, err := disklayout.Identify(io.NewSectionReader(f, root.Start, root.Size))
		if err != nil {
			return fmt.Errorf("root partition: %w", err)
		}
		if strings.HasPrefix(id.Type, "ext") {
			if err := p.adjustImageRoot(ctx, run, root, res); err != nil {
				return err
			}
		} else if p.growRoot {
			p.log.Warn("root partition grown but its filesystem is not ext2/3/4; not resized", "fs", id.Type)
		}
	}
	return p.adjustImageBoot(f, res)
}

// adjustImageBoot gives the boot filesystem of a written image a new
// serial and makes its cmdline.txt name the new ids.
func (p *Plan) adjustImageBoot(f *os.File, res *Result) error {
	if p.boot != 0 && !p.o.KeepIDs {
		boot := p.partition(p.boot)
		if id, err := disklayout.Identify(io.NewSectionReader(f, boot.Start, boot.Size)); err == nil && id.Type == "vfat" {
			if err := p.newFATSerial(f, boot); err != nil {
				return err
			}
			changes, err := rewriteCmdlines(f, boot.Start, boot.Size, p.ids)
			if err != nil {
				p.log.Warn("boot configuration not updated", "err", err)
			}
			for _, c := range changes {
				res.Changes = append(res.Changes, c.String())
			}
		}
	}
	return nil
}

func (p *Plan) adjustImageRoot(ctx context.Context, run blockdev.Runner, root backupset.Partition, res *Result) error {
	att, err := blockdev.AttachPartition(ctx, p.Target.Path, 0, root.Start, root.Size, false)
	if err != nil {
		return fmt.Errorf("root partition: %w", err)
	}
	defer att.Detach()
	// resize2fs and tune2fs -U both want a freshly checked filesystem.
	p.rep.Phase("check root filesystem", 0)
	if _, err := run.Run(ctx, nil, "e2fsck", e2fsckArgs(att.Path, true), 1); err != nil {
		return fmt.Errorf("root partition: %w", err)
	}
	if p.growRoot {
		p.rep.Phase("grow root filesystem", 0)
		if _, err := run.Run(ctx, nil, "resize2fs", resize2fsArgs(att.Path)); err != nil {
			return fmt.Errorf("root partition: %w", err)
		}
	}
	if p.o.KeepIDs {
		return nil
	}
	if _, err := run.Run(ctx, nil, "tune2fs", tune2fsUUIDArgs(att.Path, p.ids.fsUUID(root.Number))); err != nil {
		return fmt.Errorf("root partition: %w", err)
	}
	mnt, unmount, err := blockdev.MountExt4(att.Path, false)
	if err != nil {
		return fmt.Errorf("root partition: %w", err)
	}
	changes, _, ferr := p.fixFstab(mnt, res)
	if err := unmount(); err != nil {
		return fmt.Errorf("root partition: %w", err)
	}
	if ferr != nil {
		return ferr
	}
	for _, c := range changes {
		res.Changes = append(res.Changes, c.String())
	}
	return nil
}
