package source_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/pibackup/pibackup/internal/source"
	"github.com/pibackup/pibackup/internal/source/sourcetest"
	"github.com/pibackup/pibackup/internal/testsrv"
)

func s3Spec(s *testsrv.S3, prefix string) source.Spec {
	return source.Spec{Kind: source.KindS3, Host: s.Bucket, Path: prefix, Endpoint: s.Endpoint, Region: s.Region,
		User: s.AccessKey, Password: s.SecretKey}
}

// TestS3Conformance serves the fixture from a real S3 server: versitygw
// shows the files of its bucket folder as objects.
func TestS3Conformance(t *testing.T) {
	sourcetest.Run(t, func(t *testing.T, dir string) source.Source {
		s := testsrv.StartS3(t)
		bucket := filepath.Join(s.Dir, s.Bucket)
		if err := os.Remove(bucket); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(dir, filepath.Join(bucket)); err != nil {
			// dir may be on another filesystem than the server's folder.
			if err := os.CopyFS(bucket, os.DirFS(dir)); err != nil {
				t.Fatal(err)
			}
		}
		src, err := source.NewOpener(nil).Open(context.Background(), s3Spec(s, "."))
		if err != nil {
			t.Fatal(err)
		}
		return src
	})
}

func TestS3Errors(t *testing.T) {
	s := testsrv.StartS3(t)
	ctx := context.Background()
	bad := s3Spec(s, ".")
	bad.Password = "wrong"
	if _, err := source.OpenS3(ctx, bad); !errors.Is(err, source.ErrAuth) {
		t.Errorf("wrong secret key: %v; want ErrAuth", err)
	}
	bad = s3Spec(s, ".")
	bad.Host = "nobucket"
	if _, err := source.OpenS3(ctx, bad); !errors.Is(err, source.ErrNotFound) {
		t.Errorf("missing bucket: %v; want ErrNotFound", err)
	}
	bad = s3Spec(s, ".")
	bad.Endpoint = "http://127.0.0.1:1"
	if _, err := source.OpenS3(ctx, bad); !errors.Is(err, source.ErrUnreachable) {
		t.Errorf("nothing listening: %v; want ErrUnreachable", err)
	}
}
