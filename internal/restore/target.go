package restore

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/blockdev"
	"github.com/pibackup/pibackup/internal/disklayout"
	"github.com/pibackup/pibackup/internal/i18n"
	"github.com/pibackup/pibackup/internal/size"
)

// Target describes the disk or image file a restore writes, as the
// confirmation prompt shows it.
type Target struct {
	Path    string
	IsFile  bool  // an image file rather than a block device
	Exists  bool  // false: an image file to create
	Size    int64 // bytes it has (or will have)
	OldSize int64 // bytes an existing image file has now
	Model   string
	// Current is the partition table on the target now, nil if it has
	// none or it cannot be read.
	Current *backupset.Disk
}

// Describe is one line for prompts: path, model, size.
func (t *Target) Describe() string { return t.Text(i18n.New(i18n.English)) }

// Text is Describe in pr's language.
func (t *Target) Text(pr *i18n.Printer) string {
	id := i18n.PlanTargetDisk
	if t.IsFile {
		id = i18n.PlanTargetFile
		if !t.Exists {
			id = i18n.PlanTargetNewFile
		}
	}
	s := pr.Sprintf(id, t.Path, size.Format(t.Size))
	if t.Model != "" {
		s += ", " + t.Model
	}
	return s
}

// ErrTarget is wrapped by every refusal of a target.
var ErrTarget = errors.New("unsuitable target")

// ErrNoSize: the target is an image file to create, or an empty one, and
// no size was given for it (with ErrTarget).
var ErrNoSize = errors.New("no size given for the image file")

// ErrSizeOfDisk: a size was given for a disk, which has its own; a size is
// only for image files (with ErrTarget).
var ErrSizeOfDisk = errors.New("a size is only for image files")

// inspectTarget checks a target and learns its size. protect lists paths
// (the set folder) whose disk must not be the target. size is the size an
// image file should have (0: keep or refuse).
func inspectTarget(sys blockdev.Sys, path string, size int64, protect []string) (*Target, error) {
	if path == "" {
		return nil, fmt.Errorf("no target given: %w", ErrTarget)
	}
	t := &Target{Path: path}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if size <= 0 {
			return nil, fmt.Errorf("%s does not exist and %w to create: %w", path, ErrNoSize, ErrTarget)
		}
		if _, err := os.Stat(filepath.Dir(path)); err != nil {
			return nil, fmt.Errorf("target %s: %w", path, err)
		}
		t.IsFile, t.Size = true, size
	case err != nil:
		return nil, fmt.Errorf("target %s: %w", path, err)
	case fi.Mode().IsRegular():
		t.IsFile, t.Exists, t.OldSize, t.Size = true, true, fi.Size(), fi.Size()
		if size > 0 {
			t.Size = size
		}
		if t.Size == 0 {
			return nil, fmt.Errorf("%s is an empty file and %w: %w", path, ErrNoSize, ErrTarget)
		}
	case fi.Mode()&os.ModeDevice != 0 && fi.Mode()&os.ModeCharDevice == 0:
		t.Exists = true
		if size > 0 {
			return nil, fmt.Errorf("%s is a disk; %w: %w", path, ErrSizeOfDisk, ErrTarget)
		}
	default:
		return nil, fmt.Errorf("%s is neither a block device nor an image file: %w", path, ErrTarget)
	}
	if t.IsFile {
		abs, _ := filepath.Abs(path)
		for _, p := range protect {
			if p == "" {
				continue
			}
			pa, _ := filepath.Abs(p)
			if abs == pa || strings.HasPrefix(abs, pa+string(filepath.Separator)) {
				return nil, fmt.Errorf("%s lies inside the backup set %s: %w", path, p, ErrTarget)
			}
		}
	}
	if err := sys.CheckTarget(path, protect...); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTarget, err)
	}
	if !t.IsFile {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("target %s: %w", path, err)
		}
		t.Size, err = f.Seek(0, io.SeekEnd)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("size of %s: %w", path, err)
		}
		if info, err := sys.Info(filepath.Base(path)); err == nil {
			t.Model = info.Model
			if info.ReadOnly {
				return nil, fmt.Errorf("%s is read-only (write-protect switch?): %w", path, ErrTarget)
			}
		}
	}
	if err := checkTargetFree(t); err != nil {
		return nil, err
	}
	if t.Exists && t.OldSize+t.Size > 0 {
		if d, err := disklayout.ReadFile(path); err == nil {
			t.Current = d
		}
	}
	return t, nil
}

