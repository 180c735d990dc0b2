// Package sourcetest is the conformance suite every source.Source
// implementation passes: the same backup folder is written to a local
// directory, served by the kind under test (a plain folder, a real
// OpenSSH sshd, a real Samba smbd, …), opened, and read back through the
// Source: testing/fstest.TestFS for io/fs semantics, backupset.List for
// the layout, byte-exact content of a multi-MiB file by streaming and by
// ReadAt, not-exist and invalid-path errors, LocalDir, and Close.
package sourcetest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"testing"
	"testing/fstest"
	"time"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/source"
)

// Open serves dir (already filled with the fixture) and opens it.
type Open func(t *testing.T, dir string) source.Source

// Fixture names.
const (
	Host      = "pi"
	BigSize   = 8<<20 + 12345 // not a multiple of any buffer size
	NewestSet = "pi@debian12-tgz-backup-20260302-030405"
	OlderSet  = "pi@debian12-dd-backup-20260101-000000"
	TmpSet    = "pi@debian12-tar-backup-20260303-000000"
)

// files is the fixture: path → content, with a payload of size bytes.
func files(size int) map[string][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	big := make([]byte, size)
	for i := range big {
		big[i] = byte(rng.Uint32())
	}
	return map[string][]byte{
		Host + "/" + NewestSet + "/" + NewestSet + ".tgz":           big,
		Host + "/" + NewestSet + "/" + Host + "-backup.sfdisk":      []byte("label: dos\n"),
		Host + "/" + NewestSet + "/" + backupset.ManifestName(Host): []byte(`{"format_version":1,"type":"tgz","files":[]}`),
		Host + "/" + OlderSet + "/" + OlderSet + ".img":             bytes.Repeat([]byte{1}, 4096),
		Host + "/" + backupset.TmpDir + "/" + TmpSet + "/" + "x":    []byte("partial"),
		Host + "/" + OlderSet + "/" + "raspiBackup.log":             []byte("log\n"),
		"README with spaces & ünïcödé.txt":                          []byte("names survive\n"),
		Host + "/" + NewestSet + "/empty":                           {},
	}
}

// Write writes the fixture into dir.
func Write(dir string) error { return write(dir, BigSize) }

func write(dir string, size int) error {
	for p, b := range files(size) {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// Run runs the suite; open is called once per subtest with a fresh
// fixture.
//
// fstest.TestFS reads every file with tiny reads (iotest.TestReader),
// thousands of round trips over a network source, so its fixture has a
// 1 kB payload; the other subtests use the BigSize one.
func Run(t *testing.T, open Open) {
	want := files(BigSize)
	setupSize := func(t *testing.T, size int) source.Source {
		t.Helper()
		dir := t.TempDir()
		if err := write(dir, size); err != nil {
			t.Fatal(err)
		}
		src := open(t, dir)
		t.Cleanup(func() { src.Close() })
		return src
	}
	setup := func(t *testing.T) source.Source { return setupSize(t, BigSize) }

	t.Run("TestFS", func(t *testing.T) {
		src := setupSize(t, 1000+3)
		var names []string
		for p := range want {
			names = append(names, p)
		}
		if err := fstest.TestFS(src.FS(), names...); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("List", func(t *testing.T) {
		src := setup(t)
		l, err := backupset.List(src.FS(), ".")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, s := range l.Sets {
			got = append(got, s.String())
		}
		if len(got) != 3 || got[0] != TmpSet || got[1] != NewestSet || got[2] != OlderSet {
			t.Fatalf("List() = %q; want [%s %s %s]", got, TmpSet, NewestSet, OlderSet)
		}
		if !l.Sets[0].InProgress || !l.Sets[1].HasManifest || l.Sets[2].HasManifest {
			t.Errorf("List() flags wrong: %+v", l.Sets)
		}
		if len(l.Sets[1].Payload) != 1 || l.Sets[1].Payload[0] != NewestSet+".tgz" {
			t.Errorf("payload = %q", l.Sets[1].Payload)
		}
	})

	t.Run("Content", func(t *testing.T) {
		src := setup(t)
		p := Host + "/" + NewestSet + "/" + NewestSet + ".tgz"
		wantSum := sha256.Sum256(want[p])
		f, err := src.FS().Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		start := time.Now()
		h := sha256.New()
		n, err := io.Copy(h, f)
		if err != nil || n != BigSize {
			t.Fatalf("io.Copy = %d, %v; want %d", n, err, BigSize)
		}
		if !bytes.Equal(h.Sum(nil), wantSum[:]) {
			t.Fatal("streamed content differs")
		}
		t.Logf("read %d bytes in %v (%.0f MB/s)", n, time.Since(start), float64(n)/time.Since(start).Seconds()/1e6)
		ra, ok := f.(io.ReaderAt)
		if !ok {
			t.Fatalf("%T does not implement io.ReaderAt", f)
		}
		for _, off := range []int64{0, 1, 65535, BigSize - 100} {
			buf := make([]byte, 100)
			if _, err := ra.ReadAt(buf, off); err != nil {
				t.Fatalf("ReadAt(%d): %v", off, err)
			}
			if !bytes.Equal(buf, want[p][off:off+100]) {
				t.Errorf("ReadAt(%d) differs", off)
			}
		}
		sub, err := fs.Sub(src.FS(), path.Dir(p))
		if err != nil {
			t.Fatal(err)
		}
		if b, err := fs.ReadFile(sub, backupset.ManifestName(Host)); err != nil || !bytes.Equal(b, want[path.Dir(p)+"/"+backupset.ManifestName(Host)]) {
			t.Errorf("fs.Sub(set).ReadFile(manifest) = %q, %v", b, err)
		}
	})

	t.Run("Errors", func(t *testing.T) {
		src := setup(t)
		if _, err := src.FS().Open("no/such/file"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Open(missing) = %v; want fs.ErrNotExist", err)
		}
		if _, err := fs.Stat(src.FS(), "nope"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Stat(missing) = %v; want fs.ErrNotExist", err)
		}
		if _, err := fs.ReadDir(src.FS(), "nope"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("ReadDir(missing) = %v; want fs.ErrNotExist", err)
		}
		for _, bad := range []string{"../etc/passwd", "/etc/passwd", "a/../b"} {
			if _, err := src.FS().Open(bad); err == nil {
				t.Errorf("Open(%q) succeeded", bad)
			}
		}
	})

	t.Run("LocalDir", func(t *testing.T) {
		src := setup(t)
		d := src.LocalDir()
		if d == "" {
			t.Skip("no local dir for this kind")
		}
		b, err := os.ReadFile(filepath.Join(d, "README with spaces & ünïcödé.txt"))
		if err != nil || string(b) != "names survive\n" {
			t.Errorf("LocalDir file = %q, %v", b, err)
		}
	})

	t.Run("Close", func(t *testing.T) {
		src := setup(t)
		if src.String() == "" {
			t.Error("String() is empty")
		}
		if err := src.Close(); err != nil {
			t.Fatalf("Close() = %v", err)
		}
		if err := src.Close(); err != nil {
			t.Errorf("second Close() = %v", err)
		}
	})
}
