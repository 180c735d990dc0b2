package backup

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/imageio"
)

// An image (the dd payload, or the boot partition image of a tar or rsync
// set) is written like dd would write it, except that the blocks the
// filesystems do not use are not read: they read as zeros in the image,
// as holes in a raw .img and as runs of zeros, which compress to almost
// nothing, in a .img.gz/.img.zst. Anything usedblocks cannot map (an
// unknown filesystem, a mounted or dirty ext4) is read whole, and
// --full-read reads every byte as before.

// imagePlan is what to read for one image file: [start, start+size) of
// the source disk.
type imagePlan struct {
	start, size int64
	extents     []imageio.Extent // disk-relative, clipped to the image
	parts       []imageio.PartPlan
}

// read is the number of bytes the plan reads.
func (p *imagePlan) read() int64 { return imageio.Total(p.extents) }

// planImage decides what to read of [start, start+size) of the source
// disk. parts are the partitions whose allocation maps are used; a byte
// outside all of them is always read.
func (r *runner) planImage(start, size int64, parts []backupset.Partition) (*imagePlan, error) {
	f, err := os.Open(r.src.path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	d := *r.src.disk
	d.Partitions = nil
	for _, p := range parts {
		// An extended partition contains its logical partitions; mapped
		// as a whole it would make them read whole too. Left out, the
		// EBRs between the logical partitions are outside every
		// partition and so are read.
		if isExtended(p) {
			continue
		}
		d.Partitions = append(d.Partitions, p)
	}
	pl, err := imageio.PlanDisk(f, &d, imageio.PlanOptions{Full: r.opts.FullRead})
	if err != nil {
		return nil, fmt.Errorf("plan the image of %s: %w", r.src.path, err)
	}
	for _, name := range r.mountedRW() {
		for i := range pl.Parts {
			pp := &pl.Parts[i]
			if pp.Known && r.src.partName(pp.Number) == name {
				// Its allocation map can change between reading it and
				// reading the data; blocks allocated in between would
				// be zeros in the image.
				pp.Known = false
				pp.Reason = "mounted read-write"
				pp.Read = min(pp.Size, d.Size-pp.Start)
				pl.Extents = append(pl.Extents, imageio.Extent{Off: pp.Start, Len: pp.Read})
			}
		}
	}
	return &imagePlan{start: start, size: size, extents: clip(pl.Extents, start, start+size), parts: pl.Parts}, nil
}

func isExtended(p backupset.Partition) bool {
	return p.FSType == "" && (p.Type == "5" || p.Type == "f" || p.Type == "85")
}

// mountedRW returns the kernel names of the source disk's partitions that
// are mounted read-write. Image files have no mounts (their partition
// names are made up).
func (r *runner) mountedRW() []string {
	if !r.src.isDevice {
		return nil
	}
	mounted, err := r.deps.Sys.MountedParts()
	if err != nil {
		r.log.Warn("list mounts; mapping every partition as if unmounted", "err", err)
		return nil
	}
	var out []string
	for _, p := range r.src.disk.Partitions {
		name := r.src.partName(p.Number)
		if m, ok := mounted[name]; ok && !slices.Contains(strings.Split(m.Options, ","), "ro") {
			out = append(out, name)
		}
	}
	return out
}

// clip sorts ext, merges overlaps and cuts it to [from, to).
func clip(ext []imageio.Extent, from, to int64) []imageio.Extent {
	ext = slices.Clone(ext)
	slices.SortFunc(ext, func(a, b imageio.Extent) int { return cmp.Compare(a.Off, b.Off) })
	var out []imageio.Extent
	for _, e := range ext {
		s, end := max(e.Off, from), min(e.End(), to)
		if end <= s {
			continue
		}
		if k := len(out); k > 0 && s <= out[k-1].End() {
			out[k-1].Len = max(out[k-1].End(), end) - out[k-1].Off
			continue
		}
		out = append(out, imageio.Extent{Off: s, Len: end - s})
	}
	return out
}

// notes are the manifest notes of a plan: every filesystem read whole
// although it was not asked for.
func (p *imagePlan) notes(r *runner) []string {
	if r.opts.FullRead {
		return nil
	}
	var out []string
	for _, pp := range p.parts {
		if pp.Known || pp.FSType == "swap" || pp.Start >= p.start+p.size || pp.Start+pp.Size <= p.start {
			continue
		}
		out = append(out, fmt.Sprintf("partition %d (%s, %s) read in full, free space included: %s",
			pp.Number, r.src.partName(pp.Number), cmp.Or(pp.FSType, "no filesystem"), pp.Reason))
	}
	return out
}

// log writes the plan to the run log, one line per partition.
func (p *imagePlan) log(r *runner, rel string) {
	for _, pp := range p.parts {
		if pp.Start >= p.start+p.size || pp.Start+pp.Size <= p.start {
			continue
		}
		if pp.Known {
			r.log.Info("image: only the used blocks are read", "file", rel, "partition", pp.Number,
				"fstype", pp.FSType, "read", human(pp.Read), "size", human(pp.Size))
		} else {
			r.log.Info("image: partition read in full", "file", rel, "partition", pp.Number,
				"fstype", pp.FSType, "size", human(pp.Size), "reason", pp.Reason)
		}
	}
	r.log.Info("image plan", "file", rel, "read", human(p.read()), "image", human(p.size))
}

// writePlannedImage plans [start, start+size) of the source again (the
// filesystems may have changed since the run was planned), logs the plan
// and writes the image as rel: a sparse raw file, or a compressed stream
// of the whole image. The manifest's checksum is of the image, holes
// read as zeros, as a restore or a verify reads the file.
func (r *runner) writePlannedImage(ctx context.Context, rel string, comp backupset.Compression,
	start, size int64, parts []backupset.Partition, phase string) (backupset.File, error) {
	pl, err := r.planImage(start, size, parts)
	if err != nil {
		return backupset.File{}, err
	}
	pl.log(r, rel)
	for _, n := range pl.notes(r) {
		if !slices.Contains(r.man.Notes, n) {
			r.log.Warn(n)
			r.man.Notes = append(r.man.Notes, n)
		}
	}
	if !r.opts.FullRead {
		r.man.UsedBlocks = true
	}
	src, err := os.Open(r.src.path)
	if err != nil {
		return backupset.File{}, err
	}
	defer src.Close()
	in := r.cleanMountedFATs(src)
	r.rep.Phase(phase, pl.read())
	opts := imageio.CopyOptions{Progress: r.rep}
	if comp != backupset.CompressNone && comp != "" {
		if start != 0 {
			return backupset.File{}, fmt.Errorf("BUG: compressed image of %s starts at %d", r.src.path, start)
		}
		return r.streamTo(rel, comp, true, func(w io.Writer) error {
			return imageio.WriteStream(ctxWriter{ctx, w}, in, size, pl.extents, opts)
		})
	}
	out, err := createOut(r.tmpDir, rel, 0o600, true)
	if err != nil {
		return backupset.File{}, err
	}
	opts.SkipZeros = true
	_, err = imageio.CopySparse(ctxWriterAt{ctx, out, start}, in, pl.extents, opts)
	if err == nil {
		err = out.extend(size)
	}
	if err != nil {
		out.Abort()
		return backupset.File{}, noSpace(err)
	}
	f, err := out.Close()
	if err != nil {
		return backupset.File{}, err
	}
	r.man.Files = append(r.man.Files, f)
	return f, nil
}

// ctxWriter fails writes once ctx is done, which stops an image copy.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

// ctxWriterAt writes disk offset off at off-base of an outFile, and fails
// once ctx is done.
type ctxWriterAt struct {
	ctx  context.Context
	out  *outFile
	base int64
}

func (c ctxWriterAt) WriteAt(p []byte, off int64) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.out.WriteAt(p, off-c.base)
}