// ErrTargetBusy is wrapped when another restore, clone or test restore
// (in this process or another) holds the target's lock.
var ErrTargetBusy = errors.New("another restore or clone is writing this target")

// lockTarget takes the target's lock: flock(2) LOCK_EX on the image file
// or the disk, on a descriptor of its own so it lasts until release
// whatever the restore opens and closes meanwhile. Two restores onto
// one target would each wipe and write the other's partition table;
// the second is refused at once instead of waiting. An image file that
// does not exist yet is created here (the restore creates it anyway) so
// that there is something to lock. The kernel drops the lock when the
// process dies, so a crashed run never leaves a stale one; systemd-udevd
// also leaves a disk alone while it is held.
func lockTarget(t *Target) (release func(), err error) {
	flags := os.O_RDONLY
	if t.IsFile {
		flags = os.O_RDWR | os.O_CREATE
	}
	f, err := os.OpenFile(t.Path, flags, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock target %s: %w", t.Path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s: %w; wait until it has finished", t.Path, ErrTargetBusy)
		}
		return nil, fmt.Errorf("lock target %s: %w", t.Path, err)
	}
	return func() { f.Close() }, nil
}

// checkTargetFree refuses, while planning, a target whose lock is held,
// so a second run stops before it shows a plan and asks to confirm. It
// only looks (a shared lock, dropped at once); Execute takes the lock.
func checkTargetFree(t *Target) error {
	if !t.Exists {
		return nil
	}
	f, err := os.Open(t.Path)
	if err != nil {
		return nil // inspectTarget has read it; Execute reports what changed
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB); errors.Is(err, unix.EWOULDBLOCK) {
		return fmt.Errorf("%s: %w; wait until it has finished", t.Path, ErrTargetBusy)
	}
	return nil
}

// openTarget opens (creating or resizing an image file) the target for
// writing. A disk is opened O_EXCL, so nobody mounts it while we write.
// fresh truncates an image file to zero first: every block then reads as
// zero and unwritten ranges stay holes.
func openTarget(t *Target, fresh bool) (*os.File, error) {
	if t.IsFile {
		flags := os.O_RDWR | os.O_CREATE
		f, err := os.OpenFile(t.Path, flags, 0o644)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", t.Path, err)
		}
		if fresh {
			if err := f.Truncate(0); err != nil {
				f.Close()
				return nil, fmt.Errorf("truncate %s: %w", t.Path, err)
			}
		}
		if err := f.Truncate(t.Size); err != nil {
			f.Close()
			return nil, fmt.Errorf("size %s to %d bytes: %w", t.Path, t.Size, err)
		}
		return f, nil
	}
	f, err := os.OpenFile(t.Path, os.O_RDWR|unix.O_EXCL, 0)
	if err != nil {
		if errors.Is(err, unix.EBUSY) {
			return nil, fmt.Errorf("%s is in use (mounted or held by another program): %w", t.Path, ErrTarget)
		}
		return nil, fmt.Errorf("open %s: %w", t.Path, err)
	}
	return f, nil
}

// wipeTable zeroes the first and last MiB of the target, so that until
// the restore writes the new partition table as its very last step the
// target has none: an interrupted restore leaves a disk no firmware boots
// and no tool mistakes for a good copy.
func wipeTable(f *os.File, size int64) error {
	zero := make([]byte, mib)
	for _, off := range []int64{0, max(0, size-mib)} {
		n := min(int64(mib), size-off)
		if _, err := f.WriteAt(zero[:n], off); err != nil {
			return fmt.Errorf("wipe partition table: %w", err)
		}
	}
	return nil
}

// rereadTable asks the kernel to re-read the partition table of a disk,
// so /dev/sdX1... match what was written. Loop devices without partition
// scanning refuse; that is fine, we never use their partition nodes.
func rereadTable(f *os.File) {
	_ = blockdev.RereadPartitions(f)
}
