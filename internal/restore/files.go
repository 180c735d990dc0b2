package restore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/blockdev"
	"github.com/pibackup/pibackup/internal/disklayout"
	"github.com/pibackup/pibackup/internal/i18n"
	"github.com/pibackup/pibackup/internal/progress"
)

// planFiles plans a tar or rsync restore: the source layout resized to
// the target, the boot partition copied from the set's boot image, the
// root partition formatted ext4 and filled.
func (p *Plan) planFiles(ctx context.Context) error {
	s := p.set
	src := s.layoutFromMeta()
	if src.Size == 0 {
		src.Size = disklayout.MinDiskSize(src)
	}
	p.Source = src
	p.boot, p.root = bootRoot(s.manifest, src)
	rootPart, ok := disklayout.PartitionByNumber(src, p.root)
	if !ok || !disklayout.IsLinuxType(rootPart.Type) {
		return fmt.Errorf("set %s: cannot tell the root partition from the layout: %w", s.dirName, ErrBadSet)
	}
	if p.boot == 0 {
		return fmt.Errorf("set %s: no boot partition in the layout: %w", s.dirName, ErrBadSet)
	}
	bootPart, _ := disklayout.PartitionByNumber(src, p.boot)
	if s.kind == kindRsync {
		var err error
		if p.tree, err = p.planTree(ctx, "."); err != nil {
			return err
		}
	}
	if err := p.learnFromSet(ctx, src); err != nil {
		return err
	}

	// How much data goes into the root filesystem.
	if err := p.estimateRootData(ctx, false); err != nil {
		return err
	}
	layout, res, err := p.resizeForData(src)
	if err != nil && errors.Is(err, disklayout.ErrTooSmall) && p.rootData == 0 {
		// Shrinking below the source and the data size is unknown (a
		// compressed tar without manifest): measure it, then decide.
		if err := p.estimateRootData(ctx, true); err != nil {
			return err
		}
		layout, res, err = p.resizeForData(src)
	}
	if err == nil && res.NewSize < rootPart.Size && p.rootData == 0 {
		if err := p.estimateRootData(ctx, true); err != nil {
			return err
		}
		layout, res, err = p.resizeForData(src)
	}
	if err != nil {
		return err
	}
	p.Layout, p.resized = layout, res
	if p.rootData > 0 {
		p.Need = disklayout.MinDiskSize(src) - rootPart.Size + ext4Need(p.rootData)
	}

	// The boot image must fit its partition (it always does unless the
	// layout and the image come from different disks).
	if s.bootImg != "" {
		info, err := s.entries[s.bootImg].Info()
		if err != nil {
			return fmt.Errorf("set %s: %w", s.dirName, err)
		}
		if info.Size() > bootPart.Size {
			return fmt.Errorf("set %s: %s (%d bytes) is larger than boot partition %d (%d bytes): %w", s.dirName, s.bootImg, info.Size(), p.boot, bootPart.Size, ErrBadSet)
		}
	}
	if s.manifest == nil {
		switch s.kind {
		case kindTar:
			p.notes = append(p.notes, i18n.M(i18n.NoteNoManifestTar))
		case kindRsync:
			p.notes = append(p.notes, i18n.M(i18n.NoteNoManifestTree))
		}
	}
	p.ids, err = newIDs(src, p.Layout, p.boot, p.root, p.o.KeepIDs)
	if p.o.KeepIDs && rootPart.UUID == "" {
		p.notes = append(p.notes, i18n.M(i18n.NoteNoRootUUID))
	}
	return err
}

