package testsrv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// VersityGW is the S3 server the tests run: versitygw (Apache-2.0), a Go
// S3 gateway that serves a local folder, built from its module through
// the Go module proxy into the user cache on first use (2.5 min on a
// busy 2-core box, then reused).
const VersityGW = "github.com/versity/versitygw/cmd/versitygw@v1.8.0"

// S3 is a running versitygw serving an S3 API on 127.0.0.1 with one
// account and one bucket.
type S3 struct {
	Endpoint  string // http://127.0.0.1:PORT
	Port      int
	Region    string
	AccessKey string
	SecretKey string
	Bucket    string
	Dir       string // the folder behind it; the bucket is Dir/Bucket

	mu   sync.Mutex
	cmd  *exec.Cmd
	args []string
	log  string
}

// StartS3 starts versitygw's posix backend on a temp folder and makes
// the bucket "pibackup".
func StartS3(t testing.TB) *S3 {
	t.Helper()
	bin := VersityGWBinary(t)
	work := t.TempDir()
	s := &S3{
		Port: FreePort(t), Region: "us-east-1", Bucket: "pibackup",
		AccessKey: "PIBACKUPTESTKEY", SecretKey: "s3cret-Pi-test-secret",
		Dir: filepath.Join(work, "root"), log: filepath.Join(work, "versitygw.log"),
	}
	s.Endpoint = fmt.Sprintf("http://127.0.0.1:%d", s.Port)
	if err := os.Mkdir(s.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s.args = []string{bin, "--port", fmt.Sprintf("127.0.0.1:%d", s.Port), "--access", s.AccessKey,
		"--secret", s.SecretKey, "--region", s.Region, "posix", s.Dir}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			if b, err := os.ReadFile(s.log); err == nil && len(b) > 0 {
				t.Logf("versitygw.log:\n%s", tail(string(b), 4000))
			}
		}
	})
	c, err := minio.New(fmt.Sprintf("127.0.0.1:%d", s.Port), &minio.Options{
		Creds: credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""), Region: s.Region, BucketLookup: minio.BucketLookupPath,
	})
	if err == nil {
		err = c.MakeBucket(context.Background(), s.Bucket, minio.MakeBucketOptions{Region: s.Region})
	}
	if err != nil {
		t.Fatalf("make bucket %s: %v", s.Bucket, err)
	}
	return s
}

// Start (re)starts the server after Stop, on the same port and folder.
func (s *S3) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return nil
	}
	out, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	cmd := exec.Command(s.args[0], s.args[1:]...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start versitygw: %w", err)
	}
	s.cmd = cmd
	if err := waitPort(s.Port, 60*time.Second); err != nil {
		return fmt.Errorf("versitygw: %w", err)
	}
	return nil
}

// Stop kills the server (SIGKILL: as if the machine died) and waits for
// it to be gone. Safe to call more than once.
func (s *S3) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_, _ = s.cmd.Process.Wait()
	s.cmd = nil
}

// VersityGWBinary returns the versitygw binary, building it once per
// machine into the user cache (…/pibackup/testsrv/). The build needs the
// go command and the Go module proxy, nothing else; a failure fails the
// test, so CI cannot pass without the S3 tests.
func VersityGWBinary(t testing.TB) string {
	t.Helper()
	base, err := os.UserCacheDir()
	if err != nil {
		t.Fatalf("versitygw: no cache folder: %v", err)
	}
	dir := filepath.Join(base, "pibackup", "testsrv")
	bin := filepath.Join(dir, "versitygw-v1.8.0")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Test binaries of several packages may start at once: one builds,
	// the others wait for it.
	lock, err := os.OpenFile(filepath.Join(dir, "versitygw.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatalf("lock %s: %v", lock.Name(), err)
	}
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	gobin, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(gobin)
	cmd := exec.Command("go", "install", VersityGW)
	// Outside our module: versitygw's own go.mod and go.sum decide its
	// dependencies.
	cmd.Dir = gobin
	cmd.Env = append(os.Environ(), "GOBIN="+gobin, "GOWORK=off", "CGO_ENABLED=0", "GOOS=", "GOARCH=")
	t.Logf("building %s (once per machine)", VersityGW)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build versitygw for the S3 tests (needs go and the module proxy): %v\n%s", err, tail(string(out), 4000))
	}
	if err := os.Rename(filepath.Join(gobin, "versitygw"), bin); err != nil {
		t.Fatalf("versitygw: %v", err)
	}
	return bin
}
