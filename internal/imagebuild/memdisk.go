package imagebuild

import (
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"time"

	"github.com/diskfs/go-diskfs/backend"
)

// memDisk is a go-diskfs backend that keeps the head of a disk image in
// memory. go-diskfs writes a FAT32 with 512-byte clusters one cluster per
// syscall; on an image file that took 25 s for the 60 MiB pi3 image, in
// memory it takes well under a second. Only the first len(buf) bytes are
// stored (the MBR and the boot partition); the rest of the disk (the data
// partition, made by mke2fs later) reads as zeros and must not be written.
type memDisk struct {
	buf  []byte
	size int64 // the whole disk
	off  int64 // for Read and Seek
}

var _ backend.Storage = (*memDisk)(nil)
var _ backend.WritableFile = (*memDisk)(nil)

func newMemDisk(head, size int64) *memDisk {
	return &memDisk{buf: make([]byte, head), size: size}
}

func (m *memDisk) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("memdisk: negative offset")
	}
	if off >= m.size {
		return 0, io.EOF
	}
	n := len(p)
	if rest := m.size - off; int64(n) > rest {
		n = int(rest)
	}
	// Bytes past the stored head read as zeros.
	c := 0
	if off < int64(len(m.buf)) {
		c = copy(p[:n], m.buf[off:])
	}
	clear(p[c:n])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m *memDisk) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(m.buf)) {
		return 0, fmt.Errorf("BUG: memdisk write of %d bytes at %d outside the in-memory head (%d bytes)", len(p), off, len(m.buf))
	}
	return copy(m.buf[off:], p), nil
}

func (m *memDisk) Read(p []byte) (int, error) {
	n, err := m.ReadAt(p, m.off)
	m.off += int64(n)
	return n, err
}

func (m *memDisk) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += m.off
	case io.SeekEnd:
		off += m.size
	default:
		return 0, errors.New("memdisk: bad whence")
	}
	if off < 0 {
		return 0, errors.New("memdisk: negative offset")
	}
	m.off = off
	return off, nil
}

func (m *memDisk) Close() error                            { return nil }
func (m *memDisk) Stat() (iofs.FileInfo, error)            { return memInfo{m.size}, nil }
func (m *memDisk) Sys() (*os.File, error)                  { return nil, backend.ErrNotSuitable }
func (m *memDisk) Writable() (backend.WritableFile, error) { return m, nil }
func (m *memDisk) Path() string                            { return "" }

// memInfo makes memDisk look like a regular file of the disk's size, which
// is what go-diskfs checks before treating it as an image.
type memInfo struct{ size int64 }

func (i memInfo) Name() string        { return "memdisk" }
func (i memInfo) Size() int64         { return i.size }
func (i memInfo) Mode() iofs.FileMode { return 0o644 }
func (i memInfo) ModTime() time.Time  { return time.Time{} }
func (i memInfo) IsDir() bool         { return false }
func (i memInfo) Sys() any            { return nil }

// loadHead reads the first head bytes of the image file img into a memDisk
// that reports the file's full size.
func loadHead(img string, head int64) (*memDisk, error) {
	f, err := os.Open(img)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	head = min(head, fi.Size())
	m := newMemDisk(head, fi.Size())
	if _, err := io.ReadFull(f, m.buf); err != nil {
		return nil, fmt.Errorf("read %s: %w", img, err)
	}
	return m, nil
}