// learnFromSet fills in what raspiBackup sets do not record but the
// restore needs: filesystem types, the boot filesystem's serial (from the
// boot image), the root's UUID and label (from the references in
// cmdline.txt and /etc/fstab).
func (p *Plan) learnFromSet(ctx context.Context, src *backupset.Disk) error {
	s := p.set
	boot, _ := disklayout.PartitionByNumber(src, p.boot)
	root, _ := disklayout.PartitionByNumber(src, p.root)
	if root.FSType == "" {
		root.FSType = "ext4"
	}
	if s.bootImg != "" {
		f, err := s.fsys.Open(s.bootImg)
		if err != nil {
			return fmt.Errorf("set %s: %w", s.dirName, err)
		}
		defer f.Close()
		if ra, ok := f.(io.ReaderAt); ok {
			if id, err := disklayout.Identify(ra); err == nil && id.Type == "vfat" {
				boot.FSType = "vfat"
				if boot.UUID == "" {
					boot.UUID = id.UUID
				}
				if boot.Label == "" || src.Table == "gpt" {
					boot.Label = id.Label
				}
			}
			info, err := f.Stat()
			if _, seek := f.(io.Seeker); err == nil && seek {
				if c, err := readCmdlines(f, 0, info.Size()); err == nil {
					p.cmdlines = c
				} else {
					p.log.Info("cannot read cmdline.txt from the boot image", "err", err)
				}
			}
		}
	}
	if boot.FSType == "" && s.bootTar != "" {
		boot.FSType = "vfat"
	}
	switch {
	case s.kind == kindRsync && p.o.LocalDir != "":
		// Resolved inside the set's tree, as the restored system will see
		// it: a symlink in the set must not make us read a host file.
		b, err := readFileInRoot(p.o.LocalDir, "etc/fstab")
		switch {
		case err == nil:
			p.fstab = string(b)
		case errors.Is(err, ErrNotRegular):
			p.notes = append(p.notes, i18n.M(i18n.NoteFstabNotFile))
		}
	case s.kind == kindRsync && p.tree != nil:
		// A remote set: the listing says what etc/fstab is; only a
		// regular file is read (for the preview; the restore rewrites the
		// restored one).
		if b, err := p.tree.readSmall(ctx, "etc/fstab"); err == nil {
			p.fstab = string(b)
		}
	}
	// References name the root: root=UUID=x tells its UUID, LABEL=x the
	// label mkfs must set.
	var refs []string
	for _, c := range p.cmdlines {
		if r := rootRefFromCmdline(c); r != "" {
			refs = append(refs, r)
		}
	}
	if r := fstabSpec(p.fstab, "/"); r != "" {
		refs = append(refs, r)
	}
	for _, r := range refs {
		k, v, _ := strings.Cut(r, "=")
		switch strings.ToUpper(k) {
		case "UUID":
			if root.UUID == "" {
				root.UUID = strings.ToLower(v)
			}
		case "LABEL":
			if root.Label == "" {
				root.Label = v
			}
		}
	}
	p.rootLabel = root.Label
	if src.Table == "gpt" && s.manifest == nil {
		// In a GPT the sfdisk name= is the partition name, not the label.
		p.rootLabel = ""
		for _, r := range refs {
			if k, v, _ := strings.Cut(r, "="); strings.EqualFold(k, "LABEL") {
				p.rootLabel = v
			}
		}
	}
	if bootRef := fstabSpec(p.fstab, "/boot/firmware"); bootRef != "" || fstabSpec(p.fstab, "/boot") != "" {
		_ = bootRef // the boot serial comes from the image; nothing to learn
	}
	return nil
}

