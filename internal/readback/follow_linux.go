package readback

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// writeBack makes [off, off+n) of f reach the disk and leave the page
// cache, so that reading it next reads the disk: sync_file_range writes
// the range and waits for it (earlier writeback of it included), and
// POSIX_FADV_DONTNEED then drops its now clean pages. The length is
// rounded up to whole pages: the kernel keeps a partial last page, and
// the file's last page is partial.
func writeBack(f *os.File, off, n int64) error {
	fd := int(f.Fd())
	err := unix.SyncFileRange(fd, off, n, unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EOPNOTSUPP) {
		// A filesystem (or kernel) without it: the whole file then.
		err = unix.Fdatasync(fd)
	}
	if err != nil {
		return err
	}
	ps := int64(os.Getpagesize())
	return unix.Fadvise(fd, off, (n+ps-1)/ps*ps, unix.FADV_DONTNEED)
}
