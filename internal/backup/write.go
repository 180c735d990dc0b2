package backup

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/blockdev"
	"github.com/pibackup/pibackup/internal/disklayout"
	"github.com/pibackup/pibackup/internal/progress"
	"github.com/pibackup/pibackup/internal/size"
	"github.com/pibackup/pibackup/internal/treelist"
)

// rootExcludes are the excludes on the root filesystem: raspiBackup's
// defaults, the backup folder itself when it lies inside the source root,
// and the user's.
func (r *runner) rootExcludes() []string {
	ex := slices.Clone(DefaultExcludes)
	if r.src.running && r.local != "" {
		// The running root is "/" as the user names paths, whichever
		// folder it is read through.
		if rel, err := filepath.Rel("/", r.local); err == nil && !strings.HasPrefix(rel, "..") && rel != "." {
			ex = append(ex, "/"+filepath.ToSlash(rel)+"/*")
		}
	}
	return append(ex, r.excludes...)
}

// makePlan decides every file of the set and how it is made.
func (r *runner) makePlan() error {
	s := r.src
	p := &Plan{SetName: r.name.String(), SetDir: r.where(path.Join(r.host, r.name.String())), Source: s.path,
		Type: r.typ, Compression: r.comp, PartitionMode: r.opts.PartitionMode()}
	if s.running {
		p.Source = fmt.Sprintf("running system (/ and %s on %s)", s.bootDir, s.devName)
	}
	r.plan = p
	if r.prev != nil {
		p.Previous = r.prev.name
	}
	p.Free = -1 // a server does not say
	if r.local != "" {
		free, err := blockdev.FreeBytes(r.local)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrPreflight, err)
		}
		p.Free = free
	}
	name := r.name.String()
	meta := func(suffix, from string, write func(io.Writer) error, link bool) {
		rel := backupset.MetaFile(r.host, suffix)
		p.Items = append(p.Items, PlanItem{File: rel, From: from, meta: true, run: func(ctx context.Context) error {
			return r.writeMeta(ctx, rel, write, link)
		}})
	}
	sfdisk := func(link bool) {
		meta(backupset.SuffixSfdisk, "partition table of "+s.devName, func(w io.Writer) error {
			return disklayout.WriteSfdisk(w, s.disk, s.devName)
		}, link)
	}
	mbr := func(link bool) {
		meta(backupset.SuffixMBR, "first 512 bytes of "+s.devName, func(w io.Writer) error {
			return copyRange(context.Background(), w, s.path, 0, 512, nil)
		}, link)
	}

	if e := r.opts.Encrypt; e != nil {
		p.Notes = append(p.Notes, fmt.Sprintf("payloads encrypted with age to %d recipient(s) (names end in .age); restore needs the key (--age-identity); raspiBackup cannot restore this set", len(e.Info().Recipients)))
	}
	if why := backupset.RaspiBackupProblem(r.typ, r.comp); why != "" {
		// Said before anything is written: the user may want a set that
		// raspiBackup restores too.
		p.Notes = append(p.Notes, "raspiBackup cannot restore this set: "+why)
	}
	switch {
	case r.typ == backupset.TypeDD || r.typ == backupset.TypeDDZ:
		end := s.disk.Size
		from := "the whole disk " + s.path
		if r.opts.UsedPartitionsOnly {
			end = usedEnd(s.disk)
			from = fmt.Sprintf("%s up to the end of its last partition", s.path)
			if end < s.disk.Size {
				p.Notes = append(p.Notes, fmt.Sprintf("image truncated from %s to %s (end of the last partition)", size.Format(s.disk.Size), size.Format(end)))
			}
		}
		pl, err := r.planImage(0, end, s.disk.Partitions)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrPreflight, err)
		}
		pl.close()
		p.Notes = append(p.Notes, pl.notes(r)...)
		if !r.opts.FullRead {
			from += fmt.Sprintf(", reading %s of it (the blocks in use)", size.Format(pl.read()))
		}
		est := pl.read() // the rest are holes
		if r.comp != backupset.CompressNone {
			est = min(est, usedEstimate(s.disk)) // compressed free space is small; used data is not
		}
		p.Items = append(p.Items, PlanItem{File: name + r.ext, From: from, Estimate: est, run: func(ctx context.Context) error {
			_, err := r.writePlannedImage(ctx, name+r.ext, r.comp, 0, end, s.disk.Partitions, "disk image")
			return err
		}})
		r.man.ImageSize = end
		if r.local == "" && r.comp == backupset.CompressNone {
			p.Notes = append(p.Notes, fmt.Sprintf("a file on a server has no holes: the unused blocks of the %s image go over the network as zeros; -t ddz sends them compressed", size.Format(end)))
		}
		if s.running && s.root == nil {
			p.Notes = append(p.Notes, "the root filesystem is on another disk and is not in the image")
		}
	case !r.opts.PartitionMode():
		if s.boot == nil {
			return fmt.Errorf("%w: no FAT boot partition on %s", ErrPreflight, s.path)
		}
		if s.rootDir == "" {
			return fmt.Errorf("%w: no Linux root filesystem on %s", ErrPreflight, s.path)
		}
		r.man.BootPartition = s.boot.Number
		if s.root != nil {
			r.man.RootPartition = s.root.Number
		}
		if n := len(s.disk.Partitions); n > 2 {
			note := fmt.Sprintf("%s has %d partitions; normal mode saves only the boot and root partitions (use -P \"*\" for all)", s.devName, n)
			p.Notes = append(p.Notes, note)
			r.man.Notes = append(r.man.Notes, note)
		}
		bootPart := s.boot
		if r.opts.BootTar {
			rel := backupset.MetaFile(r.host, backupset.SuffixBootTar)
			r.man.BootBackedUp = "tmg"
			p.Items = append(p.Items, PlanItem{File: rel, From: "files of the boot partition " + s.partName(bootPart.Number),
				Estimate: partUsed(bootPart), run: func(ctx context.Context) error { return r.writeBootTar(ctx, rel) }})
		} else {
			rel := backupset.MetaFile(r.host, backupset.SuffixBootImage)
			r.man.BootBackedUp = "img"
			parts := []backupset.Partition{*bootPart}
			pl, err := r.planImage(bootPart.Start, bootPart.Size, parts)
			if err != nil {
				return fmt.Errorf("%w: %w", ErrPreflight, err)
			}
			pl.close()
			p.Notes = append(p.Notes, pl.notes(r)...)
			from := "image of the boot partition " + s.partName(bootPart.Number)
			if !r.opts.FullRead {
				from += fmt.Sprintf(", reading %s of it (the blocks in use)", size.Format(pl.read()))
			}
			p.Items = append(p.Items, PlanItem{File: rel, From: from, Estimate: pl.read(), run: func(ctx context.Context) error {
				f, err := r.writePlannedImage(ctx, rel, backupset.CompressNone, bootPart.Start, bootPart.Size, parts, "boot partition")
				if err == nil {
					r.linkToPrevious(f)
				}
				return err
			}})
		}
		sfdisk(true)
		mbr(true)
		p.Excludes = r.rootExcludes()
		rootUsed := r.rootUsed()
		if r.typ == backupset.TypeRsync {
			est := rootUsed
			if r.prev != nil {
				est = 0 // unchanged files are hardlinks; the changes are not known yet
				p.Notes = append(p.Notes, "incremental: unchanged files are hardlinked to "+r.prev.name+"; the space estimate leaves out the changed files")
			}
			p.Items = append(p.Items, PlanItem{File: "./", From: "files of the root filesystem " + r.rootDesc(), Estimate: est,
				run: func(ctx context.Context) error {
					return r.writeTree(ctx, s.rootDir, r.tmpDir, "", p.Excludes, rootUsed)
				}})
		} else {
			rel := name + r.ext
			p.Items = append(p.Items, PlanItem{File: rel, From: "files of the root filesystem " + r.rootDesc(), Estimate: rootUsed,
				run: func(ctx context.Context) error { return r.writeTar(ctx, rel, s.rootDir, p.Excludes, rootUsed) }})
		}
	default:
		if s.running && s.root == nil {
			return fmt.Errorf("%w: partition-oriented mode needs root on the boot disk (raspiBackup has the same limit); root is on another disk", ErrPreflight)
		}
		sfdisk(false)
		meta(backupset.SuffixBlkid, "filesystem identities", func(w io.Writer) error { return WriteBlkid(w, s.disk, s.partName) }, false)
		meta(backupset.SuffixParted, "partition table (parted -m format)", func(w io.Writer) error {
			return WriteParted(w, s.disk, s.devName, s.transport, s.model)
		}, false)
		meta(backupset.SuffixFdisk, "partition table (fdisk -l format)", func(w io.Writer) error {
			return WriteFdisk(w, s.disk, s.devName, s.model, s.partName)
		}, false)
		mbr(false)
		parts, err := r.selectPartitions()
		if err != nil {
			return err
		}
		for _, part := range parts {
			if err := r.planPartition(part); err != nil {
				return err
			}
		}
	}
	if r.opts.Encrypt != nil {
		for i, it := range p.Items {
			if !it.meta { // the payloads' names get .age
				p.Items[i].File += backupset.EncryptedExt
			}
		}
	}
	for _, it := range p.Items {
		p.Needed += it.Estimate
	}
	// Room for metadata and filesystem overhead.
	p.Needed += 1 << 20
	r.fillManifest()
	return nil
}

