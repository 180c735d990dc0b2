package backup

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/pibackup/pibackup/internal/backupset"
)

// A set in partition-oriented mode (-P, tar, tgz, tar.zst or rsync)
// holds the layout of the whole disk (.sfdisk, .blkid, .parted, .fdisk,
// .mbr) and, for each partition selected that has a filesystem, its files:
// an archive <partition><ext> or a tree <partition>/. Swap, extended
// partitions and unknown filesystems are noted and skipped.

// planPartitions plans a -P set.
func planPartitions(p *Plan, in planInput) error {
	s := in.src
	if s.running && s.root == nil {
		return fmt.Errorf("%w: partition-oriented mode needs root on the boot disk (raspiBackup has the same limit); root is on another disk", ErrPreflight)
	}
	p.Items = append(p.Items,
		metaItem(in, backupset.SuffixSfdisk, "partition table of "+s.devName, false),
		metaItem(in, backupset.SuffixBlkid, "filesystem identities", false),
		metaItem(in, backupset.SuffixParted, "partition table (parted -m format)", false),
		metaItem(in, backupset.SuffixFdisk, "partition table (fdisk -l format)", false),
		metaItem(in, backupset.SuffixMBR, "first 512 bytes of "+s.devName, false))
	parts, err := selectPartitions(in)
	if err != nil {
		return err
	}
	for _, part := range parts {
		planPartition(p, in, part)
	}
	return nil
}

// selectPartitions resolves -P against the source disk.
func selectPartitions(in planInput) ([]*backupset.Partition, error) {
	s := in.src
	var out []*backupset.Partition
	if in.opts.AllPartitions {
		for i := range s.disk.Partitions {
			out = append(out, &s.disk.Partitions[i])
		}
		return out, nil
	}
	for _, n := range in.opts.Partitions {
		p, ok := s.partByNumber(n)
		if !ok {
			return nil, fmt.Errorf("%w: %s has no partition %d", ErrPreflight, s.devName, n)
		}
		out = append(out, p)
	}
	return out, nil
}

// planPartition plans the payload of one partition, or notes why it has
// none.
func planPartition(p *Plan, in planInput, part *backupset.Partition) {
	s := in.src
	pname := s.partName(part.Number)
	skip := func(why string) {
		p.Notes = append(p.Notes, fmt.Sprintf("partition %d (%s) skipped: %s", part.Number, pname, why))
	}
	switch part.FSType {
	case "":
		if isExtended(*part) {
			skip("extended partition")
		} else {
			skip("no filesystem")
		}
		return
	case "swap":
		skip("swap holds no data; a restore recreates it from the .parted and .blkid files")
		return
	case "vfat", "ext2", "ext3", "ext4", "btrfs", "f2fs", "xfs":
	default:
		skip("filesystem " + part.FSType + " not supported")
		return
	}
	p.facts.partitions = append(p.facts.partitions, part.Number)
	excludes := slices.Clone(in.excludes)
	if s.root != nil && part.Number == s.root.Number {
		excludes = in.rootExcludes
		p.Excludes = excludes
	}
	st := step{kind: stepTar, rel: pname + in.ext, part: part, excludes: excludes, expect: partUsed(part),
		// The running boot partition is read through its mount; any
		// other FAT partition from the disk, without mounting it.
		fat: part.FSType == "vfat" && !(s.running && s.boot != nil && part.Number == s.boot.Number)}
	file := st.rel
	if in.typ == backupset.TypeRsync {
		st.kind, st.rel, file = stepTree, pname, pname+"/"
	}
	p.Items = append(p.Items, PlanItem{File: file, From: fmt.Sprintf("files of partition %d (%s, %s)", part.Number, pname, part.FSType),
		Estimate: st.expect, step: st})
}

// partitionDir returns where the files of part can be read: its mount
// point on the running system, the root we mounted, or a new read-only
// mount.
func (r *runner) partitionDir(part *backupset.Partition) (string, error) {
	s := r.src
	if s.root != nil && part.Number == s.root.Number && s.rootDir != "" {
		return s.rootDir, nil
	}
	if s.running {
		if s.boot != nil && part.Number == s.boot.Number {
			return s.bootDir, nil
		}
		mounted, err := r.deps.Sys.MountedParts()
		if err == nil {
			if m, ok := mounted[s.partName(part.Number)]; ok && m.Root == "/" {
				return m.MountPoint, nil
			}
		}
	}
	return s.mnt.mount(s, part)
}

// writeFATTar writes a -P tar payload of a FAT partition.
func (r *runner) writeFATTar(ctx context.Context, rel string, part *backupset.Partition, excludes []string) error {
	r.rep.Phase(rel, part.Size)
	_, err := r.fatTar(ctx, rel, part, r.comp, excludes)
	return err
}

// writeFATTree writes a -P rsync tree of a FAT partition.
func (r *runner) writeFATTree(ctx context.Context, part *backupset.Partition, pname string, excludes []string) error {
	r.rep.Phase(pname, part.Size)
	fsys, closeFAT, err := openFAT(r.src.path, part)
	if err != nil {
		return err
	}
	defer closeFAT()
	var ex func(string) bool
	if len(excludes) > 0 {
		ex = excluder(excludes)
	}
	dst := filepath.Join(r.tmpDir, pname)
	if err := copyFATTree(ctx, fsys, dst, r.rep, ex); err != nil {
		return err
	}
	return r.writeListing(ctx, dst, dst, pname, nil, nil)
}
