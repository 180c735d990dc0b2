package s3fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
)

// FS is the folder read-only. It implements fs.ReadDirFS and fs.StatFS;
// its files implement io.ReaderAt and io.Seeker. ctx bounds every
// request it makes.
func (b *Bucket) FS(ctx context.Context) fs.FS { return &bucketFS{b: b, ctx: ctx} }

type bucketFS struct {
	b   *Bucket
	ctx context.Context
}

var (
	_ fs.ReadDirFS = (*bucketFS)(nil)
	_ fs.StatFS    = (*bucketFS)(nil)
)

func (f *bucketFS) Stat(name string) (fs.FileInfo, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrInvalid}
	}
	if name == "." {
		return dirInfo("."), nil
	}
	oi, err := f.b.core.StatObject(f.ctx, f.b.bucket, f.b.key(name), minio.StatObjectOptions{})
	if err == nil {
		return fileInfo{name: path.Base(name), size: oi.Size, mtime: oi.LastModified.Truncate(time.Second)}, nil
	}
	if err = f.b.wrap("stat", name, err); !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	// No object: a folder if anything lies below it.
	res, lerr := f.b.core.ListObjectsV2(f.b.bucket, f.b.key(name)+"/", "", "", "/", 1)
	if lerr != nil {
		return nil, f.b.wrap("stat", name, lerr)
	}
	if len(res.Contents) == 0 && len(res.CommonPrefixes) == 0 {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
	}
	return dirInfo(path.Base(name)), nil
}

func (f *bucketFS) ReadDir(name string) ([]fs.DirEntry, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrInvalid}
	}
	prefix := f.b.key(name)
	if name != "." {
		prefix += "/"
	}
	var es []fs.DirEntry
	token := ""
	for {
		res, err := f.b.core.ListObjectsV2(f.b.bucket, prefix, "", token, "/", 1000)
		if err != nil {
			return nil, f.b.wrap("readdir", name, err)
		}
		for _, p := range res.CommonPrefixes {
			if n := strings.TrimSuffix(strings.TrimPrefix(p.Prefix, prefix), "/"); n != "" {
				es = append(es, fs.FileInfoToDirEntry(dirInfo(n)))
			}
		}
		for _, o := range res.Contents {
			// A key ending in "/" is a folder marker some tools make.
			if n := strings.TrimPrefix(o.Key, prefix); n != "" && !strings.HasSuffix(n, "/") {
				// HEAD says Last-Modified to the second, a listing
				// to the millisecond: Stat and ReadDir must agree.
				es = append(es, fs.FileInfoToDirEntry(fileInfo{name: n, size: o.Size, mtime: o.LastModified.Truncate(time.Second)}))
			}
		}
		if !res.IsTruncated || res.NextContinuationToken == "" {
			break
		}
		token = res.NextContinuationToken
	}
	if len(es) == 0 && name != "." {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrNotExist}
	}
	slices.SortFunc(es, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return es, nil
}

func (f *bucketFS) Open(name string) (fs.File, error) {
	fi, err := f.Stat(name)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: unwrapPath(err)}
	}
	if fi.IsDir() {
		return &dirFile{fsys: f, name: name, info: fi}, nil
	}
	return &object{fsys: f, name: name, info: fi.(fileInfo)}, nil
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// object is an open file. Read streams one GET from the offset on (a
// restore reads a payload front to back: one request, not one per
// buffer); ReadAt makes a ranged GET per call; Seek drops the stream.
type object struct {
	fsys   *bucketFS
	name   string
	info   fileInfo
	off    int64
	stream io.ReadCloser
}

func (o *object) Stat() (fs.FileInfo, error) { return o.info, nil }

// get GETs bytes start..end (inclusive); end -1 is to the end.
func (o *object) get(start, end int64) (io.ReadCloser, error) {
	var opts minio.GetObjectOptions
	var err error
	switch {
	case end >= 0:
		err = opts.SetRange(start, end)
	case start > 0:
		err = opts.SetRange(start, 0) // minio-go: "bytes=start-"
	}
	if err != nil {
		return nil, err
	}
	rc, _, _, err := o.fsys.b.core.GetObject(o.fsys.ctx, o.fsys.b.bucket, o.fsys.b.key(o.name), opts)
	if err != nil {
		return nil, o.fsys.b.wrap("read", o.name, err)
	}
	return rc, nil
}

func (o *object) Read(p []byte) (int, error) {
	if o.off >= o.info.size {
		return 0, io.EOF
	}
	if o.stream == nil {
		rc, err := o.get(o.off, -1)
		if err != nil {
			return 0, err
		}
		o.stream = rc
	}
	n, err := o.stream.Read(p)
	o.off += int64(n)
	if err == io.EOF && o.off < o.info.size {
		err = fmt.Errorf("read %s/%s: the object ended at %d of %d bytes: %w", o.fsys.b.desc, o.name, o.off, o.info.size, io.ErrUnexpectedEOF)
	} else if err != nil && err != io.EOF {
		err = o.fsys.b.wrap("read", o.name, err)
	}
	return n, err
}

func (o *object) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, &fs.PathError{Op: "readat", Path: o.name, Err: fs.ErrInvalid}
	}
	if off >= o.info.size {
		return 0, io.EOF
	}
	want := min(int64(len(p)), o.info.size-off)
	if want == 0 {
		return 0, nil
	}
	rc, err := o.get(off, off+want-1)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	n, err := io.ReadFull(rc, p[:want])
	if err != nil {
		return n, o.fsys.b.wrap("read", o.name, err)
	}
	if want < int64(len(p)) {
		return n, io.EOF
	}
	return n, nil
}

func (o *object) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		offset += o.off
	case io.SeekEnd:
		offset += o.info.size
	}
	if offset < 0 {
		return 0, &fs.PathError{Op: "seek", Path: o.name, Err: fs.ErrInvalid}
	}
	if offset != o.off && o.stream != nil {
		o.stream.Close()
		o.stream = nil
	}
	o.off = offset
	return offset, nil
}

func (o *object) Close() error {
	if o.stream != nil {
		o.stream.Close()
		o.stream = nil
	}
	return nil
}

type dirFile struct {
	fsys    *bucketFS
	name    string
	info    fs.FileInfo
	entries []fs.DirEntry
	read    bool
}

func (d *dirFile) Stat() (fs.FileInfo, error) { return d.info, nil }
func (d *dirFile) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.name, Err: errors.New("is a directory")}
}
func (d *dirFile) Close() error { return nil }

func (d *dirFile) ReadDir(n int) ([]fs.DirEntry, error) {
	if !d.read {
		es, err := d.fsys.ReadDir(d.name)
		if err != nil {
			return nil, err
		}
		d.entries, d.read = es, true
	}
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

type fileInfo struct {
	name  string
	size  int64
	mtime time.Time
}

func (i fileInfo) Name() string       { return i.name }
func (i fileInfo) Size() int64        { return i.size }
func (i fileInfo) Mode() fs.FileMode  { return 0o444 }
func (i fileInfo) ModTime() time.Time { return i.mtime }
func (i fileInfo) IsDir() bool        { return false }
func (i fileInfo) Sys() any           { return nil }

type dirInfo string

func (i dirInfo) Name() string       { return string(i) }
func (i dirInfo) Size() int64        { return 0 }
func (i dirInfo) Mode() fs.FileMode  { return fs.ModeDir | 0o555 }
func (i dirInfo) ModTime() time.Time { return time.Time{} }
func (i dirInfo) IsDir() bool        { return true }
func (i dirInfo) Sys() any           { return nil }
