package s3fs_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"

	"github.com/pibackup/pibackup/internal/s3fs"
	"github.com/pibackup/pibackup/internal/testsrv"
)

// hook is an HTTP transport that lets a test act on the requests the
// client makes: count them, or stop the server in the middle of one.
type hook struct {
	base   http.RoundTripper
	mu     sync.Mutex
	counts map[string]int // "GET", "PUT part 2" ...
	on     func(what string, n int, req *http.Request)
}

func (h *hook) RoundTrip(req *http.Request) (*http.Response, error) {
	what := req.Method
	if p := req.URL.Query().Get("partNumber"); p != "" {
		what += " part " + p
	}
	h.mu.Lock()
	h.counts[what]++
	n := h.counts[what]
	h.mu.Unlock()
	if h.on != nil {
		h.on(what, n, req)
	}
	return h.base.RoundTrip(req)
}

func (h *hook) count(what string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.counts[what]
}

// afterBytes calls f once when n bytes of the body were read.
type afterBytes struct {
	io.ReadCloser
	n    int
	f    func()
	once sync.Once
}

func (a *afterBytes) Read(p []byte) (int, error) {
	if a.n <= 0 {
		a.once.Do(a.f)
	}
	if len(p) > a.n && a.n > 0 {
		p = p[:a.n]
	}
	k, err := a.ReadCloser.Read(p)
	a.n -= k
	return k, err
}

func open(t *testing.T, srv *testsrv.S3, h *hook) *s3fs.Bucket {
	t.Helper()
	h.base, h.counts = http.DefaultTransport.(*http.Transport).Clone(), map[string]int{}
	b, err := s3fs.Open(context.Background(), srv.Bucket, "pfx", s3fs.Config{
		Endpoint: srv.Endpoint, Region: srv.Region, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey,
		PathStyle: true, Transport: h,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func random(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// TestServerStoppedMidPart: the server dies while a part is on the
// wire. Close fails, no object is visible, and the next run finds the
// unfinished upload and aborts it.
func TestServerStoppedMidPart(t *testing.T) {
	srv := testsrv.StartS3(t)
	h := &hook{}
	b := open(t, srv, h)
	h.on = func(what string, n int, req *http.Request) {
		if what == "PUT part 2" && n == 1 {
			req.Body = &afterBytes{ReadCloser: req.Body, n: 1 << 20, f: srv.Stop}
		}
	}
	ctx := context.Background()
	u, err := b.Create(ctx, "host/set/payload.tgz")
	if err != nil {
		t.Fatal(err)
	}
	_, werr := u.Write(random(3*s3fs.PartSize + 5))
	cerr := u.Close()
	if cerr == nil {
		t.Fatalf("Close succeeded with the server gone (Write: %v)", werr)
	}
	if !errors.Is(cerr, s3fs.ErrUnreachable) {
		t.Errorf("Close: %v; want ErrUnreachable", cerr)
	}
	t.Logf("Write: %v; Close: %v", werr, cerr)

	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	h.on = nil
	if _, err := fs.Stat(b.FS(ctx), "host/set/payload.tgz"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("after a failed upload Stat says %v; want fs.ErrNotExist", err)
	}
	if es, err := fs.ReadDir(b.FS(ctx), "."); err != nil || len(es) != 0 {
		t.Fatalf("after a failed upload the prefix lists %v (%v)", es, err)
	}
	n, err := b.AbortUploads(ctx, "host")
	if err != nil || n != 1 {
		t.Fatalf("AbortUploads: %d, %v; want the one upload the dead server kept", n, err)
	}
	// The next run writes the same object.
	u, err = b.Create(ctx, "host/set/payload.tgz")
	if err != nil {
		t.Fatal(err)
	}
	u.Write(random(s3fs.PartSize + 1))
	if err := u.Close(); err != nil {
		t.Fatalf("the next run: %v", err)
	}
}

// TestPartRetried: a part that fails because the server restarted is
// sent again and the upload completes with the right bytes.
func TestPartRetried(t *testing.T) {
	srv := testsrv.StartS3(t)
	h := &hook{}
	b := open(t, srv, h)
	h.on = func(what string, n int, req *http.Request) {
		switch {
		case what == "PUT part 1" && n == 1:
			req.Body = &afterBytes{ReadCloser: req.Body, n: 1 << 20, f: srv.Stop}
		case what == "PUT part 1" && n == 2:
			if err := srv.Start(); err != nil {
				t.Error(err)
			}
		}
	}
	ctx := context.Background()
	data := random(2*s3fs.PartSize + 77)
	u, err := b.Create(ctx, "retried")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
	if h.count("PUT part 1") < 2 {
		t.Fatalf("part 1 sent %d times; the hook did not fire", h.count("PUT part 1"))
	}
	got, err := fs.ReadFile(b.FS(ctx), "retried")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes (%v), not what was written", len(got), err)
	}
}

// TestSequentialReadStreams: reading a payload front to back in small
// buffers is one GET, not one per buffer.
func TestSequentialReadStreams(t *testing.T) {
	srv := testsrv.StartS3(t)
	h := &hook{}
	b := open(t, srv, h)
	ctx := context.Background()
	data := random(5<<20 + 3)
	u, _ := b.Create(ctx, "seq")
	u.Write(data)
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := b.FS(ctx).Open("seq")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	before := h.count("GET")
	var got bytes.Buffer
	if _, err := io.CopyBuffer(struct{ io.Writer }{&got}, struct{ io.Reader }{f}, make([]byte, 32<<10)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), data) {
		t.Fatal("sequential read: wrong bytes")
	}
	if n := h.count("GET") - before; n != 1 {
		t.Fatalf("a sequential read of %d bytes made %d GETs; want 1", len(data), n)
	}
	// A seek drops the stream; reading on starts one GET at the offset.
	s := f.(io.Seeker)
	if _, err := s.Seek(4<<20, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(f)
	if err != nil || !bytes.Equal(rest, data[4<<20:]) {
		t.Fatalf("read after seek: %d bytes, %v", len(rest), err)
	}
}