// selectPartitions resolves -P against the source disk.
func (r *runner) selectPartitions() ([]*backupset.Partition, error) {
	var out []*backupset.Partition
	if r.opts.AllPartitions {
		for i := range r.src.disk.Partitions {
			out = append(out, &r.src.disk.Partitions[i])
		}
		return out, nil
	}
	for _, n := range r.opts.Partitions {
		p, ok := r.src.partByNumber(n)
		if !ok {
			return nil, fmt.Errorf("%w: %s has no partition %d", ErrPreflight, r.src.devName, n)
		}
		out = append(out, p)
	}
	return out, nil
}

// planPartition adds the payload of one partition in -P mode.
func (r *runner) planPartition(part *backupset.Partition) error {
	s, p := r.src, r.plan
	pname := s.partName(part.Number)
	skip := func(why string) {
		note := fmt.Sprintf("partition %d (%s) skipped: %s", part.Number, pname, why)
		p.Notes = append(p.Notes, note)
		r.man.Notes = append(r.man.Notes, note)
	}
	switch part.FSType {
	case "":
		if part.Type == "5" || part.Type == "f" || part.Type == "85" {
			skip("extended partition")
		} else {
			skip("no filesystem")
		}
		return nil
	case "swap":
		skip("swap holds no data; a restore recreates it from the .parted and .blkid files")
		return nil
	case "vfat", "ext2", "ext3", "ext4", "btrfs", "f2fs", "xfs":
	default:
		skip("filesystem " + part.FSType + " not supported")
		return nil
	}
	r.man.Partitions = append(r.man.Partitions, part.Number)
	isRoot := s.root != nil && part.Number == s.root.Number
	excludes := slices.Clone(r.excludes)
	if isRoot {
		excludes = r.rootExcludes()
		p.Excludes = excludes
	}
	from := fmt.Sprintf("files of partition %d (%s, %s)", part.Number, pname, part.FSType)
	est := partUsed(part)
	dirOf := func() (string, error) { return r.partitionDir(part) }
	if r.typ == backupset.TypeRsync {
		p.Items = append(p.Items, PlanItem{File: pname + "/", From: from, Estimate: est, run: func(ctx context.Context) error {
			if part.FSType == "vfat" && !(s.running && s.boot != nil && part.Number == s.boot.Number) {
				return r.writeFATTree(ctx, part, pname, excludes)
			}
			dir, err := dirOf()
			if err != nil {
				return err
			}
			return r.writeTree(ctx, dir, filepath.Join(r.tmpDir, pname), pname, excludes, est)
		}})
		return nil
	}
	rel := pname + r.ext
	p.Items = append(p.Items, PlanItem{File: rel, From: from, Estimate: est, run: func(ctx context.Context) error {
		if part.FSType == "vfat" && !(s.running && s.boot != nil && part.Number == s.boot.Number) {
			return r.writeFATTar(ctx, rel, part, excludes)
		}
		dir, err := dirOf()
		if err != nil {
			return err
		}
		return r.writeTar(ctx, rel, dir, excludes, est)
	}})
	return nil
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

func (r *runner) rootDesc() string {
	if r.src.running {
		return "/"
	}
	return r.src.partName(r.src.root.Number)
}

// rootUsed estimates the bytes in use on the root filesystem.
func (r *runner) rootUsed() int64 {
	if r.src.running {
		if n, err := usedBytes("/"); err == nil {
			return n
		}
	}
	if r.src.root != nil {
		return partUsed(r.src.root)
	}
	return 0
}

func partUsed(p *backupset.Partition) int64 {
	if p.FSUsed > 0 {
		return p.FSUsed
	}
	return p.Size
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

// fillManifest records everything known before writing.
func (r *runner) fillManifest() {
	m := &r.man
	m.FormatVersion = backupset.ManifestVersion
	m.Tool = "backupctl"
	m.ToolVersion = r.opts.ToolVersion
	m.Host = r.host
	m.OSRelease = r.name.OSRelease
	m.Type = r.typ
	m.Compression = string(r.comp)
	m.PartitionMode = r.opts.PartitionMode()
	m.Options = backupset.Options{UsedPartitionsOnly: r.opts.UsedPartitionsOnly, BootTar: r.opts.BootTar, FullRead: r.opts.FullRead}
	m.Started = r.deps.Now()
	m.Disk = *r.src.disk
	m.Disk.Device = r.src.devName
	m.Snapshot = r.opts.Snapshot
	if !r.src.running {
		m.SourceDisk = r.src.path
	}
	m.Excludes = r.excludes
	if r.opts.Encrypt != nil {
		m.Encryption = r.opts.Encrypt.Info()
	}
	if r.prev != nil && r.typ == backupset.TypeRsync {
		m.PreviousSet = r.prev.name
	}
	m.Notes = append(m.Notes, r.plan.Notes...)
	slices.Sort(m.Notes)
	m.Notes = slices.Compact(m.Notes)
}

// writeSet runs every planned item in order.
func (r *runner) writeSet(ctx context.Context) error {
	r.man.Started = r.deps.Now()
	for _, it := range r.plan.Items {
		if err := ctx.Err(); err != nil {
			return err
		}
		what := it.File
		if what == "./" {
			what = "root tree"
		}
		r.log.Info("writing", "file", what)
		if err := it.run(ctx); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("%s: %w", what, ctx.Err())
			}
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	return nil
}

// writeMeta writes a small metadata file and, for the boot files of
// normal mode, hardlinks it to the previous set's copy when equal
// (raspiBackup's DEFAULT_LINK_BOOTPARTITIONFILES).
func (r *runner) writeMeta(ctx context.Context, rel string, write func(io.Writer) error, link bool) error {
	f, err := r.stream(ctx, rel, backupset.CompressNone, false, false, write)
	if err != nil {
		return err
	}
	if link {
		r.linkToPrevious(f)
	}
	return nil
}

// linkToPrevious replaces the file just written by a hardlink to the same
// file of the previous set when the previous manifest says it is equal.
// Sets without a manifest (raspiBackup's) are not linked: we would have to
// read their files to compare.
func (r *runner) linkToPrevious(f backupset.File) {
	if r.opts.CopyBootFiles || r.prev == nil || r.prev.manifest == nil || r.local == "" {
		return // hardlinks need a local folder
	}
	for _, pf := range r.prev.manifest.Files {
		if pf.Path != f.Path || pf.SHA256 != f.SHA256 || pf.Size != f.Size {
			continue
		}
		old := filepath.Join(r.prev.dir, filepath.FromSlash(f.Path))
		if fi, err := os.Stat(old); err != nil || fi.Size() != f.Size {
			return
		}
		dst := filepath.Join(r.tmpDir, filepath.FromSlash(f.Path))
		tmp := dst + ".link"
		if err := os.Link(old, tmp); err != nil {
			r.log.Debug("hardlink to previous set", "file", f.Path, "err", err)
			return
		}
		if err := os.Rename(tmp, dst); err != nil {
			os.Remove(tmp)
			return
		}
		r.log.Info("unchanged since the previous set; hardlinked", "file", f.Path)
		return
	}
}

// copyRange copies [start, start+size) of the file or device at path.
func copyRange(ctx context.Context, w io.Writer, path string, start, size int64, rep progress.Reporter) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 4<<20)
	for off := int64(0); off < size; {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := f.ReadAt(buf[:min(int64(len(buf)), size-off)], start+off)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
			off += int64(n)
			if rep != nil {
				rep.Add(int64(n))
			}
		}
		if err == io.EOF && off < size {
			return fmt.Errorf("read %s: %d bytes short at %d", path, size-off, start+off)
		}
		if err != nil && err != io.EOF {
			return fmt.Errorf("read %s: %w", path, err)
		}
	}
	return nil
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

