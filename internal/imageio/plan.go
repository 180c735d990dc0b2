// Package imageio reads and writes raw disk images the way dd does, but
// only where the data is: a backup reads the partition table area, the
// gaps between partitions (bootloaders live there) and the allocated
// blocks of each filesystem (see usedblocks), and writes an image in which
// everything else reads as zeros: holes in a plain file, runs of zeros
// (which compress to almost nothing) in a compressed stream. A restore
// writes such an image back, optionally skipping all-zero blocks on a
// target that already reads as zeros.
//
// Memory is bounded (a few 4 MiB buffers) so the code runs on a 512 MB Pi
// Zero 2 W, and reads are large and aligned because that is what SD cards
// and USB sticks are fast at.
package imageio

import (
	"cmp"
	"fmt"
	"io"
	"slices"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/usedblocks"
)

// Extent is a byte range; in a Plan it is relative to the start of the
// disk.
type Extent = usedblocks.Extent

// PartPlan says how one partition is read.
type PartPlan struct {
	Number int
	Start  int64
	Size   int64
	FSType string
	// Known is true when only the filesystem's allocated blocks are read.
	Known bool
	// Reason says why the whole partition is read, for the log.
	Reason string
	// Read is the number of bytes of the partition that will be read.
	Read int64
}

// Plan is what to read of a disk.
type Plan struct {
	Size    int64      // bytes of the disk, and of the image
	Extents []Extent   // what to read, disk-relative, sorted and merged
	Parts   []PartPlan // one per partition of the layout
}

// Read is the number of bytes the plan reads.
func (p *Plan) Read() int64 { return usedblocks.Total(p.Extents) }

// PlanOptions tune PlanDisk.
type PlanOptions struct {
	// Full reads every byte, like dd: for a filesystem we might misjudge,
	// or to keep deleted files recoverable from the image.
	Full bool
}

// PlanDisk decides what to read of the disk src laid out as d: everything
// outside the partitions (MBR or GPT, the gap before the first partition
// where some boards keep their bootloader, the backup GPT), and of each
// partition its allocated blocks, or all of it when usedblocks does not
// know the filesystem.
//
// The result is a union: a byte any reason wants read is read. Partitions
// that overlap (a corrupt table, or an extended container and its
// logical partitions) therefore lose nothing.
func PlanDisk(src io.ReaderAt, d *backupset.Disk, opts PlanOptions) (*Plan, error) {
	p := &Plan{Size: d.Size}
	if opts.Full {
		p.Extents = []Extent{{Off: 0, Len: d.Size}}
		for _, part := range d.Partitions {
			p.Parts = append(p.Parts, PartPlan{Number: part.Number, Start: part.Start, Size: part.Size,
				FSType: part.FSType, Reason: "full read requested", Read: part.Size})
		}
		return p, nil
	}

	var want []Extent
	// Everything not inside some partition is read.
	parts := slices.Clone(d.Partitions)
	slices.SortFunc(parts, func(a, b backupset.Partition) int { return cmp.Compare(a.Start, b.Start) })
	var pos int64
	for _, part := range parts {
		if part.Start > pos {
			want = append(want, Extent{Off: pos, Len: part.Start - pos})
		}
		pos = max(pos, part.Start+part.Size)
	}
	if pos < d.Size {
		want = append(want, Extent{Off: pos, Len: d.Size - pos})
	}

	for _, part := range d.Partitions {
		pp := PartPlan{Number: part.Number, Start: part.Start, Size: part.Size, FSType: part.FSType}
		size := min(part.Size, d.Size-part.Start)
		if part.Start < 0 || size <= 0 {
			return nil, fmt.Errorf("partition %d (%d+%d) outside the %d-byte disk", part.Number, part.Start, part.Size, d.Size)
		}
		res, err := usedblocks.Analyze(io.NewSectionReader(src, part.Start, size), size, part.FSType)
		if err != nil {
			return nil, fmt.Errorf("partition %d: allocation map: %w", part.Number, err)
		}
		if res.Known {
			pp.Known = true
			for _, e := range res.Extents {
				want = append(want, Extent{Off: part.Start + e.Off, Len: e.Len})
			}
			pp.Read = res.Used()
		} else {
			pp.Reason = res.Reason
			if pp.Reason == "" {
				pp.Reason = "unknown filesystem"
			}
			want = append(want, Extent{Off: part.Start, Len: size})
			pp.Read = size
		}
		p.Parts = append(p.Parts, pp)
	}
	p.Extents = merge(want)
	return p, nil
}

// merge sorts extents and joins overlapping and touching ones.
func merge(ext []Extent) []Extent {
	slices.SortFunc(ext, func(a, b Extent) int { return cmp.Compare(a.Off, b.Off) })
	out := ext[:0]
	for _, e := range ext {
		if e.Len <= 0 {
			continue
		}
		if k := len(out); k > 0 && e.Off <= out[k-1].End() {
			if e.End() > out[k-1].End() {
				out[k-1].Len = e.End() - out[k-1].Off
			}
			continue
		}
		out = append(out, e)
	}
	return out
}