// estimateRootData sets p.rootData. Cheap sources first: the size of an
// uncompressed tar, the manifest's record, a walk of an rsync tree; with
// measure, a compressed tar is decompressed once to count its bytes.
func (p *Plan) estimateRootData(ctx context.Context, measure bool) error {
	s := p.set
	switch {
	case s.kind == kindRsync && p.tree != nil && p.o.LocalDir == "":
		// Walking a remote tree would cost a round trip per folder, and
		// gives no block counts anyway: the listing has the sizes.
		p.rootData = p.tree.usage
	case s.kind == kindRsync:
		skip := func(name string) bool { return backupset.IsOwnFile(s.name.Host, name) }
		n, _, err := treeUsage(ctx, s.fsys, skip)
		if err != nil {
			return fmt.Errorf("set %s: %w", s.dirName, err)
		}
		p.rootData = n
	case s.comp == backupset.CompressNone:
		p.rootData = s.payloadSize
	case measure:
		p.log.Info("measuring the uncompressed size of the archive", "file", s.payload)
		p.rep.Phase("measure archive", s.payloadSize)
		f, err := s.fsys.Open(s.payload)
		if err != nil {
			return fmt.Errorf("set %s: %w", s.dirName, err)
		}
		defer f.Close()
		zr, err := decompressor(progress.Reader{R: f, Rep: p.rep}, s.comp)
		if err != nil {
			return fmt.Errorf("set %s: %s: %w", s.dirName, s.payload, err)
		}
		defer zr.Close()
		n, err := countStream(ctx, zr)
		if err != nil {
			return fmt.Errorf("set %s: %s: %w", s.dirName, s.payload, err)
		}
		p.rootData = n
	default:
		if s.manifest != nil {
			if r, ok := disklayout.PartitionByNumber(&s.manifest.Disk, p.root); ok && r.FSUsed > 0 {
				// FSUsed counts the source's own journal and inode tables.
				p.rootData = max(r.FSUsed-ext4Overhead(r.Size), r.FSUsed/2)
			}
		}
	}
	return nil
}

// resizeForData fits src to the target with a root partition no smaller
// than the data needs.
func (p *Plan) resizeForData(src *backupset.Disk) (*backupset.Disk, disklayout.ResizeResult, error) {
	var minRoot int64
	if p.rootData > 0 {
		minRoot = ext4Need(p.rootData)
	}
	layout, res, err := disklayout.Resize(src, p.Target.Size, disklayout.ResizeOptions{MinSize: minRoot})
	if err == nil && minRoot == 0 {
		// Data size unknown: never shrink below what the source had.
		if r, _ := disklayout.PartitionByNumber(src, res.Number); r != nil && res.NewSize < r.Size {
			need := p.Target.Size + r.Size - res.NewSize
			return nil, res, &disklayout.TooSmallError{What: "target", Need: need, Have: p.Target.Size}
		}
	}
	return layout, res, err
}

// openForRestore opens the target for a restore and, on a device, wipes
// its partition table first. From here on the target is incomplete
// (res.Incomplete, cleared by the caller on success): it must never look
// like a good disk before the restore has finished.
func (p *Plan) openForRestore(res *Result) (*os.File, error) {
	t := p.Target
	f, err := openTarget(t, t.IsFile)
	if err != nil {
		return nil, err
	}
	res.Incomplete = true
	if !t.IsFile {
		if err := wipeTable(f, t.Size); err != nil {
			f.Close()
			return nil, err
		}
	}
	return f, nil
}

// executeFiles runs a tar or rsync restore.
func (p *Plan) executeFiles(ctx context.Context, res *Result) (err error) {
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
	run := blockdev.Runner{Log: p.log}

	// Boot partition.
	boot := p.partition(p.boot)
	n, err := p.restoreBoot(ctx, f, boot)
	if err != nil {
		return err
	}
	res.Bytes += n

	// Root partition.
	root := p.partition(p.root)
	n, err = p.restoreRoot(ctx, run, f, root, res)
	if err != nil {
		return err
	}
	res.Bytes += n

	// cmdline.txt on the boot partition names the new root.
	if !p.o.KeepIDs {
		p.rep.Phase("boot configuration", 0)
		changes, err := rewriteCmdlines(f, boot.Start, boot.Size, p.ids)
		if err != nil {
			return err
		}
		for _, c := range changes {
			res.Changes = append(res.Changes, c.String())
		}
	}
	return p.finish(ctx, f, res)
}