func (r *runner) fatTar(ctx context.Context, rel string, part *backupset.Partition, comp backupset.Compression, excludes []string) (backupset.File, error) {
	fsys, closeFAT, err := openFAT(r.src.path, part)
	if err != nil {
		return backupset.File{}, err
	}
	defer closeFAT()
	var ex func(string) bool
	if len(excludes) > 0 {
		ex = excluder(excludes)
	}
	return r.streamTo(ctx, rel, comp, false, func(w io.Writer) error {
		return writeFATTar(ctx, fsys, w, r.rep, ex)
	})
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

// writeTar archives the filesystem at dir with GNU tar into rel: an
// uncompressed archive in a local folder straight from tar into the file
// (tarToFile), a compressed one, or any on a server, through a pipe and
// backupctl (the compressor, the upload).
func (r *runner) writeTar(ctx context.Context, rel, dir string, excludes []string, estimate int64) error {
	r.rep.Phase(rel, estimate)
	if (r.comp == backupset.CompressNone || r.comp == "") && r.local != "" && r.opts.Encrypt == nil {
		return r.tarToFile(ctx, rel, dir, excludes)
	}
	start := time.Now()
	f, err := r.streamTo(ctx, rel, r.comp, false, func(w io.Writer) error {
		return r.runTar(ctx, dir, excludes, w)
	})
	if err == nil {
		r.log.Info("tar finished", "file", rel, "bytes", f.Size, "duration", time.Since(start).Round(time.Millisecond))
	}
	return err
}

// runTar streams GNU tar's archive of dir into w.
func (r *runner) runTar(ctx context.Context, dir string, excludes []string, w io.Writer) error {
	cmd, stderr := r.tarCmd(ctx, dir, excludes)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	growPipe(stdout)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start tar: %w", err)
	}
	_, copyErr := io.CopyBuffer(w, progress.Reader{R: stdout, Rep: r.rep}, make([]byte, 1<<20))
	if copyErr != nil {
		cmd.Process.Kill()
	}
	waitErr := cmd.Wait()
	if copyErr != nil {
		return copyErr
	}
	return r.tarExit(ctx, waitErr, stderr)
}

