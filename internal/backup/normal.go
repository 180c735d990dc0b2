package backup

import (
	"context"
	"fmt"
	"io"

	"github.com/pibackup/pibackup/internal/backupset"
)

// A tar, tgz or rsync set in normal mode holds the boot partition, as an
// image (<host>-backup.img) or with --boot-tar as a tar (.tmg), the
// partition table (.sfdisk, .mbr), and the files of the root filesystem:
// one archive (tar.go) or a tree of files (rsync.go). The boot files are
// hardlinked to the previous set's when equal.

// planNormal plans a tar, tgz or rsync set in normal mode.
func planNormal(p *Plan, in planInput) error {
	s := in.src
	if s.boot == nil {
		return fmt.Errorf("%w: no FAT boot partition on %s", ErrPreflight, s.path)
	}
	if s.rootDir == "" {
		return fmt.Errorf("%w: no Linux root filesystem on %s", ErrPreflight, s.path)
	}
	p.facts.bootPartition = s.boot.Number
	if s.root != nil {
		p.facts.rootPartition = s.root.Number
	}
	if n := len(s.disk.Partitions); n > 2 {
		p.Notes = append(p.Notes, fmt.Sprintf("%s has %d partitions; normal mode saves only the boot and root partitions (use -P \"*\" for all)", s.devName, n))
	}
	if err := planBootFiles(p, in); err != nil {
		return err
	}
	p.Excludes = in.rootExcludes
	if in.typ == backupset.TypeRsync {
		planRootTree(p, in)
	} else {
		planRootTar(p, in)
	}
	return nil
}

// planBootFiles plans the boot partition's image or tar and the
// partition table, each hardlinked to the previous set's copy when equal.
func planBootFiles(p *Plan, in planInput) error {
	s := in.src
	boot := s.boot
	if in.opts.BootTar {
		rel := backupset.MetaFile(in.host, backupset.SuffixBootTar)
		p.facts.bootBackedUp = "tmg"
		p.Items = append(p.Items, PlanItem{File: rel, From: "files of the boot partition " + s.partName(boot.Number),
			Estimate: partUsed(boot), step: step{kind: stepBootTar, rel: rel}})
	} else {
		rel := backupset.MetaFile(in.host, backupset.SuffixBootImage)
		p.facts.bootBackedUp = "img"
		parts := []backupset.Partition{*boot}
		est, err := in.images.measureImage(boot.Start, boot.Size, parts)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrPreflight, err)
		}
		p.Notes = append(p.Notes, est.notes...)
		p.Items = append(p.Items, PlanItem{File: rel, From: imageFrom("image of the boot partition "+s.partName(boot.Number), in, est),
			Estimate: est.read, step: step{kind: stepImage, rel: rel, comp: backupset.CompressNone,
				start: boot.Start, size: boot.Size, parts: parts, phase: "boot partition", link: true}})
	}
	p.Items = append(p.Items,
		metaItem(in, backupset.SuffixSfdisk, "partition table of "+s.devName, true),
		metaItem(in, backupset.SuffixMBR, "first 512 bytes of "+s.devName, true))
	return nil
}

// rootDesc names the root filesystem in the plan.
func rootDesc(s *source) string {
	if s.running {
		return "/"
	}
	return s.partName(s.root.Number)
}

// writeBootTar writes <host>-backup.tmg.
func (r *runner) writeBootTar(ctx context.Context, rel string) error {
	s := r.src
	r.rep.Phase("boot partition", partUsed(s.boot))
	var f backupset.File
	var err error
	if s.running {
		f, err = r.streamTo(ctx, rel, backupset.CompressNone, false, func(w io.Writer) error {
			return r.runTar(ctx, s.bootDir, nil, w)
		})
	} else {
		f, err = r.fatTar(ctx, rel, s.boot, backupset.CompressNone, nil)
	}
	if err == nil {
		r.linkToPrevious(f)
	}
	return err
}
