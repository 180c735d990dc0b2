package restore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/blockdev"
	"github.com/pibackup/pibackup/internal/disklayout"
	"github.com/pibackup/pibackup/internal/progress"
	"github.com/pibackup/pibackup/internal/size"
)

// cloneMarker is the file at the root of a cloned root filesystem that
// marks it as ours: it names the source disk, so a second clone run knows
// it may sync instead of formatting. rsync excludes it (and so never
// deletes it).
const cloneMarker = ".pibackup-clone"

// marker is the content of cloneMarker.
type marker struct {
	SourceDiskID   string    `json:"source_disk_id"`
	SourceRootUUID string    `json:"source_root_uuid"`
	Cloned         time.Time `json:"cloned"`
}

// CloneOptions says what to clone where.
type CloneOptions struct {
	// Source is a disk or image file to clone; "" clones the running
	// system (its root and boot filesystems, live).
	Source   string
	Target   string // block device or image file
	Size     int64  // size for an image file that does not exist yet
	Log      *slog.Logger
	Progress progress.Reporter
}

// ClonePlan is a decided clone.
type ClonePlan struct {
	Target *Target
	Source *backupset.Disk // the source disk's layout
	Layout *backupset.Disk // the target's layout after the clone
	// Sync is true when the target already is a clone of this source with
	// the planned layout: only changes are copied, nothing is formatted.
	Sync bool
	Need int64 // the smallest target that works

	o        CloneOptions
	log      *slog.Logger
	rep      progress.Reporter
	ids      *ids
	boot     int
	root     int
	live     bool   // the source is the running system
	srcDev   string // the source disk (image file or /dev/...)
	rootData int64
	why      string // why a full clone (not a sync) is planned
}

// CloneResult reports a clone.
type CloneResult struct {
	Result
	Sync bool // only changes were copied
	// RootTransferred is what rsync sent (its "Total transferred file
	// size"); BootWritten is what changed on the boot partition.
	RootTransferred int64
	FilesChanged    int64
	BootWritten     int64
}

// NewClonePlan reads source and target and decides the clone; it writes
// nothing.
func NewClonePlan(ctx context.Context, o CloneOptions) (*ClonePlan, error) {
	p := &ClonePlan{o: o, log: o.Log, rep: progress.OrNop(o.Progress)}
	if p.log == nil {
		p.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	sys := blockdev.Host()
	if o.Source == "" {
		s, err := sys.FindSystem()
		if err != nil {
			return nil, fmt.Errorf("find the running system: %w", err)
		}
		if s.BootPart != nil && s.BootPart.Disk != s.RootPart.Disk {
			return nil, fmt.Errorf("root (%s) and boot (%s) are on different disks; clone with --source-disk: %w", s.RootPart.Name, s.BootPart.Name, ErrNotSupported)
		}
		p.live, p.srcDev = true, "/dev/"+s.RootPart.Disk
	} else {
		p.srcDev = o.Source
	}
	src, err := disklayout.ReadFile(p.srcDev)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", p.srcDev, err)
	}
	if ext, ok := disklayout.Extended(src); ok {
		return nil, fmt.Errorf("source %s has an extended partition (%d) with logical partitions (a NOOBS/PINN card); cloning it is %w: back it up with -P and restore that set", p.srcDev, ext.Number, ErrNotSupported)
	}
	p.Source = src
	p.boot, p.root = bootRoot(nil, src)
	rootPart, ok := disklayout.PartitionByNumber(src, p.root)
	if !ok || !strings.HasPrefix(rootPart.FSType, "ext") {
		return nil, fmt.Errorf("source %s: no ext2/3/4 root partition found", p.srcDev)
	}
	if p.boot != 0 {
		if bp, _ := disklayout.PartitionByNumber(src, p.boot); bp.FSType != "vfat" {
			return nil, fmt.Errorf("source %s: partition %d is not FAT (%q)", p.srcDev, p.boot, bp.FSType)
		}
	}
	protect := []string{}
	if !p.live {
		protect = append(protect, o.Source)
	}
	p.Target, err = inspectTarget(o.Target, o.Size, protect)
	if err != nil {
		return nil, err
	}
	if abs(o.Target) == abs(p.srcDev) {
		return nil, fmt.Errorf("%s: %w", o.Target, ErrSameDisk)
	}
	p.rootData = rootPart.FSUsed
	if p.live {
		var st unix.Statfs_t
		if err := unix.Statfs("/", &st); err == nil {
			p.rootData = int64(st.Blocks-st.Bfree) * int64(st.Bsize) // Bsize is int32 on 32-bit ARM
		}
	}
	minRoot := ext4Need(max(p.rootData-ext4Overhead(rootPart.Size), p.rootData/2))
	layout, _, err := disklayout.Resize(src, p.Target.Size, disklayout.ResizeOptions{MinSize: minRoot})
	p.Need = disklayout.MinDiskSize(src) - rootPart.Size + minRoot
	if err != nil {
		return nil, err
	}
	p.Layout = layout
	p.Sync, p.why = p.canSync(src)
	if p.Sync {
		p.ids = syncIDs(src, p.Target.Current, p.boot, p.root)
		p.Layout = p.Target.Current
	} else {
		p.ids, err = newIDs(src, p.Layout, p.boot, p.root, false)
		if err != nil {
			return nil, err
		}
	}
	return p, nil
}