// writeTree copies the filesystem at dir with rsync into dst and lists
// the result. part is "" in normal mode, the partition name in -P mode.
func (r *runner) writeTree(ctx context.Context, dir, dst, part string, excludes []string, estimate int64) error {
	r.rep.Phase("files of "+cmpOr(part, "the root filesystem"), estimate)
	linkDest := ""
	var prevTree string
	if r.prev != nil {
		prevTree = r.prev.dir
		if part != "" {
			prevTree = filepath.Join(r.prev.dir, part)
		}
		if fi, err := os.Stat(prevTree); err == nil && fi.IsDir() {
			linkDest = prevTree
		}
	}
	if part == "" {
		excludes = append(slices.Clone(excludes), backupset.OwnFilePatterns(r.host)...)
	}
	args := RsyncArgs(dir, dst, linkDest, excludes, true)
	// Hash what rsync copies while it copies; with --link-dest the names
	// it gives also tell the listing which files are hardlinks of the
	// previous tree (prehash.go).
	pre := startPrehash(dst, linkDest != "")
	args = withOutFormat(args)
	err := r.runRsync(ctx, args, pre.copied)
	reuse := pre.finish(r.log)
	if err != nil {
		return err
	}
	return r.writeListing(ctx, dst, dir, part, linkDestOrEmpty(linkDest), reuse)
}

