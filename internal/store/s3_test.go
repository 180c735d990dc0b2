package store_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/pibackup/pibackup/internal/s3fs"
	"github.com/pibackup/pibackup/internal/store"
	"github.com/pibackup/pibackup/internal/store/storetest"
	"github.com/pibackup/pibackup/internal/testsrv"
)

func s3Options(s *testsrv.S3) store.Options {
	return store.Options{S3: store.S3Options{
		Endpoint: s.Endpoint, Region: s.Region, AccessKey: s.AccessKey, SecretKey: s.SecretKey, PathStyle: true,
	}}
}

// TestS3 runs the conformance suite against a real S3 server.
func TestS3(t *testing.T) {
	srv := testsrv.StartS3(t)
	st, err := store.Open(context.Background(), "s3://"+srv.Bucket+"/backups", s3Options(srv))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if st.Local() != "" || st.CanRename() {
		t.Fatalf("an S3 store: Local %q CanRename %v", st.Local(), st.CanRename())
	}
	if st.String() != "s3://pibackup/backups" {
		t.Errorf("String %q", st.String())
	}
	storetest.Run(t, st)
}

// TestS3Env takes the endpoint and keys from the AWS variables when the
// settings leave them empty.
func TestS3Env(t *testing.T) {
	srv := testsrv.StartS3(t)
	t.Setenv("AWS_ENDPOINT_URL_S3", srv.Endpoint)
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	t.Setenv("AWS_REGION", srv.Region)
	st, err := store.Open(context.Background(), "s3://"+srv.Bucket, store.Options{S3: store.S3Options{PathStyle: true}})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
}

// TestS3Errors: wrong keys, a missing bucket and a bad URL each say
// what is wrong.
func TestS3Errors(t *testing.T) {
	srv := testsrv.StartS3(t)
	ctx := context.Background()
	for _, k := range []string{"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
		t.Setenv(k, "")
	}

	o := s3Options(srv)
	o.S3.SecretKey = "not-the-secret"
	_, err := store.Open(ctx, "s3://"+srv.Bucket+"/x", o)
	if !errors.Is(err, s3fs.ErrAuth) || strings.Contains(err.Error(), "not-the-secret") {
		t.Errorf("wrong secret: %v; want ErrAuth without the secret", err)
	}
	o = s3Options(srv)
	o.S3.AccessKey = "NOSUCHKEY"
	if _, err := store.Open(ctx, "s3://"+srv.Bucket+"/x", o); !errors.Is(err, s3fs.ErrAuth) {
		t.Errorf("unknown access key: %v; want ErrAuth", err)
	}
	o.S3.AccessKey, o.S3.SecretKey = "", ""
	if _, err := store.Open(ctx, "s3://"+srv.Bucket+"/x", o); !errors.Is(err, s3fs.ErrAuth) || !strings.Contains(err.Error(), "s3-access-key") {
		t.Errorf("no keys: %v; want ErrAuth naming the setting", err)
	}
	if _, err := store.Open(ctx, "s3://no-such-bucket/x", s3Options(srv)); !errors.Is(err, s3fs.ErrNoBucket) {
		t.Errorf("missing bucket: %v; want ErrNoBucket", err)
	}
	o = s3Options(srv)
	o.S3.Endpoint = "http://127.0.0.1:1"
	if _, err := store.Open(ctx, "s3://"+srv.Bucket, o); !errors.Is(err, s3fs.ErrUnreachable) {
		t.Errorf("nothing listening: %v; want ErrUnreachable", err)
	}
	for _, bad := range []string{"s3://key:secret@" + srv.Bucket + "/x", "s3://" + srv.Bucket + "/a/../b", "s3:///x"} {
		if _, err := store.Open(ctx, bad, s3Options(srv)); err == nil || strings.Contains(err.Error(), "secret@") {
			t.Errorf("Open(%q): %v", bad, err)
		}
	}
}

// TestS3AbortStaleUploads: what an interrupted run left is found and
// aborted under the host folder, and only there.
func TestS3AbortStaleUploads(t *testing.T) {
	srv := testsrv.StartS3(t)
	ctx := context.Background()
	u, _ := url.Parse("s3://" + srv.Bucket + "/b")
	st, err := store.OpenS3(ctx, u, s3Options(srv).S3, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// An interrupted run: two parts sent, never completed nor aborted.
	f, err := st.Create(ctx, "host/set/payload.tgz")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(make([]byte, 2*s3fs.PartSize+1)); err != nil {
		t.Fatal(err)
	}
	other, _ := st.Create(ctx, "otherhost/set/payload.tgz")
	other.Write(make([]byte, s3fs.PartSize))
	n, err := st.AbortStaleUploads(ctx, "host")
	if err != nil || n != 1 {
		t.Fatalf("AbortStaleUploads: %d %v, want 1 (otherhost's is not under host)", n, err)
	}
	if n, err := st.AbortStaleUploads(ctx, "host"); err != nil || n != 0 {
		t.Fatalf("second AbortStaleUploads: %d %v, want 0", n, err)
	}
	if err := st.RemoveAll(ctx, "otherhost"); err != nil {
		t.Fatal(err)
	}
	if n, err := st.AbortStaleUploads(ctx, "."); err != nil || n != 0 {
		t.Fatalf("RemoveAll left %d uploads (%v)", n, err)
	}
}
