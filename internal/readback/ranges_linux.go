package readback

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// dataExtents calls fn with each range of f below size that the
// filesystem holds data for (SEEK_DATA, SEEK_HOLE), in order. Without
// SEEK_DATA the whole file is one range.
func dataExtents(f *os.File, size int64, fn func(off, end int64) error) error {
	fd := int(f.Fd())
	for off := int64(0); off < size; {
		d, err := unix.Seek(fd, off, unix.SEEK_DATA)
		switch {
		case errors.Is(err, unix.ENXIO):
			return nil // only a hole from off on
		case errors.Is(err, unix.EINVAL) && off == 0:
			return fn(0, size)
		case err != nil:
			return err
		}
		h, err := unix.Seek(fd, d, unix.SEEK_HOLE)
		if err != nil {
			return err
		}
		h = min(h, size)
		if err := fn(d, h); err != nil {
			return err
		}
		off = h
	}
	return nil
}