// listingOf is the file name of the listing of the tree part ("" for the
// root tree) in the set with manifest m, as m names it: a set made before
// backupctl named its files <host>-backup.* has pibackup-tree.list.
func listingOf(m *backupset.Manifest, part string) string {
	root := cmpOr(part, ".")
	for _, t := range m.Trees {
		if t.Root == root {
			return t.Listing
		}
	}
	return backupset.TreeListingName(m.Host, part)
}

func linkDestOrEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// writeListing writes the tree listing of dst (an rsync tree in the set)
// and records it in the manifest. srcDir is where the tree came from:
// the tree's root folder gets its times back after the listing file is
// added. prevTree, if set, is the link-dest tree whose hashes may be
// reused for files that are hardlinks of it; without one, hashed, if
// set, has the hashes of files taken while rsync ran (prehash.go).
func (r *runner) writeListing(ctx context.Context, dst, srcDir, part string, prevTree *string, hashed *treelist.Reuse) error {
	rel, xrel := backupset.TreeListingName(r.host, part), backupset.TreeExtrasName(r.host, part)
	out, err := r.createOut(ctx, rel, 0o600, false)
	if err != nil {
		return err
	}
	xout, err := r.createOut(ctx, xrel, 0o600, false)
	if err != nil {
		out.Abort()
		return err
	}
	if part == "" {
		// Creating the listing and extras in the tree's root changed its
		// mtime.
		if err := setTimesLike(dst, srcDir); err != nil {
			out.Abort()
			xout.Abort()
			return err
		}
	}
	opts := treelist.Options{Extras: xout}
	if part == "" {
		opts.Exclude = backupset.TreeExclude(r.host)
	}
	if prevTree != nil && r.prev.manifest != nil {
		if f, err := os.Open(filepath.Join(r.prev.dir, listingOf(r.prev.manifest, part))); err == nil {
			reuse, err := hashed.WithPrevious(*prevTree, f)
			f.Close()
			if err == nil {
				opts.Reuse = reuse
			}
		}
	}
	if opts.Reuse == nil && hashed != nil {
		opts.Reuse = hashed
	}
	r.rep.Phase("listing "+cmpOr(part, "the tree"), 0)
	st, err := treelist.WriteOptions(ctx, out, dst, opts)
	if err != nil {
		out.Abort()
		xout.Abort()
		return noSpace(err)
	}
	f, err := out.Close()
	if err != nil {
		xout.Abort()
		return err
	}
	xf, err := xout.Close()
	if err != nil {
		return err
	}
	r.man.Files = append(r.man.Files, f, xf)
	r.man.Trees = append(r.man.Trees, backupset.Tree{Root: cmpOr(part, "."), Listing: rel, Extras: xrel, Entries: st.Entries, Bytes: st.Bytes})
	r.log.Info("tree listed", "entries", st.Entries, "bytes", st.Bytes, "hashed", st.Hashed)
	return nil
}

