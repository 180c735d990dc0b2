package s3fs

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/pibackup/pibackup/internal/remotefile"
)

// FS is the folder read-only. It implements fs.ReadDirFS and fs.StatFS;
// its files implement io.ReaderAt and io.Seeker (remotefile.File: one
// streaming GET for a sequential read, a ranged GET per ReadAt). ctx
// bounds every request it makes.
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
		return remotefile.Info{Base: ".", Dir: true}, nil
	}
	oi, err := f.b.core.StatObject(f.ctx, f.b.bucket, f.b.key(name), minio.StatObjectOptions{})
	if err == nil {
		return remotefile.Info{Base: path.Base(name), Bytes: oi.Size, MTime: oi.LastModified.Truncate(time.Second)}, nil
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
	return remotefile.Info{Base: path.Base(name), Dir: true}, nil
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
				es = append(es, fs.FileInfoToDirEntry(remotefile.Info{Base: n, Dir: true}))
			}
		}
		for _, o := range res.Contents {
			// A key ending in "/" is a folder marker some tools make.
			if n := strings.TrimPrefix(o.Key, prefix); n != "" && !strings.HasSuffix(n, "/") {
				// HEAD says Last-Modified to the second, a listing
				// to the millisecond: Stat and ReadDir must agree.
				es = append(es, fs.FileInfoToDirEntry(remotefile.Info{Base: n, Bytes: o.Size, MTime: o.LastModified.Truncate(time.Second)}))
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
		es, err := f.ReadDir(name)
		if err != nil {
			return nil, err
		}
		return remotefile.NewDir(fi, es), nil
	}
	key := f.b.key(name)
	get := func(start, end int64) (io.ReadCloser, error) {
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
		rc, _, _, err := f.b.core.GetObject(f.ctx, f.b.bucket, key, opts)
		if err != nil {
			return nil, f.b.wrap("read", name, err)
		}
		return rc, nil
	}
	return remotefile.New(fi, get, func(err error) error { return f.b.wrap("read", name, err) }), nil
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
