package setfs

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/compress"
	"github.com/pibackup/pibackup/internal/testfs"
)

// TestTgzReadFromEnd: once a tgz set is indexed, reading the last file
// of the archive through the mount reads a few MiB (the cache key's
// head and tail of the payload, the index, the file), not the archive:
// the bytes this process reads are counted (/proc/self/io rchar, which
// the FUSE server's reads are part of), not timed. The times are logged
// as the figures the issue asks for: a full read of the archive against
// a mount and a read of its last file.
//
// The archive holds random text of 16 letters (4 bits a byte: gzip has
// real work), 64 MiB by default to keep the suite quick;
// PIBACKUP_TEST_TGZ_MB=360 makes the tgz of about 200 MiB the issue's
// figure was measured with.
func TestTgzReadFromEnd(t *testing.T) {
	testfs.Require(t, "fuse")
	mb := 64
	if s := os.Getenv("PIBACKUP_TEST_TGZ_MB"); s != "" {
		var err error
		if mb, err = strconv.Atoi(s); err != nil || mb < 8 {
			t.Fatalf("PIBACKUP_TEST_TGZ_MB=%q: want a number of MiB, 8 or more", s)
		}
	}
	set := filepath.Join(t.TempDir(), "bigpi@debian12-tgz-backup-20261204-010000")
	if err := os.Mkdir(set, 0o755); err != nil {
		t.Fatal(err)
	}
	payload := filepath.Join(set, filepath.Base(set)+".tgz")
	last := writeTgz(t, payload, mb)
	fi, err := os.Stat(payload)
	if err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	zr, err := compress.OpenFile(payload)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, zr); err != nil {
		t.Fatal(err)
	}
	zr.Close()
	full := time.Since(start)

	cache := t.TempDir()
	mnt := t.TempDir()
	ctx := context.Background()
	start = time.Now()
	srv, err := Mount(ctx, set, mnt, Options{CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	first := time.Since(start)
	unmount(t, srv)

	before := rchar(t)
	start = time.Now()
	srv, err = Mount(ctx, set, mnt, Options{CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	defer unmount(t, srv)
	mounted := time.Since(start)
	b, err := os.ReadFile(filepath.Join(mnt, "root", last.name))
	if err != nil {
		t.Fatal(err)
	}
	read := time.Since(start)
	readBytes := rchar(t) - before
	if sha256.Sum256(b) != last.sum {
		t.Fatalf("%s read through the mount differs from the archive's", last.name)
	}
	t.Logf("tgz %d MiB (%d MiB of data): full read (decompress) %v; first mount (index + decompressed copy in the cache) %v; "+
		"later mount %v, + read of the last file (%d MiB) %v; bytes read by this process for it: %.1f MiB",
		fi.Size()>>20, mb, full.Round(time.Millisecond), first.Round(time.Millisecond), mounted.Round(time.Millisecond),
		len(b)>>20, read.Round(time.Millisecond), float64(readBytes)/(1<<20))
	// The file passes twice (the server's read of the cache, this
	// test's of the mount), plus the cache key's 2 MiB and the index.
	limit := 3*int64(len(b)) + 4<<20
	if limit > fi.Size()/2 {
		t.Fatalf("the %d-byte archive is too small to tell an indexed read from a full one", fi.Size())
	}
	if readBytes > limit {
		t.Errorf("reading the last file read %d bytes; an indexed read takes at most %d, the archive is %d", readBytes, limit, fi.Size())
	}
}

type lastFile struct {
	name string
	sum  [32]byte
}

// writeTgz writes a gzip tar of mb MiB of random text in 2 MiB files and
// returns the last one.
func writeTgz(t *testing.T, p string, mb int) lastFile {
	t.Helper()
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zw, err := compress.NewWriter(f, backupset.CompressGzip)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(zw)
	rng := rand.NewChaCha8([32]byte{1})
	buf := make([]byte, 2<<20)
	var last lastFile
	mtime := time.Date(2026, 12, 1, 3, 15, 0, 0, time.UTC)
	if err := tw.WriteHeader(&tar.Header{Name: "./srv/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mtime}); err != nil {
		t.Fatal(err)
	}
	for i := range mb / 2 {
		rng.Read(buf)
		for j, c := range buf {
			buf[j] = 'a' + c&15
		}
		last = lastFile{name: fmt.Sprintf("srv/data-%03d.bin", i), sum: sha256.Sum256(buf)}
		h := &tar.Header{Name: "./" + last.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(buf)), ModTime: mtime, Format: tar.FormatPAX}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return last
}

func unmount(t *testing.T, srv *Server) {
	t.Helper()
	if err := srv.Unmount(); err != nil {
		t.Error(err)
	}
	srv.Wait()
}

// rchar is the bytes this process has read by read(2) and its kin.
func rchar(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "rchar: "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no rchar in /proc/self/io")
	return 0
}
