package backup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/pibackup/pibackup/internal/blockdev"
)

// attachLoop attaches [offset, offset+size) of path read-only to a free
// loop device with LO_FLAGS_AUTOCLEAR and returns the device and its open
// handle. With autoclear the kernel detaches the device once the last user
// is gone: our handle (closed right after the mount) and then the mount.
// So a backupctl killed with SIGKILL leaks no loop device, only a
// read-only mount that the next run removes (cleanStaleMounts).
//
// blockdev.AttachPartition's loop devices are not autocleared (its callers
// mkfs, mount and unmount across several opens and detach themselves);
// that is why this is our own.
func attachLoop(path string, offset, size int64) (dev string, handle *os.File, err error) {
	backing, err := os.Open(path)
	if err != nil {
		return "", nil, fmt.Errorf("attach %s: %w", path, err)
	}
	defer backing.Close()
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
	if err != nil {
		return "", nil, fmt.Errorf("attach %s: %w", path, err)
	}
	defer ctl.Close()
	for try := 0; try < 20; try++ {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return "", nil, fmt.Errorf("attach %s: get free loop device: %w", path, err)
		}
		dev = "/dev/loop" + strconv.Itoa(n)
		if _, err := os.Stat(dev); errors.Is(err, os.ErrNotExist) {
			// Containers with a static /dev lack nodes for new loop devices.
			if err := unix.Mknod(dev, unix.S_IFBLK|0o660, int(unix.Mkdev(7, uint32(n)))); err != nil && !errors.Is(err, unix.EEXIST) {
				return "", nil, fmt.Errorf("attach %s: create %s: %w", path, dev, err)
			}
		}
		f, err := os.OpenFile(dev, os.O_RDONLY, 0)
		if err != nil {
			return "", nil, fmt.Errorf("attach %s: %w", path, err)
		}
		cfg := unix.LoopConfig{Fd: uint32(backing.Fd())}
		cfg.Info.Offset = uint64(offset)
		cfg.Info.Sizelimit = uint64(size)
		cfg.Info.Flags = unix.LO_FLAGS_READ_ONLY | unix.LO_FLAGS_AUTOCLEAR
		copy(cfg.Info.File_name[:], path)
		err = unix.IoctlLoopConfigure(int(f.Fd()), &cfg)
		if errors.Is(err, unix.EBUSY) {
			f.Close() // another process took it between GET_FREE and here
			continue
		}
		if err != nil {
			f.Close()
			return "", nil, fmt.Errorf("attach %s to %s: %w", path, dev, err)
		}
		return dev, f, nil
	}
	return "", nil, fmt.Errorf("attach %s: no free loop device after 20 tries", path)
}

// mountPrefix starts the name of our private mount folders; the PID that
// follows tells cleanStaleMounts whose they are.
const mountPrefix = "backupctl-src-"

// newMountBase makes a private (0700) folder for this run's source mounts.
func newMountBase() (string, error) {
	dir, err := os.MkdirTemp("", fmt.Sprintf("%s%d-", mountPrefix, os.Getpid()))
	if err != nil {
		return "", fmt.Errorf("mount folder: %w", err)
	}
	return dir, nil
}

// mountRO mounts the filesystem on dev read-only at dir. ext2/3/4 get
// "noload": no journal replay, so a disk taken from a Pi that was not shut
// down cleanly is not written to.
func mountRO(dev, dir, fstype string) error {
	flags := uintptr(unix.MS_RDONLY | unix.MS_NOATIME | unix.MS_NODEV | unix.MS_NOSUID | unix.MS_NOEXEC)
	var err error
	switch fstype {
	case "ext2", "ext3", "ext4":
		err = unix.Mount(dev, dir, "ext4", flags, "noload")
		if err != nil {
			err = unix.Mount(dev, dir, fstype, flags, "")
		}
	default:
		err = unix.Mount(dev, dir, fstype, flags, "")
	}
	if err != nil {
		return fmt.Errorf("mount %s (%s) read-only on %s: %w", dev, fstype, dir, err)
	}
	return nil
}

// cleanStaleMounts unmounts source mounts left behind by backupctl runs
// that were killed (their PID is gone) and removes their folders.
func cleanStaleMounts(sys blockdev.Sys) []string {
	mounts, err := sys.Mounts()
	if err != nil {
		return nil
	}
	var cleaned []string
	for i := len(mounts) - 1; i >= 0; i-- { // deepest last-mounted first
		mp := mounts[i].MountPoint
		base := filepath.Base(filepath.Dir(mp))
		if !strings.HasPrefix(base, mountPrefix) {
			continue
		}
		pidStr, _, _ := strings.Cut(strings.TrimPrefix(base, mountPrefix), "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		if err := unix.Unmount(mp, unix.MNT_DETACH); err == nil {
			cleaned = append(cleaned, mp)
			os.Remove(mp)
			os.Remove(filepath.Dir(mp))
		}
	}
	return cleaned
}

func processAlive(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}

// lockFile is the name of the lock in a host folder.
const lockFile = ".backupctl.lock"

// LockHost takes the exclusive flock on hostDir/.backupctl.lock, failing
// at once with ErrLocked when another run holds it. The lock goes with
// the process, so a killed run leaves no stale lock. Backup runs take it,
// and so do other commands that must never run at the same time as a
// backup of that host (restore-test).
func LockHost(hostDir string) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(hostDir, lockFile), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", hostDir, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s: %w", filepath.Join(hostDir, lockFile), ErrLocked)
		}
		return nil, fmt.Errorf("lock %s: %w", hostDir, err)
	}
	// The PID is for humans looking at a lock; the flock is what counts.
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() { f.Close() }, nil
}

// lockHeld reports whether another process holds hostDir's lock, without
// creating anything (for --dry-run).
func lockHeld(hostDir string) bool {
	f, err := os.Open(filepath.Join(hostDir, lockFile))
	if err != nil {
		return false
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB); err != nil {
		return errors.Is(err, unix.EWOULDBLOCK)
	}
	return false
}

// usedBytes is what the filesystem holding path uses.
func usedBytes(path string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", path, err)
	}
	return int64(st.Blocks-st.Bfree) * int64(st.Bsize), nil
}

// isNoSpace reports whether err is the target running full.
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// fsyncDir makes a rename or create in dir durable.
func fsyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

// devOf returns the device number of the filesystem holding path.
func devOf(path string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, err
	}
	return st.Dev, nil
}

// setTimesLike gives dst the atime and mtime of src (both folders).
func setTimesLike(dst, src string) error {
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return err
	}
	return unix.UtimesNanoAt(unix.AT_FDCWD, dst, []unix.Timespec{st.Atim, st.Mtim}, unix.AT_SYMLINK_NOFOLLOW)
}

// syncAll writes every filesystem's dirty data and metadata (sync(2)).
func syncAll() { unix.Sync() }
