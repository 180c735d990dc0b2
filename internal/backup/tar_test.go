package backup

import (
	"bytes"
	"crypto/rand"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/blockdev"
	"github.com/pibackup/pibackup/internal/compress"
)

// GNU tar's standard error, split anywhere: checkpoint lines add to the
// progress, every other line (and a last one without an end) is kept
// for the error message.
func TestCheckpoints(t *testing.T) {
	in := "tar: " + checkpointMark + "\ntar: ./a: file changed as we read it\ntar: " + checkpointMark + "\ntar: " + checkpointMark + "\nzstd: write error"
	for _, step := range []int{1, 3, 7, len(in)} {
		tail := &blockdev.TailBuffer{Max: 4096}
		var added int64
		c := &checkpoints{tail: tail, add: func(n int64) { added += n }}
		for i := 0; i < len(in); i += step {
			c.Write([]byte(in[i:min(i+step, len(in))]))
		}
		c.flush()
		if added != 3*checkpointBytes {
			t.Errorf("writes of %d bytes: %d bytes of progress, want %d", step, added, 3*checkpointBytes)
		}
		if got, want := tail.String(), "tar: ./a: file changed as we read it\nzstd: write error"; got != want {
			t.Errorf("writes of %d bytes: kept %q, want %q", step, got, want)
		}
	}
}

// The options zstdForTar gives GNU tar: the archive comes out as zstd,
// decompresses to the tar of the tree, and its checkpoints report the
// archive's bytes (of 30 MiB of files, at least two 10 MiB checkpoints).
func TestTarThroughZstdProgram(t *testing.T) {
	opts, ok := zstdForTar()
	if !ok {
		if os.Getenv("PIBACKUP_TEST_REQUIRE") != "" {
			t.Fatal("zstd is not installed")
		}
		t.Skip("zstd is not installed")
	}
	src := t.TempDir()
	data := make([]byte, 10<<20)
	for i := range 3 {
		rand.Read(data)
		if err := os.WriteFile(filepath.Join(src, "f"+string(rune('a'+i))), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := os.Create(filepath.Join(t.TempDir(), "a.tar.zst"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	tail := &blockdev.TailBuffer{Max: 4096}
	var added int64
	c := &checkpoints{tail: tail, add: func(n int64) { added += n }}
	cmd := exec.Command("tar", append(opts, TarArgs(src, nil)...)...)
	cmd.Stdout, cmd.Stderr = out, c
	if err := cmd.Run(); err != nil {
		t.Fatalf("tar %q: %v: %s", cmd.Args, err, tail.String())
	}
	c.flush()
	if added < 2*checkpointBytes || added > 4*checkpointBytes {
		t.Errorf("%d bytes of progress for a 30 MiB tree; want two or three checkpoints of %d", added, checkpointBytes)
	}
	if s := tail.String(); s != "" {
		t.Errorf("tar said %q", s)
	}
	out.Seek(0, io.SeekStart)
	zr, err := compress.NewReader(out, backupset.CompressZstd)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	list := exec.Command("tar", "-t")
	list.Stdin = zr
	names, err := list.Output()
	if err != nil {
		t.Fatalf("the archive does not list: %v", err)
	}
	for _, f := range []string{"./fa", "./fb", "./fc"} {
		if !bytes.Contains(names, []byte(f+"\n")) {
			t.Errorf("the archive lacks %s: %q", f, names)
		}
	}
}

// A zstd that refuses the options (older than 1.1.3, which has no -T)
// leaves the archive to the Go encoder instead of failing the backup.
func TestZstdTooOld(t *testing.T) {
	dir := t.TempDir()
	old := "#!/bin/sh\necho \"zstd: $3: unknown argument\" >&2\nexit 1\n"
	if err := os.WriteFile(filepath.Join(dir, "zstd"), []byte(old), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(filepath.ListSeparator)+os.Getenv("PATH"))
	if opts, ok := zstdForTar(); ok {
		t.Errorf("a zstd that fails on empty input is used: %q", opts)
	}
}

// pathWithout sets PATH, for the test, to a folder of links to every
// program in PATH but the named ones, so backupctl runs as on a system
// without them.
func pathWithout(t *testing.T, names ...string) {
	t.Helper()
	dir := t.TempDir()
	for _, d := range filepath.SplitList(os.Getenv("PATH")) {
		es, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, e := range es {
			n := e.Name()
			if strings.HasPrefix(n, ".") || slices.Contains(names, n) {
				continue
			}
			os.Symlink(filepath.Join(d, n), filepath.Join(dir, n)) // the first in PATH wins
		}
	}
	t.Setenv("PATH", dir)
}
