package backup

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pibackup/pibackup/internal/progress"
	"github.com/pibackup/pibackup/internal/testfs"
	"github.com/pibackup/pibackup/internal/treelist"
)

func TestUnescapeRsync(t *testing.T) {
	for in, want := range map[string]string{
		"etc/hostname":        "etc/hostname",
		`a\#012b`:             "a\nb",
		`tab\#011 and space`:  "tab\t and space",
		`trailing\#`:          `trailing\#`,
		`bad\#9x9`:            `bad\#9x9`,
		`two\#033\#134x`:      "two\x1b\\x",
		`backslash\ alone\#1`: `backslash\ alone\#1`,
	} {
		if got := unescapeRsync(in); got != want {
			t.Errorf("unescapeRsync(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestWithOutFormat(t *testing.T) {
	args := RsyncArgs("/mnt/r", "/b/tmp/S", "", []string{"/proc/*"}, true)
	got := withOutFormat(args)
	want := append(slices.Clone(args[:len(args)-2]), "--out-format="+rsyncNamePrefix+"%n", "/mnt/r/", "/b/tmp/S/")
	if !slices.Equal(got, want) {
		t.Errorf("withOutFormat =\n%q\nwant\n%q", got, want)
	}
	if args[len(args)-1] != "/b/tmp/S/" {
		t.Errorf("withOutFormat changed its argument: %q", args)
	}
}

// countRep counts what a progress.Reporter is told.
type countRep struct {
	progress.Reporter
	n int64
}

func (c *countRep) Add(n int64) { c.n += n }

func TestFeedRsyncOutput(t *testing.T) {
	out := "      32,768   0%    0.00kB/s    0:00:00 (xfr#1, ir-chk=1000/1002)\r" +
		rsyncNamePrefix + "usr/lib/a.so\n" +
		"     100,000  10%   10.00MB/s    0:00:01 (xfr#2, ir-chk=999/1002)\r" +
		rsyncNamePrefix + "dir with space/x%\n" +
		rsyncNamePrefix + `new\#012line` + "\n" +
		"     150,000 100%   10.00MB/s    0:00:01 (xfr#3, to-chk=0/1002)\n"
	rep := &countRep{}
	var names []string
	feedRsyncOutput(strings.NewReader(out), rep, func(n string) { names = append(names, n) })
	if rep.n != 150000 {
		t.Errorf("progress %d bytes, want 150000", rep.n)
	}
	want := []string{"usr/lib/a.so", "dir with space/x%", `new\#012line`}
	if !slices.Equal(names, want) {
		t.Errorf("names %q, want %q", names, want)
	}
}

func listing(t *testing.T, root string, reuse *treelist.Reuse) (string, treelist.Stats) {
	t.Helper()
	var b bytes.Buffer
	st, err := treelist.WriteOptions(context.Background(), &b, root, treelist.Options{Reuse: reuse})
	if err != nil {
		t.Fatal(err)
	}
	return b.String(), st
}

// writeIn writes the file rel under root, making its folders.
func writeIn(t *testing.T, root, rel, content string) {
	t.Helper()
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// The prehasher's hashes make the listing read nothing again, and the
// listing is the same as without them; a file that changed after it was
// hashed, or that was never there, is hashed by the listing.
func TestPrehash(t *testing.T) {
	root := t.TempDir()
	write := func(rel, content string) { t.Helper(); writeIn(t, root, rel, content) }
	write("etc/hostname", "pi\n")
	write("usr/lib/big", strings.Repeat("x", 3<<20))
	write("changed", "before")
	write("name\nwith newline", "odd")

	p := startPrehash(root, false)
	for _, n := range []string{"etc/", "etc/hostname", "usr/lib/big", "changed", `name\#012with newline`, "../outside", "gone"} {
		p.copied(n)
	}
	// rsync names a file before its receiver has renamed it into place:
	// the prehasher waits for it.
	p.copied("late")
	write(".late.tmp", "arrives late")
	if err := os.Rename(filepath.Join(root, ".late.tmp"), filepath.Join(root, "late")); err != nil {
		t.Fatal(err)
	}
	// rsync has ended; then "changed" changes before the listing.
	p.stop()
	f, err := os.OpenFile(filepath.Join(root, "changed"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(" after") // the same mtime is possible: the ctime still differs
	f.Close()

	reuse := p.reuse(slog.New(slog.NewTextHandler(io.Discard, nil)))
	if reuse == nil {
		t.Fatal("no hashes to reuse")
	}
	plain, plainSt := listing(t, root, nil)
	with, withSt := listing(t, root, reuse)
	if plain != with {
		t.Errorf("listing with prehashed files differs:\n%s\nwithout:\n%s", with, plain)
	}
	// Only "changed" is read again (its new content, 12 bytes).
	if withSt.Hashed != int64(len("before after")) {
		t.Errorf("listing hashed %d of %d bytes, want only the changed file's 12", withSt.Hashed, plainSt.Hashed)
	}
}

func TestPrehashNil(t *testing.T) {
	var p *prehasher
	p.copied("x")
	if p.finish(slog.New(slog.NewTextHandler(io.Discard, nil))) != nil {
		t.Error("a nil prehasher has hashes")
	}
}

// TestPrehashNeverOpensSpecialFiles gives the prehasher the names of a
// device node and a FIFO, as rsync's --out-format does: neither may be
// opened (a copied /dev/watchdog would arm the machine's watchdog). An
// inotify watch on each sees any open.
func TestPrehashNeverOpensSpecialFiles(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mknod of a device node needs root")
	}
	root := t.TempDir()
	nodes := map[string]uint32{"null": unix.S_IFCHR, "ctl.fifo": unix.S_IFIFO}
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	for name, typ := range nodes {
		p := filepath.Join(root, name)
		if err := unix.Mknod(p, typ|0o666, int(unix.Mkdev(1, 3))); err != nil {
			t.Fatal(err)
		}
		if _, err := unix.InotifyAddWatch(fd, p, unix.IN_OPEN); err != nil {
			t.Fatal(err)
		}
	}
	p := startPrehash(root, false)
	for name := range nodes {
		p.copied(name)
	}
	p.finish(slog.New(slog.NewTextHandler(io.Discard, nil)))
	buf := make([]byte, 4096)
	if n, err := unix.Read(fd, buf); n > 0 {
		t.Errorf("the prehasher opened a device node or FIFO of the tree (%d bytes of inotify IN_OPEN events)", n)
	} else if err != unix.EAGAIN {
		t.Fatalf("read inotify events: %v", err)
	}
}

// An incremental rsync run (--link-dest) names every file it writes; the
// listing takes every other file's hash from the previous listing without
// looking at the previous tree (it is moved away here before the listing,
// so any lstat there would find nothing and the file would be read), and
// the listing is byte for byte the one made by reading every file.
func TestPrehashLinkDest(t *testing.T) {
	testfs.Require(t, "rsync")
	base := t.TempDir()
	src, prev, next := filepath.Join(base, "src"), filepath.Join(base, "prev"), filepath.Join(base, "next")
	write := func(rel, content string) { t.Helper(); writeIn(t, src, rel, content) }
	for i := range 20 {
		write(filepath.Join("usr/lib", strconv.Itoa(i)), strings.Repeat(strconv.Itoa(i), 1000+i))
	}
	write("etc/hostname", "pi\n")
	write("etc/mode", "mode changes")
	write("etc/owner", "owner changes")
	write("etc/same-size", "AAAA")
	write("links/a", "hardlinked pair")
	if err := os.Link(filepath.Join(src, "links/a"), filepath.Join(src, "links/b")); err != nil {
		t.Fatal(err)
	}
	mtime := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := os.Chtimes(filepath.Join(src, "etc/same-size"), mtime, mtime); err != nil {
		t.Fatal(err)
	}
	r := &runner{log: slog.New(slog.NewTextHandler(io.Discard, nil)), rep: progress.OrNop(nil), src: &source{}}
	run := func(dst, linkDest string, pre *prehasher) {
		t.Helper()
		if err := r.runRsync(context.Background(), withOutFormat(RsyncArgs(src, dst, linkDest, nil, true)), pre.copied); err != nil {
			t.Fatal(err)
		}
	}
	run(prev, "", nil)
	prevListing, _ := listing(t, prev, nil)

	// What the second run has to write: new content, a new file, an
	// equal-size rewrite with a new mtime, mode and owner changes (rsync
	// cannot hardlink these), and a new content for the hardlinked pair.
	write("usr/lib/3", "appended")
	write("new", "a new file")
	write("etc/same-size", "BBBB")
	if err := os.Chmod(filepath.Join(src, "etc/mode"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(filepath.Join(src, "etc/owner"), 1234, 1234); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "links/a"), []byte("hardlinked pair, longer"), 0o644); err != nil {
		t.Fatal(err)
	}
	pre := startPrehash(next, true)
	run(next, prev, pre)
	full := pre.finish(slog.New(slog.NewTextHandler(io.Discard, nil)))
	if full == nil || len(pre.named) == 0 {
		t.Fatal("no names from an incremental run")
	}
	plain, plainSt := listing(t, next, nil)
	if err := os.Rename(prev, prev+".moved"); err != nil {
		t.Fatal(err)
	}
	// Without the hashes taken while rsync ran, the listing reads
	// exactly what rsync wrote; with them, nothing of what it wrote.
	for _, c := range []struct {
		name  string
		reuse *treelist.Reuse
		want  int64
	}{
		{"names only", treelist.NewReuseNamed(nil, pre.named),
			int64(len("appended") + len("a new file") + len("BBBB") + len("mode changes") + len("owner changes") + 2*len("hardlinked pair, longer"))},
		{"names and hashes", full, -1},
	} {
		reuse, err := c.reuse.WithPrevious(prev, strings.NewReader(prevListing))
		if err != nil {
			t.Fatal(err)
		}
		with, withSt := listing(t, next, reuse)
		if with != plain {
			t.Errorf("%s: listing with the previous listing's hashes differs:\n%s\nreading every file:\n%s", c.name, with, plain)
		}
		if c.want >= 0 && withSt.Hashed != c.want {
			t.Errorf("%s: listing read %d of %d bytes; want %d, the files rsync wrote", c.name, withSt.Hashed, plainSt.Hashed, c.want)
		}
		if c.want < 0 && withSt.Hashed >= plainSt.Hashed/2 {
			t.Errorf("%s: listing read %d of %d bytes", c.name, withSt.Hashed, plainSt.Hashed)
		}
		t.Logf("%s: listing read %d of %d bytes", c.name, withSt.Hashed, plainSt.Hashed)
	}
}