// restoreBoot copies the boot image into the boot partition and gives it
// its new serial.
func (p *Plan) restoreBoot(ctx context.Context, f *os.File, boot backupset.Partition) (int64, error) {
	s := p.set
	if s.bootImg == "" {
		return p.restoreBootTar(ctx, f, boot)
	}
	info, err := s.entries[s.bootImg].Info()
	if err != nil {
		return 0, err
	}
	p.rep.Phase("boot partition", info.Size())
	r, err := s.openPayload(s.bootImg, backupset.CompressNone, p.rep, false)
	if err != nil {
		return 0, fmt.Errorf("boot partition: %w", err)
	}
	defer r.Close()
	n, err := copyToDisk(ctx, io.NewOffsetWriter(f, boot.Start), r, boot.Size, p.Target.IsFile)
	if err != nil {
		return n, fmt.Errorf("boot partition: %w", err)
	}
	if err := r.finish(ctx); err != nil {
		return n, fmt.Errorf("boot partition: %w", err)
	}
	if err := p.newFATSerial(f, boot); err != nil {
		return n, err
	}
	return n, nil
}

func (p *Plan) newFATSerial(f *os.File, boot backupset.Partition) error {
	if p.o.KeepIDs {
		return nil
	}
	serial, err := parseFATSerial(p.ids.fsUUID(boot.Number))
	if err != nil {
		return fmt.Errorf("BUG: %w", err)
	}
	return setFATSerial(f, f, boot.Start, serial)
}

// restoreRoot formats the root partition, fills it from the set, fixes
// /etc/fstab and checks it.
func (p *Plan) restoreRoot(ctx context.Context, run blockdev.Runner, f *os.File, root backupset.Partition, res *Result) (int64, error) {
	s := p.set
	return p.makeRoot(ctx, run, root, res, func(mnt string) (int64, error) {
		switch s.kind {
		case kindTar:
			p.rep.Phase("root filesystem", s.payloadSize)
			n, err := p.extractTar(ctx, run, s.payload, s.comp, mnt)
			if err != nil {
				return 0, fmt.Errorf("root filesystem: %w", err)
			}
			return n, nil
		case kindRsync:
			if p.tree != nil {
				p.rep.Phase("root filesystem", p.tree.bytes)
				n, err := restoreTree(ctx, p.tree, mnt, p.rep)
				if err != nil {
					return n, fmt.Errorf("root filesystem: %w", err)
				}
				p.log.Info("tree restored", "entries", len(p.tree.entries), "files", p.tree.files, "bytes", n,
					"found_by_content", p.tree.content.Renamed())
				return n, nil
			}
			p.rep.Phase("root filesystem", p.rootData)
			if _, err := run.Run(ctx, nil, "rsync", rsyncRestoreArgs(p.o.LocalDir, mnt, s.name.Host)); err != nil {
				return 0, fmt.Errorf("root filesystem: %w", err)
			}
			p.rep.Add(p.rootData)
			return p.rootData, nil
		}
		return 0, fmt.Errorf("BUG: restoreRoot for a %s set", s.kind)
	})
}

