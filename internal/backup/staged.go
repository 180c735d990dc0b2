package backup

import (
	"bytes"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"
)

// withFile is a folder with one more file, served from memory: a set on
// a store that cannot rename, with the manifest it gets once it
// verified (see finish). Everything else is read from FS.
type withFile struct {
	fs.FS
	name  string
	data  []byte
	mtime time.Time
}

var (
	_ fs.StatFS    = withFile{}
	_ fs.ReadDirFS = withFile{}
)

func (w withFile) Open(name string) (fs.File, error) {
	if name == w.name {
		return &memFile{Reader: bytes.NewReader(w.data), info: w.info()}, nil
	}
	return w.FS.Open(name)
}

func (w withFile) Stat(name string) (fs.FileInfo, error) {
	if name == w.name {
		return w.info(), nil
	}
	return fs.Stat(w.FS, name)
}

func (w withFile) ReadDir(name string) ([]fs.DirEntry, error) {
	es, err := fs.ReadDir(w.FS, name)
	if err != nil || name != "." {
		return es, err
	}
	es = slices.DeleteFunc(es, func(e fs.DirEntry) bool { return e.Name() == w.name })
	es = append(es, fs.FileInfoToDirEntry(w.info()))
	slices.SortFunc(es, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return es, nil
}

func (w withFile) info() fs.FileInfo {
	return memInfo{name: path.Base(w.name), size: int64(len(w.data)), mtime: w.mtime}
}

// memFile is withFile's file: it reads, seeks and reads at, as the
// files of a store's FS do.
type memFile struct {
	*bytes.Reader
	info fs.FileInfo
}

var _ io.ReaderAt = (*memFile)(nil)

func (f *memFile) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *memFile) Close() error               { return nil }

type memInfo struct {
	name  string
	size  int64
	mtime time.Time
}

func (i memInfo) Name() string       { return i.name }
func (i memInfo) Size() int64        { return i.size }
func (i memInfo) Mode() fs.FileMode  { return 0o444 }
func (i memInfo) ModTime() time.Time { return i.mtime }
func (i memInfo) IsDir() bool        { return false }
func (i memInfo) Sys() any           { return nil }
