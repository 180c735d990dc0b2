package s3fs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
)

// Upload sizes. A part is buffered in memory while it is sent, and a Pi
// Zero 2 W has 512 MB: PartSize × (InFlight+1) is what an upload holds
// (32 MiB). S3 allows 10,000 parts: after 5,000 parts of 8 MiB (39 GiB)
// parts are 16 MiB, so an object can reach 117 GiB.
const (
	PartSize = 8 << 20
	InFlight = 3
	// partTries is how often a part is sent before the upload fails.
	partTries = 4
)

// Create starts writing the object name. It fails with fs.ErrExist when
// the object is there: a HEAD first, so a long upload does not start
// for nothing, and If-None-Match: * on the final PUT or on completing
// the multipart upload, which servers that support conditional writes
// (AWS, MinIO, versitygw) honour, so a race is caught too. Nothing is
// visible until Close returns nil.
func (b *Bucket) Create(ctx context.Context, name string) (*Upload, error) {
	if !fs.ValidPath(name) || name == "." {
		return nil, &fs.PathError{Op: "create", Path: name, Err: fs.ErrInvalid}
	}
	_, err := b.core.StatObject(ctx, b.bucket, b.key(name), minio.StatObjectOptions{})
	if err == nil {
		return nil, &fs.PathError{Op: "create", Path: b.desc + "/" + name, Err: fs.ErrExist}
	}
	if err = b.wrap("create", name, err); !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	u := &Upload{b: b, name: name, ctx: ctx, cancel: cancel, sem: make(chan struct{}, InFlight)}
	u.buf = u.getBuf()
	return u, nil
}

// Upload is an object being written: a plain PUT when it fits in one
// part, else a multipart upload whose parts are sent InFlight at a time
// while the next one fills, each retried.
type Upload struct {
	b      *Bucket
	name   string
	ctx    context.Context
	cancel context.CancelFunc
	buf    []byte
	size   int64

	uploadID string
	sem      chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	parts    []minio.CompletePart
	err      error // the first failure; later calls return it
	pool     [][]byte
	done     bool
}

func (u *Upload) getBuf() []byte {
	u.mu.Lock()
	defer u.mu.Unlock()
	if n := len(u.pool); n > 0 {
		b := u.pool[n-1]
		u.pool = u.pool[:n-1]
		return b[:0]
	}
	return make([]byte, 0, PartSize)
}

func (u *Upload) fail(err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.err == nil {
		u.err = err
		u.cancel() // stop the other parts
	}
}

func (u *Upload) failed() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.err
}

// Write buffers p and sends every full part.
func (u *Upload) Write(p []byte) (int, error) {
	if u.done {
		return 0, fmt.Errorf("write %s/%s: upload already closed", u.b.desc, u.name)
	}
	written := 0
	for len(p) > 0 {
		if err := u.failed(); err != nil {
			return written, err
		}
		limit := PartSize
		if len(u.parts) >= 5000 {
			limit = 2 * PartSize
		}
		n := min(len(p), limit-len(u.buf))
		u.buf = append(u.buf, p[:n]...)
		p, written, u.size = p[n:], written+n, u.size+int64(n)
		if len(u.buf) == limit {
			if err := u.sendPart(); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

// sendPart hands the full buffer to a goroutine, waiting while InFlight
// parts are on their way.
func (u *Upload) sendPart() error {
	if u.uploadID == "" {
		id, err := u.b.core.NewMultipartUpload(u.ctx, u.b.bucket, u.b.key(u.name), minio.PutObjectOptions{})
		if err != nil {
			u.fail(u.b.wrap("start upload of", u.name, err))
			return u.failed()
		}
		u.uploadID = id
	}
	select {
	case u.sem <- struct{}{}:
	case <-u.ctx.Done():
		if err := u.failed(); err != nil {
			return err
		}
		return u.ctx.Err()
	}
	u.mu.Lock()
	num := len(u.parts) + 1
	u.parts = append(u.parts, minio.CompletePart{PartNumber: num})
	u.mu.Unlock()
	buf := u.buf
	u.buf = u.getBuf()
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		defer func() { <-u.sem }()
		etag, err := u.putPart(num, buf)
		u.mu.Lock()
		u.pool = append(u.pool, buf)
		u.parts[num-1].ETag = etag
		u.mu.Unlock()
		if err != nil {
			u.fail(err)
		}
	}()
	return nil
}

// putPart sends one part, retrying: a dropped connection or a server
// restarting should not lose a multi-gigabyte upload.
func (u *Upload) putPart(num int, buf []byte) (string, error) {
	var err error
	for try := 1; try <= partTries; try++ {
		var p minio.ObjectPart
		p, err = u.b.core.PutObjectPart(u.ctx, u.b.bucket, u.b.key(u.name), u.uploadID, num,
			bytes.NewReader(buf), int64(len(buf)), minio.PutObjectPartOptions{})
		if err == nil {
			return p.ETag, nil
		}
		if u.ctx.Err() != nil || errors.Is(u.b.wrap("", "", err), ErrAuth) {
			break
		}
		u.b.log.Warn("s3 part failed, retrying", "object", u.b.desc+"/"+u.name, "part", num, "try", try, "err", err)
		select {
		case <-time.After(time.Duration(try) * time.Second):
		case <-u.ctx.Done():
		}
	}
	return "", u.b.wrap(fmt.Sprintf("upload part %d of", num), u.name, err)
}

// Close sends what is left and completes the object; on any failure the
// multipart upload is aborted, so no part is left behind.
func (u *Upload) Close() error {
	if u.done {
		return u.failed()
	}
	u.done = true
	defer u.cancel()
	key := u.b.key(u.name)
	var cond minio.PutObjectOptions
	cond.SetMatchETagExcept("*")
	if u.uploadID == "" {
		_, err := u.b.core.PutObject(u.ctx, u.b.bucket, key, bytes.NewReader(u.buf), int64(len(u.buf)), "", "", cond)
		if err != nil {
			u.fail(u.b.wrap("upload", u.name, err))
		}
		return u.failed()
	}
	if len(u.buf) > 0 {
		if err := u.sendPart(); err != nil {
			u.abort()
			return err
		}
	}
	u.wg.Wait()
	if err := u.failed(); err != nil {
		u.abort()
		return err
	}
	parts := slices.Clone(u.parts)
	if _, err := u.b.core.CompleteMultipartUpload(u.ctx, u.b.bucket, key, u.uploadID, parts, cond); err != nil {
		u.fail(u.b.wrap("complete upload of", u.name, err))
		u.abort()
		return u.failed()
	}
	return nil
}

// Abort discards the upload. It is safe after Close failed.
func (u *Upload) Abort() error {
	u.done = true
	u.fail(fmt.Errorf("upload %s/%s: %w", u.b.desc, u.name, errAborted))
	return u.abort()
}

var errAborted = errors.New("aborted")

func (u *Upload) abort() error {
	u.cancel()
	u.wg.Wait()
	if u.uploadID == "" {
		return nil
	}
	id := u.uploadID
	u.uploadID = ""
	// The upload's context is cancelled: abort with a fresh one, bounded
	// so a dead server does not hang the caller.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(u.ctx), 30*time.Second)
	defer cancel()
	if err := u.b.core.AbortMultipartUpload(ctx, u.b.bucket, u.b.key(u.name), id); err != nil {
		if err = u.b.wrap("abort upload of", u.name, err); errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	return nil
}

// Size is the number of bytes written so far.
func (u *Upload) Size() int64 { return u.size }
