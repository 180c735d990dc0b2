package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pibackup/pibackup/internal/backup"
	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/progress"
	"github.com/pibackup/pibackup/internal/source"
	"github.com/pibackup/pibackup/internal/testfs"
	"github.com/pibackup/pibackup/internal/tui/model"
)

// TestBrowseAndCopy is "Get files back" on real parts: sets made by the
// backup engine from the Pi-like disk, opened through the browser (a
// real FUSE mount of setfs; a tgz or tar.zst set's archive read through
// for its listing), listed, and four paths copied (rsync; GNU tar from
// the compressed archives)
// onto an ext4 on a loop device that mountDest mounts; the copies must
// equal the source in every attribute (owners, modes, times, xattrs,
// ACLs, capabilities, hardlinks, device nodes). A ddz set and a source
// without a local folder are refused with their own messages.
func TestBrowseAndCopy(t *testing.T) {
	for _, c := range []string{"fuse", "pidisk", "rsync", "loop"} {
		testfs.Require(t, c)
	}
	dir := t.TempDir()
	d, err := testfs.BuildPiDisk(dir, testfs.DiskOptions{})
	if err != nil {
		t.Fatal(err)
	}
	srcRoot := t.TempDir()
	testfs.MountExt4(t, testfs.AttachLoop(t, d.Path, d.RootStart, d.RootSize, true), srcRoot, true)
	backups := filepath.Join(dir, "backups")
	if err := os.Mkdir(backups, 0o755); err != nil {
		t.Fatal(err)
	}
	sets := map[string]backupset.Set{}
	for _, c := range []struct {
		key  string
		typ  backupset.Type
		comp backupset.Compression
	}{
		{"rsync", backupset.TypeRsync, ""}, {"tar", backupset.TypeTar, ""}, {"tgz", backupset.TypeTGZ, ""},
		{"tar.zst", backupset.TypeTar, backupset.CompressZstd}, {"ddz", backupset.TypeDDZ, ""},
	} {
		res, err := backup.Run(context.Background(), backup.Options{Target: backups, Type: c.typ, Compression: c.comp, SourceDisk: d.Path, Snapshot: c.key}, backup.Deps{})
		if err != nil {
			t.Fatalf("backup %s: %v", c.key, err)
		}
		rel, _ := filepath.Rel(backups, res.SetDir)
		name, err := backupset.Parse(filepath.Base(res.SetDir))
		if err != nil {
			t.Fatal(err)
		}
		sets[c.key] = backupset.Set{Name: name, Dir: filepath.ToSlash(rel)}
	}
	src, err := source.OpenDir(backups, "")
	if err != nil {
		t.Fatal(err)
	}
	runDir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	b := newBrowser(runDir, log)
	ctx := context.Background()

	t.Run("compressed", func(t *testing.T) {
		_, err := b.Browse(ctx, model.Request{Source: src, Set: sets["ddz"]}, nil)
		if !errors.Is(err, errBrowseCompressed) {
			t.Errorf("ddz set: err = %v, want %v", err, errBrowseCompressed)
		}
		if es, _ := os.ReadDir(filepath.Join(runDir, "browse", "cache")); len(es) > 0 {
			t.Errorf("the refused sets left %d files in the cache", len(es))
		}
		if es, _ := os.ReadDir(filepath.Join(runDir, "browse")); len(es) > 1 {
			t.Errorf("the refused sets left mount points: %d entries in the run dir", len(es))
		}
	})
	t.Run("remote", func(t *testing.T) {
		_, err := b.Browse(ctx, model.Request{Source: remote{src}, Set: sets["rsync"]}, nil)
		if !errors.Is(err, errBrowseRemote) {
			t.Fatalf("source without a local folder: err = %v, want %v", err, errBrowseRemote)
		}
	})

	ri, err := os.Stat(filepath.Join(srcRoot, testfs.PathRandom))
	if err != nil {
		t.Fatal(err)
	}
	randomSize := ri.Size()
	marked := []string{"/home/pi", "/srv/shared", "/srv/chroot", "/usr/bin"}
	for _, typ := range []string{"rsync", "tar", "tgz", "tar.zst"} {
		compressed := typ == "tgz" || typ == "tar.zst"
		t.Run(typ, func(t *testing.T) {
			listing := &sum{}
			tree, err := b.Browse(ctx, model.Request{Source: src, Set: sets[typ]}, listing)
			if err != nil {
				t.Fatal(err)
			}
			closed := false
			defer func() {
				if !closed {
					tree.Close()
				}
			}()
			checkListing(t, tree, randomSize)
			mnt := ""
			if st, ok := tree.(*setTree); ok {
				mnt = st.mnt
				// What FAT cannot hold is counted through the view:
				// srv/chroot/dev holds null and mmcblk0, hostname-link
				// is one symlink.
				if _, special, err := count([]string{st.root + "/./srv/chroot", st.root + "/./" + testfs.PathSymlink}); err != nil || special != 3 {
					t.Errorf("counted %d entries FAT cannot hold (%v), want 3", special, err)
				}
			} else if _, ok := tree.(*tarTree); !ok || !compressed {
				t.Fatalf("%s set browsed as %T", typ, tree)
			} else if listing.total == 0 || listing.added != listing.total {
				// The archive was read through once, and said so.
				t.Errorf("listing progress %d of %d, want all of a non-zero total", listing.added, listing.total)
			}

			dest := newDest(t)
			dirOut, unmount, err := mountDest(runDir, log)(ctx, dest)
			if err != nil {
				t.Fatal(err)
			}
			into := filepath.Join(dirOut, "pibackup-files", sets[typ].String())
			if compressed {
				// A cancelled copy stops with the context's error.
				cctx, cancel := context.WithCancel(ctx)
				cancel()
				if _, err := tree.Copy(cctx, marked, into, nil); !errors.Is(err, context.Canceled) {
					t.Errorf("cancelled copy: %v, want context.Canceled", err)
				}
			}
			rep := &sum{}
			got, err := tree.Copy(ctx, marked, into, rep)
			if err != nil {
				unmount()
				t.Fatal(err)
			}
			if got.Skipped != 0 {
				t.Errorf("onto ext4 %d entries were skipped", got.Skipped)
			}
			if compressed {
				// The progress is the archive read through (maybe twice,
				// for hardlinks whose first name is not marked).
				if rep.total == 0 || rep.added < rep.total || got.Bytes < randomSize {
					t.Errorf("copied %d bytes, progress %d of %d; want at least %s's %d and all of the archive", got.Bytes, rep.added, rep.total, testfs.PathRandom, randomSize)
				}
			} else if got.Bytes != rep.added || rep.total != rep.added || got.Bytes < randomSize {
				t.Errorf("copied %d bytes, progress %d of %d; want equal and at least %s's %d", got.Bytes, rep.added, rep.total, testfs.PathRandom, randomSize)
			}
			for _, p := range marked {
				diffs, err := testfs.Compare(filepath.Join(srcRoot, p), filepath.Join(into, p), testfs.CompareOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if len(diffs) > 0 {
					t.Errorf("%s differs from the source:\n%s", p, testfs.FormatDiffs(diffs, 20))
				}
			}
			if err := unmount(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(dirOut); !os.IsNotExist(err) {
				t.Errorf("destination folder %s still there after unmount: %v", dirOut, err)
			}

			closed = true
			if err := tree.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(mnt); mnt != "" && !os.IsNotExist(err) {
				t.Errorf("mount point %s still there after Close: %v", mnt, err)
			}
		})
	}
}

// checkListing: folders first, then by name; a symlink is shown as one
// (not followed), with no size.
func checkListing(t *testing.T, tree model.Tree, randomSize int64) {
	t.Helper()
	root, err := tree.ReadDir("/")
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(root, func(e model.FileEntry) bool { return e.Name == "etc" && e.Dir }); i < 0 {
		t.Fatalf("/ lists no folder etc: %+v", root)
	}
	home, err := tree.ReadDir("/home/pi")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.IsSortedFunc(home, model.CompareEntries) || !home[0].Dir {
		t.Errorf("/home/pi not folders first, then by name: %+v", home)
	}
	byName := map[string]model.FileEntry{}
	for _, e := range home {
		byName[e.Name] = e
	}
	if e := byName["etc-link"]; !e.Symlink || e.Dir {
		t.Errorf("etc-link (a symlink to a folder) listed as %+v", e)
	}
	if e := byName["random.bin"]; e.Size != randomSize {
		t.Errorf("random.bin listed as %+v, want size %d", e, randomSize)
	}
	if _, err := tree.ReadDir("/../../.."); err != nil {
		t.Errorf("/../../.. (the root, clamped): %v", err)
	}
}

// newDest makes an ext4 filesystem on a loop device, the partition the
// files are copied onto.
func newDest(t *testing.T) source.Partition {
	t.Helper()
	img := filepath.Join(t.TempDir(), "dest.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 256<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-b", "4096", "-I", "256", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	dev := testfs.AttachLoop(t, img, 0, 256<<20, false)
	return source.Partition{Name: filepath.Base(dev), Path: dev, FSType: "ext4"}
}

// remote is a source that has no local folder, as SFTP and SMB.
type remote struct{ source.Source }

func (remote) LocalDir() string { return "" }

// sum is a progress.Reporter that adds up.
type sum struct{ total, added int64 }

func (s *sum) Phase(_ string, total int64) { s.total = total }
func (s *sum) Add(n int64)                 { s.added += n }

var _ progress.Reporter = (*sum)(nil)

// TestCopyArgsFAT: this host cannot mount FAT, so the choice of rsync's
// arguments is checked here. A Linux filesystem gets every attribute,
// FAT only contents and times (no -l, -D, -o, -g, -p, -A, -X: rsync then
// skips links and device nodes), with FAT's 2-second times.
func TestCopyArgsFAT(t *testing.T) {
	srcs := []string{"/m/root/./etc/hostname"}
	linux := copyArgs(false, srcs, "/d")
	if !slices.Contains(linux, "-aHAX") || !slices.Contains(linux, "--numeric-ids") {
		t.Errorf("onto ext4: %q lacks -aHAX --numeric-ids", linux)
	}
	fat := copyArgs(true, srcs, "/d")
	want := []string{"-rt", "--modify-window=1", "--relative", "--out-format=%i %l", "/m/root/./etc/hostname", "/d/"}
	if !slices.Equal(fat, want) {
		t.Errorf("onto FAT: %q, want %q", fat, want)
	}
}

// TestCopyCancel: cancelling the copy kills rsync and what it started.
// rsync's remote shell here is a script that says its pid through a FIFO
// and then sleeps; after the cancel, runRsync returns context.Canceled
// and the sleeper ends (its pidfd becomes readable) instead of living on.
func TestCopyCancel(t *testing.T) {
	testfs.Require(t, "rsync")
	dir := t.TempDir()
	fifo := filepath.Join(dir, "started")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		err error
	}
	done := make(chan result, 1)
	go func() {
		shell := "sh -c 'echo $$ > " + fifo + "; exec sleep 1000' --"
		_, err := runRsync(ctx, []string{"-e", shell, "somehost:/x", dir + "/"}, nil, slog.New(slog.DiscardHandler))
		done <- result{err}
	}()
	b, err := os.ReadFile(fifo) // blocks until the sleeper started
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("pid %q: %v", b, err)
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pidfd)
	cancel()
	// Bounds for a broken kill, not timing assumptions: a killed
	// process's pidfd is readable at once.
	select {
	case r := <-done:
		if !errors.Is(r.err, context.Canceled) {
			t.Errorf("runRsync after cancel: %v, want context.Canceled", r.err)
		}
	case <-time.After(60 * time.Second):
		t.Error("runRsync did not return after the cancel")
	}
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	if n, err := unix.Poll(fds, 60_000); err != nil || n != 1 {
		unix.Kill(pid, unix.SIGKILL)
		t.Errorf("rsync's child %d still runs after the cancel (poll %d, %v)", pid, n, err)
	}
}
