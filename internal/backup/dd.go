package backup

import (
	"fmt"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/disklayout"
	"github.com/pibackup/pibackup/internal/size"
)

// A dd or ddz set is one image of the source disk, <name>.img (dd) or
// <name>.img.gz / .img.zst (ddz): the whole disk, or with
// --used-partitions-only up to the end of its last partition. image.go
// writes it.

// planDD plans the image of a dd or ddz set.
func planDD(p *Plan, in planInput) error {
	s := in.src
	end := s.disk.Size
	from := "the whole disk " + s.path
	if in.opts.UsedPartitionsOnly {
		end = usedEnd(s.disk)
		from = fmt.Sprintf("%s up to the end of its last partition", s.path)
		if end < s.disk.Size {
			p.Notes = append(p.Notes, fmt.Sprintf("image truncated from %s to %s (end of the last partition)", size.Format(s.disk.Size), size.Format(end)))
		}
	}
	est, err := in.images.measureImage(0, end, s.disk.Partitions)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrPreflight, err)
	}
	p.Notes = append(p.Notes, est.notes...)
	n := est.read // the rest are holes
	if in.comp != backupset.CompressNone {
		n = min(n, usedEstimate(s.disk)) // compressed free space is small; used data is not
	}
	rel := in.name + in.ext
	p.Items = append(p.Items, PlanItem{File: rel, From: imageFrom(from, in, est), Estimate: n, step: step{
		kind: stepImage, rel: rel, comp: in.comp, start: 0, size: end, parts: s.disk.Partitions, phase: "disk image"}})
	p.facts.imageSize = end
	if in.remote && in.comp == backupset.CompressNone {
		p.Notes = append(p.Notes, fmt.Sprintf("a file on a server has no holes: the unused blocks of the %s image go over the network as zeros; -t ddz sends them compressed", size.Format(end)))
	}
	if s.running && s.root == nil {
		p.Notes = append(p.Notes, "the root filesystem is on another disk and is not in the image")
	}
	return nil
}

// usedEnd is the end of the last partition, rounded up to whole MiB as
// raspiBackup's `dd bs=1M count=...` does, and at most the disk size.
func usedEnd(d *backupset.Disk) int64 {
	var end int64
	for _, p := range d.Partitions {
		end = max(end, p.Start+p.Size)
	}
	if d.Table == "gpt" {
		end += 33 * int64(max(d.SectorSize, disklayout.SectorSize)) // the backup GPT at the end
	}
	end = (end + (1<<20 - 1)) &^ (1<<20 - 1)
	return min(end, d.Size)
}

func usedEstimate(d *backupset.Disk) int64 {
	var n int64
	for i := range d.Partitions {
		n += partUsed(&d.Partitions[i])
	}
	return n
}
