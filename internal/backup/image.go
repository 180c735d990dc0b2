package backup

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/imageio"
	"github.com/pibackup/pibackup/internal/size"
	"github.com/pibackup/pibackup/internal/usedblocks"
)

// An image (the dd payload, or the boot partition image of a tar or rsync
// set) is written like dd would write it, except that the blocks the
// filesystems do not use are not read: they read as zeros in the image,
// as holes in a raw .img and as runs of zeros, which compress to almost
// nothing, in a .img.gz/.img.zst. A filesystem mounted read-write on this
// machine (the running root and boot partitions) is mapped while it is
// copied, group by group just before each group is read (usedblocks.Live),
// so a block the system allocates during the backup is not lost. Anything
// usedblocks cannot map (an unknown filesystem, a dirty ext4 that is not
// mounted here) is read whole, and --full-read reads every byte as before.

// imagePlan is what to read for one image file: [start, start+size) of
// the source disk.
type imagePlan struct {
	start, size int64
	extents     []imageio.Extent // disk-relative, clipped to the image, live regions left out
	live        []imageio.LiveRegion
	liveRead    int64 // what the live regions' maps said when planned
	parts       []imageio.PartPlan
	closers     []io.Closer // the partition devices the live maps read
}

// read is the number of bytes the plan reads (live regions as mapped at
// planning time: an estimate for the progress bar).
func (p *imagePlan) read() int64 { return imageio.Total(p.extents) + p.liveRead }

func (p *imagePlan) close() {
	for _, c := range p.closers {
		c.Close()
	}
}

// planImage decides what to read of [start, start+size) of the source
// disk. parts are the partitions whose allocation maps are used; a byte
// outside all of them is always read.
func (r *runner) planImage(start, size int64, parts []backupset.Partition) (*imagePlan, error) {
	f, err := os.Open(r.src.path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// The maps are small reads scattered over the disk: readahead after
	// each would read free space the image then leaves out.
	imageio.NoReadahead(f)
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
	ip := &imagePlan{start: start, size: size, parts: pl.Parts}
	for _, name := range r.mountedRW() {
		for i := range pl.Parts {
			pp := &pl.Parts[i]
			if r.src.partName(pp.Number) != name || r.opts.FullRead {
				continue
			}
			// Its allocation map changes while it is copied: it is mapped
			// group by group just before each group is read (see
			// usedblocks.Live), through the partition's own device, whose
			// page cache holds the map the kernel is changing.
			region, used, err := r.liveMap(pp, name)
			if err != nil || region == nil {
				reason := "mounted read-write, allocation map not readable live"
				if err != nil {
					reason += ": " + err.Error()
				}
				pp.Known, pp.Reason = false, reason
				pp.Read = min(pp.Size, d.Size-pp.Start)
				pl.Extents = append(pl.Extents, imageio.Extent{Off: pp.Start, Len: pp.Read})
				continue
			}
			pp.Known, pp.Reason, pp.Read = true, "", used
			pl.Extents = cutOut(pl.Extents, pp.Start, pp.Start+pp.Size)
			ip.closers = append(ip.closers, region.dev)
			if region.Start >= start && region.Start+region.Size <= start+size {
				ip.live = append(ip.live, region.LiveRegion)
				ip.liveRead += used
			}
		}
	}
	ip.extents = clip(pl.Extents, start, start+size)
	return ip, nil
}

// measureImage says what an image of [start, start+size) of the source
// disk reads as the filesystems' allocation maps say now (planSet's
// imageMeasurer).
func (r *runner) measureImage(start, size int64, parts []backupset.Partition) (imageEstimate, error) {
	pl, err := r.planImage(start, size, parts)
	if err != nil {
		return imageEstimate{}, err
	}
	defer pl.close()
	return imageEstimate{read: pl.read(), notes: pl.notes(r)}, nil
}

// liveMap is a mounted partition mapped while it is copied, with the
// device its map is read from.
type liveMap struct {
	imageio.LiveRegion
	dev *os.File
}

// liveMap opens the mounted partition name for a live map.
func (r *runner) liveMap(pp *imageio.PartPlan, name string) (*liveMap, int64, error) {
	node := filepath.Join(cmp.Or(r.deps.Sys.Dev, "/dev"), name)
	f, err := os.Open(node) // buffered: the page cache is the point
	if err != nil {
		return nil, 0, err
	}
	imageio.NoReadahead(f) // the map's reads are a few blocks each
	live, known, reason, err := usedblocks.OpenLive(f, pp.Size, pp.FSType)
	if err != nil || !known {
		f.Close()
		if err == nil {
			err = errors.New(reason)
		}
		return nil, 0, err
	}
	start := pp.Start
	ext, known, err := live.Extents(0, pp.Size)
	if err != nil || !known {
		f.Close()
		return nil, 0, cmp.Or(err, errors.New("allocation map not trusted"))
	}
	region := &liveMap{dev: f, LiveRegion: imageio.LiveRegion{
		Start: start, Size: pp.Size, Window: live.Window(),
		Map: func(from, to int64) ([]imageio.Extent, bool, error) {
			ext, known, err := live.Extents(from-start, to-start)
			for i := range ext {
				ext[i].Off += start
			}
			return ext, known, err
		},
		OnMap: func(from, to, used int64, err error) {
			if err != nil {
				r.log.Warn("live map of a piece failed; reading it whole", "partition", name, "from", from-start, "to", to-start, "err", err)
			}
		},
	}}
	r.log.Info("image: mounted read-write, mapped group by group while copied", "partition", name,
		"fstype", pp.FSType, "used now", size.Format(usedblocks.Total(ext)), "size", size.Format(pp.Size))
	return region, usedblocks.Total(ext), nil
}

// cutOut removes [from, to) from sorted extents.
func cutOut(ext []imageio.Extent, from, to int64) []imageio.Extent {
	var out []imageio.Extent
	for _, e := range ext {
		if e.End() <= from || e.Off >= to {
			out = append(out, e)
			continue
		}
		if e.Off < from {
			out = append(out, imageio.Extent{Off: e.Off, Len: from - e.Off})
		}
		if e.End() > to {
			out = append(out, imageio.Extent{Off: to, Len: e.End() - to})
		}
	}
	return out
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
		if m, ok := mounted[name]; ok && m.Writable() {
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
				"fstype", pp.FSType, "read", size.Format(pp.Read), "size", size.Format(pp.Size))
		} else {
			r.log.Info("image: partition read in full", "file", rel, "partition", pp.Number,
				"fstype", pp.FSType, "size", size.Format(pp.Size), "reason", pp.Reason)
		}
	}
	r.log.Info("image plan", "file", rel, "read", size.Format(p.read()), "image", size.Format(p.size))
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
	defer pl.close()
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
	opts := imageio.CopyOptions{Progress: r.rep, Live: pl.live}
	if comp != backupset.CompressNone && comp != "" {
		if start != 0 {
			return backupset.File{}, fmt.Errorf("BUG: compressed image of %s starts at %d", r.src.path, start)
		}
		return r.streamTo(ctx, rel, comp, true, func(w io.Writer) error {
			return imageio.WriteStream(ctxWriter{ctx, w}, in, size, pl.extents, opts)
		})
	}
	out, err := r.createPayload(ctx, rel, true)
	if err != nil {
		return backupset.File{}, err
	}
	opts.SkipZeros = true
	_, err = imageio.CopySparse(ctxWriterAt{ctx, out, start}, in, pl.extents, opts)
	if err == nil {
		err = out.extend(size)
	}
	return r.finishOut(out, err)
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