// runRsync runs rsync, feeding its --info=progress2 output to the
// progress reporter and the names of copied files (--out-format lines,
// see withOutFormat) to copied.
func (r *runner) runRsync(ctx context.Context, args []string, copied func(name string)) error {
	cmd := exec.CommandContext(ctx, "rsync", args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.SysProcAttr = childAttr()
	stderr := &tailBuffer{max: 4096}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	r.log.Debug("exec", "cmd", "rsync "+strings.Join(args, " "))
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start rsync: %w", err)
	}
	feedRsyncOutput(stdout, r.rep, copied)
	err = cmd.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	r.log.Info("rsync ended", "duration", time.Since(start).Round(time.Millisecond), "err", err)
	if err != nil {
		var ee *exec.ExitError
		msg := stderr.String()
		if errors.As(err, &ee) && ee.ExitCode() == 24 && r.src.running {
			note := "rsync: some files vanished while they were copied"
			r.log.Warn(note)
			r.man.Notes = append(r.man.Notes, note)
			return nil
		}
		if strings.Contains(msg, "No space left on device") || strings.Contains(msg, "Disk quota exceeded") {
			return fmt.Errorf("%w: %s", ErrNoSpace, lineWith(msg, "No space left on device", "Disk quota exceeded"))
		}
		return fmt.Errorf("rsync: %w: %s", err, oneLine(msg))
	}
	return nil
}

