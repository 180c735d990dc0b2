package store

import (
	"context"
	"fmt"
	"io/fs"
	"net/url"
	"os"

	"github.com/pibackup/pibackup/internal/s3fs"
)

// S3 is a prefix in an S3 bucket. It cannot rename: the engine writes a
// set in place and its manifest last (see the package comment).
type S3 struct {
	b   *s3fs.Bucket
	ctx context.Context
}

var _ Store = (*S3)(nil)

// openS3 opens s3://bucket/prefix. Empty fields of o.S3 fall back to the
// AWS variables.
func openS3(ctx context.Context, u *url.URL, o Options) (Store, error) {
	s, err := OpenS3(ctx, u, o.S3, o)
	if err != nil {
		return nil, err // not a nil *S3 in a non-nil Store
	}
	return s, nil
}

// OpenS3 is openS3 returning the *S3, for callers that need
// AbortStaleUploads.
func OpenS3(ctx context.Context, u *url.URL, so S3Options, o Options) (*S3, error) {
	bucket, prefix, err := s3fs.ParseURL(u)
	if err != nil {
		return nil, fmt.Errorf("backup folder %w", err)
	}
	cfg := s3fs.Config{
		Endpoint: so.Endpoint, Region: so.Region, AccessKey: so.AccessKey, SecretKey: so.SecretKey,
		PathStyle: so.PathStyle, Log: o.Log,
	}.FromEnv(os.Getenv)
	b, err := s3fs.Open(ctx, bucket, prefix, cfg)
	if err != nil {
		return nil, fmt.Errorf("backup folder: %w", err)
	}
	// The store lives for a run; its reads are bounded by Close's caller.
	return &S3{b: b, ctx: context.WithoutCancel(ctx)}, nil
}

// FS implements Store: ReadDir lists with delimiter "/", Stat is a HEAD
// (a folder is a prefix with objects below it), files read with ranged
// GETs or one streaming GET.
func (s *S3) FS() fs.FS { return s.b.FS(s.ctx) }

// Create implements Store (see s3fs.Bucket.Create: multipart upload,
// exclusive by a HEAD check and If-None-Match).
func (s *S3) Create(ctx context.Context, name string) (File, error) {
	if err := checkName("create", name); err != nil {
		return nil, err
	}
	return s.b.Create(ctx, name)
}

// MkdirAll implements Store: S3 has no folders.
func (s *S3) MkdirAll(_ context.Context, name string) error { return checkName("mkdir", name) }

// CanRename implements Store.
func (s *S3) CanRename() bool { return false }

// Rename implements Store.
func (s *S3) Rename(context.Context, string, string) error { return ErrNoRename }

// RemoveAll implements Store: it deletes every object under name and
// aborts the unfinished uploads there.
func (s *S3) RemoveAll(ctx context.Context, name string) error {
	if err := checkName("remove", name); err != nil {
		return err
	}
	return s.b.RemoveAll(ctx, name)
}

// AbortStaleUploads aborts every unfinished multipart upload under name
// (a folder, "." for the whole prefix) — what an interrupted run left —
// and returns how many it aborted. Only call it while no upload of this
// host runs (the engine holds its host lock).
func (s *S3) AbortStaleUploads(ctx context.Context, name string) (int, error) {
	return s.b.AbortUploads(ctx, name)
}

// Local implements Store.
func (s *S3) Local() string { return "" }

// String implements Store.
func (s *S3) String() string { return s.b.String() }

// Close implements Store.
func (s *S3) Close() error { return nil }