// makeRoot formats the root partition ext4, mounts it, lets fill copy the
// files in, rewrites /etc/fstab, and checks the filesystem.
func (p *Plan) makeRoot(ctx context.Context, run blockdev.Runner, root backupset.Partition, res *Result, fill func(mnt string) (int64, error)) (int64, error) {
	s := p.set
	att, err := blockdev.AttachPartition(ctx, p.Target.Path, 0, root.Start, root.Size, false)
	if err != nil {
		return 0, fmt.Errorf("root partition: %w", err)
	}
	defer att.Detach()
	p.rep.Phase("format root filesystem", 0)
	uuid := p.ids.fsUUID(root.Number)
	if _, err := run.Run(ctx, nil, "mkfs.ext4", mkfsExt4Args(att.Path, p.rootLabel, uuid, root.Size)); err != nil {
		return 0, fmt.Errorf("root partition: %w", err)
	}
	mnt, unmount, err := blockdev.MountExt4(att.Path, false)
	if err != nil {
		return 0, fmt.Errorf("root partition: %w", err)
	}
	mounted := true
	defer func() {
		if mounted {
			if err := unmount(); err != nil {
				p.log.Error("unmount root", "err", err)
			}
		}
	}()
	n, err := fill(mnt)
	if err != nil {
		return n, err
	}
	if !isDirInRoot(mnt, "etc") {
		return n, fmt.Errorf("root filesystem: the restored tree has no /etc; is %s a root filesystem backup?: %w", s.payload, ErrBadSet)
	}
	changes, keepUUID, err := p.fixFstab(mnt, res)
	if err != nil {
		return n, err
	}
	for _, c := range changes {
		res.Changes = append(res.Changes, c.String())
	}
	mounted = false
	if err := unmount(); err != nil {
		return n, fmt.Errorf("root partition: %w", err)
	}
	if keepUUID != "" {
		if _, err := run.Run(ctx, nil, "tune2fs", tune2fsUUIDArgs(att.Path, keepUUID)); err != nil {
			return n, fmt.Errorf("root partition: %w", err)
		}
	}
	p.rep.Phase("check root filesystem", 0)
	if _, err := run.Run(ctx, nil, "e2fsck", e2fsckArgs(att.Path, true), 1); err != nil {
		return n, fmt.Errorf("root partition: %w", err)
	}
	return n, nil
}

// fixFstab rewrites /etc/fstab under mnt for the new ids. With KeepIDs it
// changes nothing, but returns the UUID fstab names for / when the root
// got another one (a raspiBackup set does not record it), so the caller
// can set it. fstab is opened inside the restored root (see inroot.go):
// a symlink in the archive never leads to a host file.
func (p *Plan) fixFstab(mnt string, res *Result) (changes []change, keepUUID string, err error) {
	if !p.o.KeepIDs {
		changes, warn, err := rewriteFstabFile(mnt, p.ids, p.log)
		if warn != "" {
			res.Warnings = append(res.Warnings, warn)
		}
		return changes, "", err
	}
	b, err := readFileInRoot(mnt, "etc/fstab")
	if err != nil {
		return nil, "", nil // nothing to keep in step
	}
	spec := fstabSpec(string(b), "/")
	if k, v, ok := strings.Cut(spec, "="); ok && strings.EqualFold(k, "UUID") && !strings.EqualFold(v, p.ids.fsUUID(p.root)) {
		return nil, strings.ToLower(v), nil
	}
	return nil, "", nil
}

// rewriteFstabFile rewrites /etc/fstab under mnt in place (owner, mode
// and xattrs of the file stay) so it names the ids of m. A missing fstab,
// or one that is not a regular file inside the root (a symlink to a name
// the restored tree lacks, a device node), is left alone with a warning.
func rewriteFstabFile(mnt string, m *ids, log *slog.Logger) (changes []change, warning string, err error) {
	b, err := readFileInRoot(mnt, "etc/fstab")
	switch {
	case errors.Is(err, os.ErrNotExist):
		log.Warn("restored root has no /etc/fstab (or it is a symlink to a missing file); not rewritten")
		return nil, "/etc/fstab: missing in the restored root (or a symlink to a missing file); not rewritten", nil
	case errors.Is(err, ErrNotRegular):
		log.Warn("restored /etc/fstab is not a regular file; not rewritten")
		return nil, "/etc/fstab: not a regular file in the restored root; not rewritten", nil
	case err != nil:
		return nil, "", fmt.Errorf("read fstab: %w", err)
	}
	s, changes := m.rewriteFstab(string(b))
	if len(changes) == 0 {
		return nil, "", nil
	}
	if err := rewriteFileInRoot(mnt, "etc/fstab", []byte(s)); err != nil {
		return nil, "", fmt.Errorf("rewrite fstab: %w", err)
	}
	return changes, "", nil
}