func abs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	return a
}

// canSync decides whether the target already is our clone of src: same
// partition positions and types as planned, an ext4 root carrying our
// marker for this source.
func (p *ClonePlan) canSync(src *backupset.Disk) (bool, string) {
	cur := p.Target.Current
	if cur == nil {
		return false, "the target has no partition table"
	}
	if cur.Table != p.Layout.Table || len(cur.Partitions) != len(p.Layout.Partitions) {
		return false, "the target's partitions differ from the planned ones"
	}
	for _, want := range p.Layout.Partitions {
		got, ok := disklayout.PartitionByNumber(cur, want.Number)
		if !ok || got.Start != want.Start || got.Size != want.Size || !strings.EqualFold(got.Type, want.Type) {
			return false, "the target's partitions differ from the planned ones"
		}
	}
	root, _ := disklayout.PartitionByNumber(cur, p.root)
	if !strings.HasPrefix(root.FSType, "ext") {
		return false, "the target's root partition holds no ext4"
	}
	m, err := readMarker(p.Target.Path, *root)
	if err != nil {
		return false, "the target carries no clone marker: " + err.Error()
	}
	srcRoot, _ := disklayout.PartitionByNumber(src, p.root)
	if !strings.EqualFold(m.SourceDiskID, src.DiskID) || !strings.EqualFold(m.SourceRootUUID, srcRoot.UUID) {
		return false, fmt.Sprintf("the target is a clone of another disk (%s)", m.SourceDiskID)
	}
	return true, ""
}

// readMarker reads the clone marker from the root filesystem of a target
// without mounting it (debugfs).
func readMarker(target string, root backupset.Partition) (*marker, error) {
	out, err := runner{log: slog.New(slog.NewTextHandler(io.Discard, nil))}.run(context.Background(), nil, "debugfs",
		[]string{"-R", "cat /" + cloneMarker, fmt.Sprintf("%s?offset=%d", target, root.Start)})
	if err != nil {
		return nil, err
	}
	var m marker
	if err := json.Unmarshal(out, &m); err != nil {
		return nil, fmt.Errorf("clone marker: %w", err)
	}
	return &m, nil
}

// syncIDs maps the source's ids to those the existing clone already has.
func syncIDs(src, cur *backupset.Disk, boot, root int) *ids {
	m := &ids{OldDiskID: src.DiskID, NewDiskID: cur.DiskID, Parts: map[int]*partIDs{}, Boot: boot, Root: root}
	for _, s := range src.Partitions {
		c, ok := disklayout.PartitionByNumber(cur, s.Number)
		if !ok {
			continue
		}
		m.Parts[s.Number] = &partIDs{OldPartUUID: strings.ToLower(s.PartUUID), NewPartUUID: strings.ToLower(c.PartUUID),
			OldUUID: s.UUID, NewUUID: c.UUID, Label: s.Label}
	}
	return m
}

