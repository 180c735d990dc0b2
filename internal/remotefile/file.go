// Package remotefile holds what an fs.FS over HTTP hands out: File, a
// remote file read with range requests, which is also an io.ReaderAt and
// an io.Seeker (Read streams one response from the offset on — a restore
// reads a payload front to back: one request, not one per buffer —
// ReadAt asks for exactly the bytes it needs, Seek drops the stream);
// Dir, a listed folder; and Info. S3 objects (s3fs) and files on a web
// server (the recovery's https:// source) are read with them.
package remotefile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
)

// Get returns the bytes start..end of the file (end inclusive); end -1
// means to the end of the file.
type Get func(start, end int64) (io.ReadCloser, error)

// File is an open remote file of a known size.
type File struct {
	info   fs.FileInfo
	get    Get
	wrap   func(error) error
	off    int64
	stream io.ReadCloser
}

// New returns the file described by info (its Size counts), read by get.
// wrap, if not nil, adds context to an error while reading a response
// (a connection lost mid-payload).
func New(info fs.FileInfo, get Get, wrap func(error) error) *File {
	if wrap == nil {
		wrap = func(err error) error { return err }
	}
	return &File{info: info, get: get, wrap: wrap}
}

// Stat implements fs.File.
func (f *File) Stat() (fs.FileInfo, error) { return f.info, nil }

// Read implements io.Reader with one streaming request.
func (f *File) Read(p []byte) (int, error) {
	size := f.info.Size()
	if f.off >= size {
		return 0, io.EOF
	}
	if f.stream == nil {
		rc, err := f.get(f.off, -1)
		if err != nil {
			return 0, err
		}
		f.stream = rc
	}
	n, err := f.stream.Read(p)
	f.off += int64(n)
	switch {
	case err == io.EOF && f.off < size:
		err = fmt.Errorf("read %s: the server's answer ended at byte %d of %d: %w", f.info.Name(), f.off, size, io.ErrUnexpectedEOF)
	case err != nil && err != io.EOF:
		err = f.wrap(err)
	}
	return n, err
}

// ReadAt implements io.ReaderAt with one ranged request.
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	size := f.info.Size()
	if off < 0 {
		return 0, &fs.PathError{Op: "readat", Path: f.info.Name(), Err: fs.ErrInvalid}
	}
	if off >= size {
		return 0, io.EOF
	}
	want := min(int64(len(p)), size-off)
	if want == 0 {
		return 0, nil
	}
	rc, err := f.get(off, off+want-1)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	n, err := io.ReadFull(rc, p[:want])
	if err != nil {
		return n, f.wrap(err)
	}
	if want < int64(len(p)) {
		return n, io.EOF
	}
	return n, nil
}

// Seek implements io.Seeker.
func (f *File) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += f.off
	case io.SeekEnd:
		offset += f.info.Size()
	default:
		return 0, &fs.PathError{Op: "seek", Path: f.info.Name(), Err: errors.New("bad whence")}
	}
	if offset < 0 {
		return 0, &fs.PathError{Op: "seek", Path: f.info.Name(), Err: fs.ErrInvalid}
	}
	if offset != f.off && f.stream != nil {
		f.stream.Close()
		f.stream = nil
	}
	f.off = offset
	return offset, nil
}

// Close drops the stream.
func (f *File) Close() error {
	if f.stream != nil {
		f.stream.Close()
		f.stream = nil
	}
	return nil
}
