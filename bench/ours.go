package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/compress"
	"github.com/pibackup/pibackup/internal/disklayout"
	"github.com/pibackup/pibackup/internal/imageio"
	"github.com/pibackup/pibackup/internal/usedblocks"
)

// planReport is what ours-image prints on stdout for the harness.
type planReport struct {
	Read  int64              `json:"read"`
	Size  int64              `json:"size"`
	Parts []imageio.PartPlan `json:"parts"`
}

// oursImage images a disk the way the backup engine will: a sparse raw
// file, or a gzip/zstd stream with zeros for the skipped blocks. With
// -part N it images one partition only (to compare with partclone).
func oursImage(args []string) error {
	fs := flag.NewFlagSet("ours-image", flag.ContinueOnError)
	z := fs.String("z", "none", "compression: none, gzip or zstd")
	out := fs.String("o", "", "output file")
	full := fs.Bool("full", false, "read every block")
	part := fs.Int("part", 0, "image only this partition")
	live := fs.Bool("live", false, "DEV is a mounted ext4 (no partition table): map it group by group while copying")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *live {
		if fs.NArg() != 1 || *out == "" {
			return fmt.Errorf("usage: ours-image -live -o OUT DEV")
		}
		return liveImage(fs.Arg(0), *out)
	}
	if fs.NArg() != 1 || *out == "" {
		return fmt.Errorf("usage: ours-image [-z none|gzip|zstd] [-full] [-part N] -o OUT DISK")
	}
	c, err := backupset.ParseCompression(*z)
	if err != nil {
		return err
	}
	d, err := disklayout.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	src, err := os.Open(fs.Arg(0))
	if err != nil {
		return err
	}
	defer src.Close()

	var plan *imageio.Plan
	var base int64 // where the imaged range starts on the disk
	if *part != 0 {
		plan, base, err = partitionPlan(src, d, *part)
	} else {
		plan, err = imageio.PlanDisk(src, d, imageio.PlanOptions{Full: *full})
	}
	if err != nil {
		return err
	}
	if err := json.NewEncoder(os.Stdout).Encode(planReport{Read: plan.Read(), Size: plan.Size, Parts: plan.Parts}); err != nil {
		return err
	}
	var in io.ReaderAt = src
	if base != 0 {
		in = io.NewSectionReader(src, base, plan.Size)
	}

	f, err := os.Create(*out)
	if err != nil {
		return err
	}
	defer f.Close()
	if c == backupset.CompressNone {
		if err := imageio.WriteSparseFile(f, in, plan, imageio.CopyOptions{}); err != nil {
			return err
		}
		return f.Close()
	}
	// Whole blocks to the compressor; pgzip and zstd buffer internally.
	bw := bufio.NewWriterSize(f, 1<<20)
	zw, err := compress.NewWriter(bw, c)
	if err != nil {
		return err
	}
	if err := imageio.WriteStream(zw, in, plan.Size, plan.Extents, imageio.CopyOptions{}); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return f.Close()
}

// partitionPlan is a plan for partition n alone, relative to its start.
func partitionPlan(src *os.File, d *backupset.Disk, n int) (*imageio.Plan, int64, error) {
	for _, p := range d.Partitions {
		if p.Number != n {
			continue
		}
		res, err := usedblocks.Analyze(io.NewSectionReader(src, p.Start, p.Size), p.Size, p.FSType)
		if err != nil {
			return nil, 0, err
		}
		plan := &imageio.Plan{Size: p.Size, Extents: res.Extents,
			Parts: []imageio.PartPlan{{Number: n, Size: p.Size, FSType: p.FSType, Known: res.Known, Reason: res.Reason, Read: res.Used()}}}
		if !res.Known {
			plan.Extents = []imageio.Extent{{Off: 0, Len: p.Size}}
		}
		return plan, p.Start, nil
	}
	return nil, 0, fmt.Errorf("no partition %d", n)
}

// oursRestore writes an image (raw or compressed) to a new file, leaving
// holes for zero blocks, as the restore engine does on a fresh target.
func oursRestore(args []string) error {
	fs := flag.NewFlagSet("ours-restore", flag.ContinueOnError)
	z := fs.String("z", "none", "compression: none, gzip or zstd")
	in := fs.String("i", "", "image")
	out := fs.String("o", "", "target file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c, err := backupset.ParseCompression(*z)
	if err != nil {
		return err
	}
	src, err := os.Open(*in)
	if err != nil {
		return err
	}
	defer src.Close()
	zr, err := compress.NewReader(bufio.NewReaderSize(src, 1<<20), c)
	if err != nil {
		return err
	}
	defer zr.Close()
	dst, err := os.Create(*out)
	if err != nil {
		return err
	}
	defer dst.Close()
	if _, err := imageio.WriteImage(dst, zr, true, nil); err != nil {
		return err
	}
	return dst.Close()
}

// liveImage images the mounted ext4 on dev into a sparse file the way a
// running system's dd set reads its mounted root: the allocation map is
// read group by group just before that group is copied (usedblocks.Live
// through imageio.LiveRegion), so blocks allocated during the copy are
// in the image.
func liveImage(dev, out string) error {
	src, err := os.Open(dev) // buffered: the kernel's bitmaps are in the page cache
	if err != nil {
		return err
	}
	defer src.Close()
	size, err := src.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	l, known, reason, err := usedblocks.OpenLive(src, size, "ext4")
	if err != nil {
		return err
	}
	if !known {
		return fmt.Errorf("%s: no live map: %s", dev, reason)
	}
	plan := &imageio.Plan{Size: size}
	opts := imageio.CopyOptions{Live: []imageio.LiveRegion{{Start: 0, Size: size, Window: l.Window(), Map: l.Extents}}}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := imageio.WriteSparseFile(f, src, plan, opts); err != nil {
		return err
	}
	return f.Close()
}
