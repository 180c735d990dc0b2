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

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/blockdev"
)

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

// LockHost takes the exclusive flock on hostDir/.backupctl.lock, failing
// at once with ErrLocked when another run holds it. The lock goes with
// the process, so a killed run leaves no stale lock. Backup runs take it,
// and so do other commands that must never run at the same time as a
// backup of that host (restore-test).
func LockHost(hostDir string) (unlock func(), err error) {
	return lockPath(filepath.Join(hostDir, backupset.LockFile), hostDir)
}

// lockPath takes the exclusive flock on the file p; what names what it
// locks in messages.
func lockPath(p, what string) (unlock func(), err error) {
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", what, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s: %w", p, ErrLocked)
		}
		return nil, fmt.Errorf("lock %s: %w", what, err)
	}
	// The PID is for humans looking at a lock; the flock is what counts.
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() { f.Close() }, nil
}

// lockHeld reports whether another process holds hostDir's lock, without
// creating anything (for --dry-run).
func lockHeld(hostDir string) bool {
	return lockFileHeld(filepath.Join(hostDir, backupset.LockFile))
}

func lockFileHeld(p string) bool {
	f, err := os.Open(p)
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

// bindRoot bind-mounts / (not what is mounted below it) read-only and
// private in the mounter's folder and returns where. close unmounts it,
// and cleanStaleMounts does so after a killed run.
func (m *mounter) bindRoot() (string, error) {
	if m.base == "" {
		base, err := newMountBase()
		if err != nil {
			return "", err
		}
		m.base = base
	}
	dir := filepath.Join(m.base, "root")
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", fmt.Errorf("mount folder: %w", err)
	}
	if err := unix.Mount("/", dir, "", unix.MS_BIND, ""); err != nil {
		os.Remove(dir)
		return "", fmt.Errorf("bind-mount / on %s: %w", dir, err)
	}
	m.mounted = append(m.mounted, dir)
	// Private: mounts made under / while the backup runs (an automounted
	// USB stick) must not appear in this view. Read-only: the backup
	// cannot change the system through it.
	for _, flags := range []uintptr{unix.MS_PRIVATE, unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC} {
		if err := unix.Mount("", dir, "", flags, ""); err != nil {
			return "", fmt.Errorf("bind mount of / on %s: set flags %#x: %w", dir, flags, err)
		}
	}
	return dir, nil
}

func (m *mounter) close() error {
	var errs []error
	for i := len(m.mounted) - 1; i >= 0; i-- {
		dir := m.mounted[i]
		if err := unix.Unmount(dir, 0); err != nil {
			// Busy (a child still holds a file): detach lazily so the
			// source is released as soon as it can be.
			if err2 := unix.Unmount(dir, unix.MNT_DETACH); err2 != nil {
				errs = append(errs, fmt.Errorf("unmount %s: %w", dir, err))
				continue
			}
		}
		os.Remove(dir)
	}
	m.mounted = nil
	if m.base != "" {
		os.Remove(m.base)
		m.base = ""
	}
	return errors.Join(errs...)
}

// childAttr kills tar and rsync when backupctl dies, so a killed run does
// not leave them writing into the partial set.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// probeTarget checks, in the host folder, what an rsync set needs from the
// target filesystem: hardlinks (for --link-dest), owners (chown) and
// extended attributes (file capabilities). raspiBackup makes the same
// checks; the typical failure is an NFS export with root_squash.
func probeTarget(hostDir string) error {
	dir, err := os.MkdirTemp(hostDir, ".probe-")
	if err != nil {
		return fmt.Errorf("%w: %s is not writable: %w", ErrPreflight, hostDir, err)
	}
	defer os.RemoveAll(dir)
	a := filepath.Join(dir, "a")
	if err := os.WriteFile(a, nil, 0o600); err != nil {
		return fmt.Errorf("%w: %s is not writable: %w", ErrPreflight, hostDir, noSpace(err))
	}
	hint := "; an rsync set needs a Linux filesystem (ext4, btrfs, xfs) or an NFS export with no_root_squash"
	if err := os.Link(a, filepath.Join(dir, "b")); err != nil {
		return fmt.Errorf("%w: %s does not support hardlinks (%w)%s", ErrPreflight, hostDir, err, hint)
	}
	if err := os.Lchown(a, 4242, 4343); err != nil {
		return fmt.Errorf("%w: %s does not keep file owners (%w)%s", ErrPreflight, hostDir, err, hint)
	}
	var st unix.Stat_t
	if err := unix.Lstat(a, &st); err != nil || st.Uid != 4242 || st.Gid != 4343 {
		return fmt.Errorf("%w: %s does not keep file owners (chown did not stick)%s", ErrPreflight, hostDir, hint)
	}
	if err := unix.Lsetxattr(a, "user.pibackup.probe", []byte("1"), 0); err != nil {
		return fmt.Errorf("%w: %s does not support extended attributes (%w)%s", ErrPreflight, hostDir, err, hint)
	}
	// cap_net_raw+ep, the capability ping carries on Raspberry Pi OS.
	capV2 := []byte{0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	if err := unix.Lsetxattr(a, "security.capability", capV2, 0); err != nil {
		return fmt.Errorf("%w: %s cannot store file capabilities (%w)%s", ErrPreflight, hostDir, err, hint)
	}
	return nil
}

// devNum gives the major and minor number of the device file fi
// describes.
func devNum(fi os.FileInfo) (major, minor int) {
	rdev := uint64(fi.Sys().(*syscall.Stat_t).Rdev)
	return int(unix.Major(rdev)), int(unix.Minor(rdev))
}