// String describes the clone plan.
func (p *ClonePlan) String() string {
	var b strings.Builder
	src := p.srcDev
	if p.live {
		src += " (the running system)"
	}
	fmt.Fprintf(&b, "Clone %s\nonto  %s\n", src, p.Target.Describe())
	if p.Sync {
		b.WriteString("\nThe target is a clone of this source with the same layout: only changes are copied\n(rsync --delete of the root, changed blocks of the boot partition); nothing is formatted.\n")
	} else {
		fmt.Fprintf(&b, "\nFull clone (%s).\n", p.why)
		if c := p.Target.Current; c != nil && len(c.Partitions) > 0 {
			b.WriteString("\nNow on the target (will be overwritten):\n")
			writeTable(&b, c, nil)
		}
	}
	b.WriteString("\nSource partition table:\n")
	writeTable(&b, p.Source, nil)
	b.WriteString("\nTarget partition table:\n")
	writeTable(&b, p.Layout, p.Source)
	b.WriteString("\nIdentifiers (the clone never shares ids with its source):\n")
	fmt.Fprintf(&b, "  disk id       %s -> %s\n", p.ids.OldDiskID, p.ids.NewDiskID)
	for _, n := range sortedIDParts(p.ids) {
		pi := p.ids.Parts[n]
		fmt.Fprintf(&b, "  PARTUUID  p%d  %s -> %s\n", n, pi.OldPartUUID, p.ids.partUUID(n))
		if n == p.boot || n == p.root {
			fmt.Fprintf(&b, "  UUID      p%d  %s -> %s\n", n, orUnknown(pi.OldUUID), p.ids.fsUUID(n))
		}
	}
	b.WriteString("\nBoot configuration: root= in cmdline.txt and the / and /boot entries of /etc/fstab name the clone's ids.\n")
	fmt.Fprintf(&b, "\nSpace: root data about %s; the target needs at least %s, it has %s.\n", size.Format(p.rootData), size.Format(p.Need), size.Format(p.Target.Size))
	return b.String()
}

// Execute clones (or syncs) the source onto the target.
func (p *ClonePlan) Execute(ctx context.Context) (*CloneResult, error) {
	start := time.Now()
	res := &CloneResult{Sync: p.Sync}
	release, err := lockTarget(p.Target)
	if err != nil {
		return res, err
	}
	defer release()
	err = p.execute(ctx, res)
	res.Duration = time.Since(start)
	if err != nil && res.Incomplete {
		err = fmt.Errorf("%w (%s has no partition table now; run the clone again): %w", ErrIncomplete, p.Target.Path, err)
	}
	return res, err
}

func (p *ClonePlan) execute(ctx context.Context, res *CloneResult) (err error) {
	t := p.Target
	f, err := openTarget(t, t.IsFile && !p.Sync)
	if err != nil {
		return err
	}
	defer f.Close()
	if !p.Sync {
		res.Incomplete = true
		defer func() {
			if err == nil {
				res.Incomplete = false
			}
		}()
		if !t.IsFile {
			if err := wipeTable(f, t.Size); err != nil {
				return err
			}
		}
	}
	run := runner{log: p.log}
	src, err := os.Open(p.srcDev)
	if err != nil {
		return fmt.Errorf("open source: %w", err)
	}
	defer src.Close()

	// Boot partition: block copy, only what differs on a sync.
	if p.boot != 0 {
		sb, _ := disklayout.PartitionByNumber(p.Source, p.boot)
		tb := p.part(p.boot)
		p.rep.Phase("boot partition", sb.Size)
		n, err := syncBlocks(ctx, f, tb.Start, io.NewSectionReader(src, sb.Start, sb.Size), sb.Size, !p.Sync && t.IsFile, p.rep)
		if err != nil {
			return fmt.Errorf("boot partition: %w", err)
		}
		res.BootWritten = n
		res.Bytes += n
		serial, err := parseFATSerial(p.ids.fsUUID(p.boot))
		if err != nil {
			return fmt.Errorf("BUG: %w", err)
		}
		if err := setFATSerial(f, f, tb.Start, serial); err != nil {
			return err
		}
	}

	// Root filesystem.
	if err := p.cloneRoot(ctx, run, res); err != nil {
		return err
	}

	if p.boot != 0 {
		tb := p.part(p.boot)
		changes, err := rewriteCmdlines(f, tb.Start, tb.Size, p.ids)
		if err != nil {
			return err
		}
		for _, c := range changes {
			res.Changes = append(res.Changes, c.String())
		}
	}
	if !p.Sync {
		opts := disklayout.WriteOptions{Wipe: true}
		if p.Layout.Table == "dos" {
			code := make([]byte, 440)
			if _, err := src.ReadAt(code, 0); err == nil {
				opts.BootCode = code
			}
		}
		if err := disklayout.WriteTable(f, p.Layout, opts); err != nil {
			return err
		}
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("flush %s: %w", t.Path, err)
	}
	if !t.IsFile {
		rereadTable(f)
	}
	res.Verified = true
	return nil
}

func (p *ClonePlan) part(n int) backupset.Partition {
	q, ok := disklayout.PartitionByNumber(p.Layout, n)
	if !ok {
		panic(fmt.Sprintf("BUG: partition %d not in the layout", n))
	}
	return *q
}

