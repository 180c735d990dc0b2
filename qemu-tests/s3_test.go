//go:build !race

package qemutests

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/store"
	"github.com/pibackup/pibackup/internal/testsrv"
)

// s3Source serves the sets from a real S3 server (versitygw). backupctl
// writes into a local folder, and the test uploads every file of it
// through the S3 store's Create, manifests last, as backupctl will write
// straight to a bucket (the engine's S3 protocol: a set is visible when
// its manifest is).
func s3Source() source {
	return source{name: "s3", prepare: func(t *testing.T, work string) (string, func() (string, []string, []Drive)) {
		dir := filepath.Join(work, "backups")
		os.Mkdir(dir, 0o755)
		return dir, func() (string, []string, []Drive) {
			s := testsrv.StartS3(t)
			uploadDir(t, s, dir, "sets")
			url := fmt.Sprintf("s3://%s@%s/sets?endpoint=http://10.0.2.2:%d", s.AccessKey, s.Bucket, s.Port)
			return url, []string{"password=" + s.SecretKey}, nil
		}
	}}
}

// uploadDir copies the files below dir into the bucket under prefix with
// store.S3, manifests last.
func uploadDir(t *testing.T, s *testsrv.S3, dir, prefix string) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, "s3://"+s.Bucket+"/"+prefix, store.Options{S3: store.S3Options{
		Endpoint: s.Endpoint, Region: s.Region, AccessKey: s.AccessKey, SecretKey: s.SecretKey, PathStyle: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var names []string
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		names = append(names, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	manifest := func(n string) bool { return strings.HasSuffix(path.Base(n), backupset.SuffixManifest) }
	slices.SortStableFunc(names, func(a, b string) int {
		switch {
		case manifest(a) && !manifest(b):
			return 1
		case !manifest(a) && manifest(b):
			return -1
		}
		return strings.Compare(a, b)
	})
	var total int64
	for _, n := range names {
		f, err := os.Open(filepath.Join(dir, filepath.FromSlash(n)))
		if err != nil {
			t.Fatal(err)
		}
		w, err := st.Create(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		k, err := io.Copy(w, f)
		f.Close()
		if err != nil {
			w.Abort()
			t.Fatalf("upload %s: %v", n, err)
		}
		if err := w.Close(); err != nil {
			t.Fatalf("upload %s: %v", n, err)
		}
		total += k
	}
	t.Logf("uploaded %d files, %d bytes, to s3://%s/%s", len(names), total, s.Bucket, prefix)
}

// TestRestoreS3 restores a tgz set from the S3 server unattended (the
// secret key from recovery.conf) and boots the restored disk.
func TestRestoreS3(t *testing.T) {
	a := requireArtifacts(t)
	restoreCase(t, a, s3Source(), "tgz")
}