// feedRsyncOutput reads rsync's --info=progress2 lines ("  1,234,567
// 12%  1.2MB/s  0:00:12 ...", separated by \r) and reports the growth of
// the first number; lines naming a copied file go to copied.
func feedRsyncOutput(rd io.Reader, rep progress.Reporter, copied func(name string)) {
	sc := bufio.NewScanner(rd)
	sc.Split(func(data []byte, atEOF bool) (int, []byte, error) {
		if i := bytes.IndexAny(data, "\r\n"); i >= 0 {
			return i + 1, data[:i], nil
		}
		if atEOF && len(data) > 0 {
			return len(data), data, nil
		}
		return 0, nil, nil
	})
	var last int64
	for sc.Scan() {
		if name, ok := strings.CutPrefix(sc.Text(), rsyncNamePrefix); ok {
			if copied != nil {
				copied(name)
			}
			continue
		}
		f := strings.Fields(sc.Text())
		if len(f) < 2 || !strings.HasSuffix(f[1], "%") {
			continue
		}
		n, err := strconv.ParseInt(strings.ReplaceAll(f[0], ",", ""), 10, 64)
		if err != nil || n < last {
			continue
		}
		rep.Add(n - last)
		last = n
	}
	io.Copy(io.Discard, rd)
}

// tailBuffer keeps the last max bytes written to it (a tool's stderr).
type tailBuffer struct {
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return strings.TrimSpace(string(t.b)) }

// lineWith returns the first line of s holding one of the phrases.
func lineWith(s string, phrases ...string) string {
	for _, l := range strings.Split(s, "\n") {
		for _, p := range phrases {
			if strings.Contains(l, p) {
				return strings.TrimSpace(l)
			}
		}
	}
	return oneLine(s)
}

// oneLine joins a tool's stderr into one line for an error message (the
// CLI promises one line on failure), keeping its first 400 bytes.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " | ")), " ")
	if len(s) > 400 {
		s = s[:400] + "..."
	}
	return s
}