// finish writes the partition table, flushes, and checks what it wrote.
func (p *Plan) finish(ctx context.Context, f *os.File, res *Result) error {
	p.rep.Phase("partition table", 0)
	opts := disklayout.WriteOptions{Wipe: true}
	if len(p.set.mbr) >= 440 && p.Layout.Table == "dos" {
		opts.BootCode = p.set.mbr[:440]
	}
	if err := disklayout.WriteTable(f, p.Layout, opts); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("flush %s: %w", p.Target.Path, err)
	}
	if !p.Target.IsFile {
		rereadTable(f)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	res.Verified = p.readBack() == nil
	return nil
}

// readBack reads the target's table and filesystem ids and compares them
// with the plan.
func (p *Plan) readBack() error {
	got, err := disklayout.ReadFile(p.Target.Path)
	if err != nil {
		p.log.Warn("read back", "err", err)
		return err
	}
	var problems []string
	if !strings.EqualFold(got.DiskID, p.Layout.DiskID) {
		problems = append(problems, fmt.Sprintf("disk id %s, planned %s", got.DiskID, p.Layout.DiskID))
	}
	for _, want := range p.Layout.Partitions {
		g, ok := disklayout.PartitionByNumber(got, want.Number)
		if !ok || g.Start != want.Start || g.Size != want.Size {
			problems = append(problems, fmt.Sprintf("partition %d differs", want.Number))
			continue
		}
		if u := p.ids.fsUUID(want.Number); u != "" && (want.Number == p.root || want.Number == p.boot) && p.restores(want.Number) && !strings.EqualFold(g.UUID, u) {
			problems = append(problems, fmt.Sprintf("partition %d has UUID %s, planned %s", want.Number, g.UUID, u))
		}
	}
	if len(problems) > 0 {
		err := fmt.Errorf("read back: %s", strings.Join(problems, "; "))
		p.log.Warn("restored disk differs from the plan", "err", err)
		return err
	}
	return nil
}

// extractTar extracts the tar payload name into the mounted folder mnt
// with GNU tar, and returns the uncompressed bytes. It fails unless the
// whole stream was read and checked (payload.finish).
func (p *Plan) extractTar(ctx context.Context, run blockdev.Runner, name string, c backupset.Compression, mnt string) (int64, error) {
	r, err := p.set.openPayload(name, c, p.rep, true)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	_, warnings, err := run.RunWarn(ctx, r, "tar", tarExtractArgs(mnt))
	if err != nil {
		// A hostile or damaged archive makes GNU tar fail; the set's own
		// check (CheckTar, which verify runs too) names the member, and
		// GNU tar's words follow.
		if ferr := r.finish(ctx); ferr != nil && errors.Is(ferr, ErrDamaged) {
			return 0, fmt.Errorf("%w; GNU tar: %w", ferr, err)
		}
		if r.err != nil {
			// tar only saw its input end; say why it ended.
			return 0, fmt.Errorf("read %s: %w (the archive is truncated or corrupt): %w", name, r.err, ErrDamaged)
		}
		return 0, fmt.Errorf("extract %s: %w", name, err)
	}
	// The set's own check first: it names the member as verify does.
	if err := r.finish(ctx); err != nil {
		return r.N, err
	}
	if w := absoluteNameWarning(warnings); w != "" {
		return 0, fmt.Errorf("extract %s: GNU tar says %q: the archive names files by absolute paths, which no backup does "+
			"(tar strips the \"/\" and extracts them inside the target, where the archive did not put them); refused: %w", name, w, ErrBadSet)
	}
	return r.N, nil
}

// absoluteNameWarning returns GNU tar's warning (LC_ALL=C) that it
// stripped a leading "/" from member names or hard link targets, "" if
// stderr has none. GNU tar extracts such members inside the target and
// exits 0; raspiBackup and backupctl archives never hold one (tar strips
// "/" when it creates them), so a set that does was made to attack the
// restore, and the restore refuses it as GNU tar refuses ".." members.
func absoluteNameWarning(stderr string) string {
	for _, l := range strings.Split(stderr, "\n") {
		if i := strings.Index(l, "Removing leading `/' from"); i >= 0 {
			return strings.TrimSpace(l[i:])
		}
	}
	return ""
}
