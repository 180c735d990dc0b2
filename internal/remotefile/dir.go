package remotefile

import (
	"errors"
	"io"
	"io/fs"
	"time"
)

// Dir is an open folder whose entries were listed when it was opened.
type Dir struct {
	info    fs.FileInfo
	entries []fs.DirEntry
}

// NewDir returns the folder described by info holding entries.
func NewDir(info fs.FileInfo, entries []fs.DirEntry) *Dir { return &Dir{info: info, entries: entries} }

// Stat implements fs.File.
func (d *Dir) Stat() (fs.FileInfo, error) { return d.info, nil }

// Read implements fs.File: a folder has no bytes.
func (d *Dir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.info.Name(), Err: errors.New("is a directory")}
}

// Close implements fs.File.
func (d *Dir) Close() error { return nil }

// ReadDir implements fs.ReadDirFile.
func (d *Dir) ReadDir(n int) ([]fs.DirEntry, error) {
	if n <= 0 {
		es := d.entries
		d.entries = nil
		return es, nil
	}
	if len(d.entries) == 0 {
		return nil, io.EOF
	}
	n = min(n, len(d.entries))
	es := d.entries[:n]
	d.entries = d.entries[n:]
	return es, nil
}

// Info describes a remote file (read-only, 0444) or folder (0555).
type Info struct {
	Base  string
	Bytes int64
	MTime time.Time
	Dir   bool
}

// Name, Size, ModTime, IsDir, Sys and Mode implement fs.FileInfo.
func (i Info) Name() string       { return i.Base }
func (i Info) Size() int64        { return i.Bytes }
func (i Info) ModTime() time.Time { return i.MTime }
func (i Info) IsDir() bool        { return i.Dir }
func (i Info) Sys() any           { return nil }
func (i Info) Mode() fs.FileMode {
	if i.Dir {
		return fs.ModeDir | 0o555
	}
	return 0o444
}
