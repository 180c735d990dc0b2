package blockdev

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// FreeBytes is the space available to unprivileged writers on the
// filesystem holding path (statfs f_bavail): what a backup or a restore
// test may count on.
func FreeBytes(path string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", path, err)
	}
	return int64(st.Bavail) * int64(st.Bsize), nil // Bsize is int32 on 32-bit ARM
}

// devOf gives the device number of the filesystem holding path.
func devOf(path string) (major, minor int, err error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, 0, fmt.Errorf("stat %s: %w", path, err)
	}
	return int(unix.Major(st.Dev)), int(unix.Minor(st.Dev)), nil
}

// rdevOf gives the device number a device file fi describes.
func rdevOf(fi os.FileInfo) (major, minor int) {
	rdev := uint64(fi.Sys().(*syscall.Stat_t).Rdev)
	return int(unix.Major(rdev)), int(unix.Minor(rdev))
}

// RereadPartitions asks the kernel to read the partition table of the
// disk open as f again (BLKRRPART), so /dev/sdX1... match what was just
// written. Loop devices without partition scanning refuse; callers that
// never use partition nodes may ignore the error.
func RereadPartitions(f *os.File) error {
	if err := unix.IoctlSetInt(int(f.Fd()), unix.BLKRRPART, 0); err != nil {
		return fmt.Errorf("re-read the partition table of %s: %w", f.Name(), err)
	}
	return nil
}
