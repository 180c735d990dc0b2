package source

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/pibackup/pibackup/internal/s3fs"
)

// S3 is a prefix in an S3 bucket, read with s3fs (ranged GETs, and one
// streaming GET for a payload read front to back).
type S3 struct {
	b    *s3fs.Bucket
	fsys fs.FS
	desc string
}

// OpenS3 checks the bucket and the keys and opens sp's prefix
// read-only. The context bounds opening and every later read.
func OpenS3(ctx context.Context, sp Spec) (*S3, error) {
	prefix := sp.Path
	if prefix == "." {
		prefix = ""
	}
	b, err := s3fs.Open(ctx, sp.Host, prefix, s3fs.Config{
		Endpoint: sp.Endpoint, Region: sp.Region, AccessKey: sp.User, SecretKey: sp.Password,
	})
	if err != nil {
		return nil, s3Error(err)
	}
	return &S3{b: b, fsys: b.FS(ctx), desc: sp.String()}, nil
}

// s3Error adds the sentinel the UI explains to s3fs's error.
func s3Error(err error) error {
	for _, m := range []struct{ from, to error }{
		{s3fs.ErrAuth, ErrAuth}, {s3fs.ErrUnreachable, ErrUnreachable}, {s3fs.ErrNoBucket, ErrNotFound},
	} {
		if errors.Is(err, m.from) {
			return fmt.Errorf("%w: %w", m.to, err)
		}
	}
	return err
}

// FS implements Source.
func (s *S3) FS() fs.FS { return s.fsys }

// LocalDir implements Source: objects are read over HTTP.
func (s *S3) LocalDir() string { return "" }

// Device implements Source.
func (s *S3) Device() string { return "" }

// String implements Source; the secret key is not part of it.
func (s *S3) String() string { return s.desc }

// Close implements Source: requests end with their context.
func (s *S3) Close() error { return nil }