// cloneRoot formats the clone's root (first run) and rsyncs the source
// root onto it.
func (p *ClonePlan) cloneRoot(ctx context.Context, run runner, res *CloneResult) error {
	tr := p.part(p.root)
	att, err := blockdev.AttachPartition(ctx, p.Target.Path, 0, tr.Start, tr.Size, false)
	if err != nil {
		return fmt.Errorf("root partition: %w", err)
	}
	defer att.Detach()
	srcRoot, _ := disklayout.PartitionByNumber(p.Source, p.root)
	if !p.Sync {
		p.rep.Phase("format root filesystem", 0)
		if _, err := run.run(ctx, nil, "mkfs.ext4", mkfsExt4Args(att.Path, srcRoot.Label, p.ids.fsUUID(p.root), tr.Size)); err != nil {
			return fmt.Errorf("root partition: %w", err)
		}
	}
	srcDir := "/"
	excludes := liveExcludes
	if !p.live {
		sa, err := blockdev.AttachPartition(ctx, p.srcDev, 0, srcRoot.Start, srcRoot.Size, true)
		if err != nil {
			return fmt.Errorf("source root: %w", err)
		}
		defer sa.Detach()
		dir, unmount, err := mountReadOnly(sa.Path)
		if err != nil {
			return fmt.Errorf("source root: %w", err)
		}
		defer func() {
			if err := unmount(); err != nil {
				p.log.Error("unmount source root", "err", err)
			}
		}()
		srcDir, excludes = dir, nil
	}
	mnt, unmount, err := MountExt4(att.Path, false)
	if err != nil {
		return fmt.Errorf("root partition: %w", err)
	}
	mounted := true
	defer func() {
		if mounted {
			unmount()
		}
	}()
	p.rep.Phase("root filesystem", p.rootData)
	out, err := run.run(ctx, nil, "rsync", cloneRsyncArgs(srcDir, mnt, excludes), 24) // 24: files vanished (live source)
	if err != nil {
		return fmt.Errorf("root filesystem: %w", err)
	}
	st := parseRsyncStats(string(out))
	res.RootTransferred, res.FilesChanged = st.transferred, st.files
	res.Bytes += st.transferred
	p.rep.Add(st.transferred)
	if p.Sync {
		// rsync sets a directory's times before it writes into it and
		// does not set them again, so directories that got new or
		// changed files end up with the time of the sync.
		if err := syncDirTimes(ctx, srcDir, mnt); err != nil {
			return fmt.Errorf("root filesystem: %w", err)
		}
	}
	changes, err := syncFstab(srcDir, mnt, p.ids)
	if err != nil {
		return err
	}
	for _, c := range changes {
		res.Changes = append(res.Changes, c.String())
	}
	mk, _ := json.Marshal(marker{SourceDiskID: p.Source.DiskID, SourceRootUUID: srcRoot.UUID, Cloned: time.Now().UTC()})
	if err := os.WriteFile(filepath.Join(mnt, cloneMarker), append(mk, '\n'), 0o600); err != nil {
		return fmt.Errorf("write clone marker: %w", err)
	}
	// Creating the marker and fstab touched the times of / and /etc; the
	// clone's must stay the source's.
	for _, d := range []string{".", "etc"} {
		if err := copyTimes(filepath.Join(srcDir, d), filepath.Join(mnt, d)); err != nil {
			return err
		}
	}
	mounted = false
	if err := unmount(); err != nil {
		return fmt.Errorf("root partition: %w", err)
	}
	if !p.Sync {
		p.rep.Phase("check root filesystem", 0)
		if _, err := run.run(ctx, nil, "e2fsck", e2fsckArgs(att.Path, true), 1); err != nil {
			return fmt.Errorf("root partition: %w", err)
		}
	}
	return nil
}

// syncFstab writes the source's /etc/fstab, rewritten for the clone's
// ids, to the clone, only when the clone's differs. rsync leaves fstab out
// (cloneRsyncArgs): otherwise every run would copy the source's version
// over the rewritten one and count it as a change.
func syncFstab(srcDir, mnt string, m *ids) ([]change, error) {
	src := filepath.Join(srcDir, "etc", "fstab")
	b, err := os.ReadFile(src)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read source fstab: %w", err)
	}
	want, changes := m.rewriteFstab(string(b))
	dst := filepath.Join(mnt, "etc", "fstab")
	if have, err := os.ReadFile(dst); err == nil && string(have) == want {
		return nil, nil
	}
	fi, err := os.Stat(src)
	if err != nil {
		return nil, fmt.Errorf("stat source fstab: %w", err)
	}
	if err := os.WriteFile(dst, []byte(want), fi.Mode().Perm()); err != nil {
		return nil, fmt.Errorf("write fstab: %w", err)
	}
	if st, ok := fi.Sys().(*unix.Stat_t); ok {
		if err := os.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
			return nil, fmt.Errorf("write fstab: %w", err)
		}
	}
	if err := os.Chmod(dst, fi.Mode().Perm()); err != nil {
		return nil, fmt.Errorf("write fstab: %w", err)
	}
	return changes, copyTimes(src, dst)
}

