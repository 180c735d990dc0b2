package source_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/source"
)

const webSet = "pi@debian12-tgz-backup-20260302-030405"

// webFixture writes a tgz set of host pi under dir/backups/pi and
// returns its payload.
func webFixture(t *testing.T, dir string, typ backupset.Type, repeat int) []byte {
	t.Helper()
	set := filepath.Join(dir, "backups", "pi", webSet)
	if err := os.MkdirAll(set, 0o755); err != nil {
		t.Fatal(err)
	}
	payload := bytes.Repeat([]byte("0123456789abcdef-"), repeat)
	m := &backupset.Manifest{FormatVersion: 1, Host: "pi", Type: typ}
	for name, b := range map[string][]byte{webSet + ".tgz": payload, "pi-backup.sfdisk": []byte("label: dos\n")} {
		if err := os.WriteFile(filepath.Join(set, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		m.Files = append(m.Files, backupset.File{Path: name, Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:])})
	}
	var mb bytes.Buffer
	if err := backupset.WriteManifest(&mb, m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(set, backupset.ManifestName("pi")), mb.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return payload
}

// countingHandler counts the GETs the server answers.
type countingHandler struct {
	h    http.Handler
	gets int
}

func (c *countingHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet {
		c.gets++
	}
	c.h.ServeHTTP(w, r)
}

// TestWeb serves a set folder over HTTPS with Go's file server, which has
// no listing the source could rely on beyond what any static server has:
// files and byte ranges.
func TestWeb(t *testing.T) {
	dir := t.TempDir()
	payload := webFixture(t, dir, backupset.TypeTGZ, 300_001)
	h := &countingHandler{h: http.FileServer(http.Dir(dir))}
	srv := httptest.NewTLSServer(h)
	defer srv.Close()
	o := source.NewOpener(nil)
	o.HTTP = srv.Client()
	ctx := context.Background()

	sp, err := source.ParseURL(srv.URL + "/backups/pi/" + webSet + "/")
	if err != nil {
		t.Fatal(err)
	}
	src, err := o.Open(ctx, sp)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	l, err := backupset.List(src.FS(), ".")
	if err != nil || len(l.Sets) != 1 || l.Sets[0].String() != webSet || !l.Sets[0].HasManifest {
		t.Fatalf("List: %+v %v", l, err)
	}
	p := "pi/" + webSet + "/" + webSet + ".tgz"
	f, err := src.FS().Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	before := h.gets
	var got bytes.Buffer
	if _, err := io.CopyBuffer(struct{ io.Writer }{&got}, struct{ io.Reader }{f}, make([]byte, 32<<10)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), payload) {
		t.Fatal("streamed payload differs")
	}
	if n := h.gets - before; n != 1 {
		t.Errorf("a sequential read made %d GETs; want 1", n)
	}
	b := make([]byte, 100)
	if _, err := f.(io.ReaderAt).ReadAt(b, 1_000_003); err != nil || !bytes.Equal(b, payload[1_000_003:1_000_103]) {
		t.Errorf("ReadAt: %v", err)
	}
}

// TestWebFS checks the io/fs semantics with fstest.TestFS, which reads
// every file a byte at a time: a small payload keeps that to seconds.
func TestWebFS(t *testing.T) {
	dir := t.TempDir()
	webFixture(t, dir, backupset.TypeTGZ, 60)
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer srv.Close()
	sp, err := source.ParseURL(srv.URL + "/backups/pi/" + webSet)
	if err != nil {
		t.Fatal(err)
	}
	src, err := source.OpenWeb(context.Background(), sp, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	set := "pi/" + webSet + "/"
	if err := fstest.TestFS(src.FS(), set+webSet+".tgz", set+"pi-backup.sfdisk", set+backupset.ManifestName("pi")); err != nil {
		t.Fatal(err)
	}
}

func TestWebErrors(t *testing.T) {
	dir := t.TempDir()
	webFixture(t, dir, backupset.TypeRsync, 1)
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer srv.Close()
	ctx := context.Background()
	open := func(p string) error {
		sp, err := source.ParseURL(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		_, err = source.OpenWeb(ctx, sp, nil)
		return err
	}
	if err := open("/backups/pi/" + webSet); !errors.Is(err, source.ErrUnsupported) || !strings.Contains(err.Error(), "sftp") {
		t.Errorf("rsync set: %v; want ErrUnsupported with advice", err)
	}
	if err := open("/backups/pi"); !errors.Is(err, source.ErrNotFound) || !strings.Contains(err.Error(), "set folder") {
		t.Errorf("host folder: %v; want ErrNotFound saying a set folder is needed", err)
	}
	if err := open("/backups/pi/pi@debian12-tgz-backup-20250101-000000"); !errors.Is(err, source.ErrNotFound) {
		t.Errorf("missing set: %v; want ErrNotFound", err)
	}
	if _, err := fs.Stat(os.DirFS(dir), "backups"); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	if err := open("/backups/pi/" + webSet); !errors.Is(err, source.ErrUnreachable) {
		t.Errorf("server gone: %v; want ErrUnreachable", err)
	}
}
