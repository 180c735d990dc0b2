package main

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/pibackup/pibackup/internal/tui/model"
)

// tarOf writes a tar of hs (data of Size zero bytes each) to w.
func tarOf(t testing.TB, w io.Writer, hs []*tar.Header) {
	t.Helper()
	tw := tar.NewWriter(w)
	for _, h := range hs {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			if _, err := tw.Write(make([]byte, h.Size)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestTarTreeListing: a tar's members become folders of entries as
// raspiBackup's archives hold them ("./etc/..."): folders the archive
// does not list are made up from their members, a hardlink shows its
// first name's size, a name held twice shows its last member, a name
// with members below it is a folder, and ".." cannot leave the root.
func TestTarTreeListing(t *testing.T) {
	var buf bytes.Buffer
	tarOf(t, &buf, []*tar.Header{
		{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "./etc/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "./etc/hostname", Typeflag: tar.TypeReg, Size: 3, Mode: 0o644},
		{Name: "./home/pi/notes.txt", Typeflag: tar.TypeReg, Size: 7, Mode: 0o644}, // no ./home/ nor ./home/pi/
		{Name: "./home/pi/same.txt", Typeflag: tar.TypeLink, Linkname: "./home/pi/notes.txt"},
		{Name: "./home/pi/etc-link", Typeflag: tar.TypeSymlink, Linkname: "/etc"},
		{Name: "./dev/null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3, Mode: 0o666},
		{Name: "./etc/hostname", Typeflag: tar.TypeReg, Size: 5, Mode: 0o644}, // appended again
		{Name: "./var", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644},
		{Name: "./var/log/x", Typeflag: tar.TypeReg, Size: 2, Mode: 0o644},
	})
	tr := &tarTree{log: slog.New(slog.DiscardHandler)}
	if err := tr.read(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	want := map[string][]model.FileEntry{
		"/":        {{Name: "dev", Dir: true}, {Name: "etc", Dir: true}, {Name: "home", Dir: true}, {Name: "var", Dir: true}},
		"/etc":     {{Name: "hostname", Size: 5}},
		"/home":    {{Name: "pi", Dir: true}},
		"/home/pi": {{Name: "etc-link", Symlink: true}, {Name: "notes.txt", Size: 7}, {Name: "same.txt", Size: 7}},
		"/dev":     {{Name: "null"}},
		"/var":     {{Name: "log", Dir: true}},
		"/../home": {{Name: "pi", Dir: true}},
	}
	for dir, w := range want {
		got, err := tr.ReadDir(dir)
		if err != nil {
			t.Errorf("%s: %v", dir, err)
			continue
		}
		if !slices.Equal(got, w) {
			t.Errorf("%s lists %+v, want %+v", dir, got, w)
		}
	}
	if _, err := tr.ReadDir("/etc/hostname"); err == nil {
		t.Error("a file listed as a folder")
	}
	if n := tr.bytes("/home"); n != 14 {
		t.Errorf("/home holds %d bytes, want 14", n)
	}
}

// TestTarListingCancel: a cancelled listing stops with the context's
// error instead of reading the archive through.
func TestTarListingCancel(t *testing.T) {
	var hs []*tar.Header
	for i := range 5000 {
		hs = append(hs, &tar.Header{Name: fmt.Sprintf("./f%d", i), Typeflag: tar.TypeReg, Mode: 0o644})
	}
	var buf bytes.Buffer
	tarOf(t, &buf, hs)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tr := &tarTree{}
	if err := tr.read(ctx, &buf); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled listing: %v, want context.Canceled", err)
	}
}

// TestTarListingMemory measures what the listing of a Pi root's 100k
// entries holds: 100 folders of 1,000 files with names as long as
// /usr/lib/python3/dist-packages' (Raspberry Pi OS's root has ~100k
// entries). It must stay well below what a 512 MB Pi can spare.
func TestTarListingMemory(t *testing.T) {
	const dirs, files = 100, 1000
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		for d := range dirs {
			dir := fmt.Sprintf("./usr/lib/python3/dist-packages/package_number_%03d/", d)
			tw.WriteHeader(&tar.Header{Name: dir, Typeflag: tar.TypeDir, Mode: 0o755})
			for f := range files {
				tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("%smodule_file_%04d.cpython-311.pyc", dir, f), Typeflag: tar.TypeReg, Mode: 0o644})
			}
		}
		pw.CloseWithError(tw.Close())
	}()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	tr := &tarTree{}
	if err := tr.read(context.Background(), pr); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	held := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("a listing of %d entries holds %.1f MB (%d bytes per entry)", dirs*files, float64(held)/(1<<20), held/(dirs*files))
	if es, _ := tr.ReadDir("/usr/lib/python3/dist-packages/package_number_042"); len(es) != files {
		t.Fatalf("listed %d files, want %d", len(es), files)
	}
	if held > 32<<20 {
		t.Errorf("the listing holds %d MB, want at most 32", held>>20)
	}
	runtime.KeepAlive(tr)
}

// TestUntarPlain: onto FAT, the marked members of a compressed tar are
// written with contents and times only; a hardlink gets its first
// name's data when that was written, and what FAT cannot hold
// (symlinks, device nodes, a hardlink whose data lies outside the
// marked paths) is left out and counted. Folders keep their times
// although files were written into them.
func TestUntarPlain(t *testing.T) {
	mt := time.Date(2024, 5, 6, 7, 8, 10, 0, time.UTC)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(h *tar.Header, data string) {
		h.ModTime, h.Size = mt, int64(len(data))
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(data))
	}
	add(&tar.Header{Name: "./etc/", Typeflag: tar.TypeDir, Mode: 0o755}, "")
	add(&tar.Header{Name: "./etc/hostname", Typeflag: tar.TypeReg}, "pi\n")
	add(&tar.Header{Name: "./home/pi/", Typeflag: tar.TypeDir, Mode: 0o755}, "")
	add(&tar.Header{Name: "./home/pi/a.txt", Typeflag: tar.TypeReg}, "hello")
	add(&tar.Header{Name: "./home/pi/b.txt", Typeflag: tar.TypeLink, Linkname: "./home/pi/a.txt"}, "")
	add(&tar.Header{Name: "./home/pi/host", Typeflag: tar.TypeLink, Linkname: "./etc/hostname"}, "")
	add(&tar.Header{Name: "./home/pi/link", Typeflag: tar.TypeSymlink, Linkname: "a.txt"}, "")
	add(&tar.Header{Name: "./home/pi/dev/null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3}, "")
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	dest := t.TempDir()
	res, err := untarPlain(context.Background(), &buf, []string{"home/pi"}, dest)
	if err != nil {
		t.Fatal(err)
	}
	if res.Bytes != 10 || res.Skipped != 3 {
		t.Errorf("copied %d bytes, skipped %d; want 10 and 3 (host, link, dev/null)", res.Bytes, res.Skipped)
	}
	for name, want := range map[string]string{"home/pi/a.txt": "hello", "home/pi/b.txt": "hello"} {
		b, err := os.ReadFile(filepath.Join(dest, name))
		if err != nil || string(b) != want {
			t.Errorf("%s: %q, %v; want %q", name, b, err, want)
		}
	}
	for _, name := range []string{"home/pi", "home/pi/a.txt", "home/pi/b.txt"} {
		fi, err := os.Stat(filepath.Join(dest, name))
		if err != nil || !fi.ModTime().Equal(mt) {
			t.Errorf("%s: mtime %v (%v), want %v", name, fi.ModTime(), err, mt)
		}
	}
	for _, name := range []string{"etc", "home/pi/host", "home/pi/link", "home/pi/dev"} {
		if _, err := os.Lstat(filepath.Join(dest, name)); !os.IsNotExist(err) {
			t.Errorf("%s written (%v), want left out", name, err)
		}
	}
	if _, err := untarPlain(context.Background(), bytes.NewReader(nil), []string{"nowhere"}, t.TempDir()); err == nil {
		t.Error("a path not in the archive: no error")
	}
}