// syncDirTimes gives every directory under dst the times of the same
// directory under src, staying on src's filesystem like rsync -x (a
// mount point's own times are taken, what is below it is not walked).
func syncDirTimes(ctx context.Context, src, dst string) error {
	var root unix.Stat_t
	if err := unix.Lstat(src, &root); err != nil {
		return fmt.Errorf("stat %s: %w", src, err)
	}
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrPermission) || errors.Is(err, fs.ErrNotExist) {
				return nil // vanished or unreadable (live /proc, ...): rsync skipped it too
			}
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		var ss, ds unix.Stat_t
		if err := unix.Lstat(p, &ss); err != nil {
			return nil
		}
		t := filepath.Join(dst, rel)
		if err := unix.Lstat(t, &ds); err == nil && ds.Mode&unix.S_IFMT == unix.S_IFDIR && ds.Mtim != ss.Mtim {
			if err := unix.UtimesNanoAt(unix.AT_FDCWD, t, []unix.Timespec{ss.Atim, ss.Mtim}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return fmt.Errorf("set times of %s: %w", t, err)
			}
		}
		if ss.Dev != root.Dev {
			return filepath.SkipDir
		}
		return nil
	})
}

// copyTimes gives dst the access and modification times of src, to the
// nanosecond.
func copyTimes(src, dst string) error {
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return fmt.Errorf("stat %s: %w", src, err)
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, dst, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times of %s: %w", dst, err)
	}
	return nil
}

// mountReadOnly mounts an ext4 read-only without replaying its journal
// (noload): the source may be a disk whose filesystem was not unmounted
// cleanly, and must not change.
func mountReadOnly(dev string) (string, func() error, error) {
	dir, err := os.MkdirTemp("", "pibackup-clone-src-")
	if err != nil {
		return "", nil, err
	}
	if err := unix.Mount(dev, dir, "ext4", unix.MS_RDONLY|unix.MS_NOATIME, "noload"); err != nil {
		os.Remove(dir)
		return "", nil, fmt.Errorf("mount %s read-only: %w", dev, err)
	}
	return dir, func() error {
		if err := unix.Unmount(dir, 0); err != nil {
			return err
		}
		return os.Remove(dir)
	}, nil
}

// syncBlocks makes [off, off+size) of f equal to r, writing only the
// 1 MiB blocks that differ (all of them with holes=false on a fresh
// target, where reading first is wasted; all-zero blocks are then
// skipped). It returns the bytes written.
func syncBlocks(ctx context.Context, f *os.File, off int64, r io.Reader, size int64, fresh bool, rep progress.Reporter) (int64, error) {
	want := make([]byte, blockSize)
	have := make([]byte, blockSize)
	var written int64
	for done := int64(0); done < size; {
		if err := ctx.Err(); err != nil {
			return written, err
		}
		n := int(min(int64(blockSize), size-done))
		if _, err := io.ReadFull(r, want[:n]); err != nil {
			return written, fmt.Errorf("read source at %d: %w", done, err)
		}
		write := true
		if fresh {
			write = !isZero(want[:n])
		} else if _, err := f.ReadAt(have[:n], off+done); err == nil && bytes.Equal(have[:n], want[:n]) {
			write = false
		}
		if write {
			if _, err := f.WriteAt(want[:n], off+done); err != nil {
				return written, fmt.Errorf("write at %d: %w", off+done, err)
			}
			written += int64(n)
		}
		done += int64(n)
		rep.Add(int64(n))
	}
	return written, nil
}

type rsyncStats struct {
	files       int64
	transferred int64
}

var (
	rsyncFilesRE = regexp.MustCompile(`Number of regular files transferred: ([0-9,.]+)`)
	rsyncBytesRE = regexp.MustCompile(`Total transferred file size: ([0-9,.]+) bytes`)
)

// parseRsyncStats reads rsync --stats output (numbers may carry
// thousands separators).
func parseRsyncStats(s string) rsyncStats {
	num := func(re *regexp.Regexp) int64 {
		m := re.FindStringSubmatch(s)
		if m == nil {
			return 0
		}
		v, _ := strconv.ParseInt(strings.NewReplacer(",", "", ".", "").Replace(m[1]), 10, 64)
		return v
	}
	return rsyncStats{files: num(rsyncFilesRE), transferred: num(rsyncBytesRE)}
}

// ErrSameDisk is returned when source and target are one disk.
var ErrSameDisk = errors.New("source and target are the same disk")
