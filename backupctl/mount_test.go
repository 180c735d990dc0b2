package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/diskfs/go-diskfs/backend/file"

	"github.com/pibackup/pibackup/internal/disklayout"
	"github.com/pibackup/pibackup/internal/testfs"
)

// TestMount mounts a set of every type, raspiBackup's tgz and rsync sets
// included, with real FUSE and judges the view with the tree comparison
// of every restore: root/ must equal the source's root filesystem in
// every attribute (owners, modes, ns mtimes, xattrs, ACLs, capabilities,
// symlinks, device nodes, hardlinks as shared inodes), boot/ must hold
// every file of the source's boot partition with its bytes. Each mount
// ends with `umount MOUNTPOINT`, after which the command returns 0.
func TestMount(t *testing.T) {
	testfs.Require(t, "fuse")
	d := fixture(t)
	src := mountRoot(t, d, false)
	backups := t.TempDir()
	sets := map[string]string{}
	for _, typ := range [][]string{{"-t", "rsync"}, {"-t", "tgz"}, {"-t", "tar"}, {"-t", "tar", "-z", "zstd"}, {"-t", "dd"}, {"-t", "ddz"}, {"-t", "ddz", "-z", "zstd"}} {
		sets[strings.Join(typ, "")] = backupOK(t, backups, append([]string{"--source-disk", d.Path}, typ...)...)
	}
	sets["raspiBackup-tgz"] = asRaspiBackupSet(t, sets["-ttgz"], t.TempDir())
	sets["raspiBackup-rsync"] = asRaspiBackupSet(t, sets["-trsync"], t.TempDir())
	boot := bootFiles(t, d)
	// raspiBackup -B keeps the boot partition as a tar (.tmg) instead
	// of an image.
	sets["raspiBackup-tgz-B"] = asRaspiBackupSet(t, sets["-ttgz"], t.TempDir())
	writeTmg(t, sets["raspiBackup-tgz-B"], boot)
	cache := t.TempDir()
	for name, set := range sets {
		t.Run(name, func(t *testing.T) {
			mnt := t.TempDir()
			done := mountCLI(t, set, mnt, "--cache-dir", cache)
			// What backups leave out (/dev's contents, ...), and for an
			// rsync set lost+found, which the set's tree holds as the
			// target made it (the backup tests leave it out too).
			ignore := compareIgnore
			if strings.Contains(name, "rsync") {
				ignore = append(slices.Clone(ignore), "lost+found")
			}
			diffs, err := testfs.Compare(src, filepath.Join(mnt, "root"), testfs.CompareOptions{Ignore: ignore})
			if err != nil {
				t.Fatal(err)
			}
			if name == "raspiBackup-rsync" {
				// The set folder is the tree's root: raspiBackup writes
				// its logs into it, so its mtime is theirs (raspiBackup's
				// own restore has the same).
				diffs = slices.DeleteFunc(diffs, func(d testfs.Diff) bool { return d.Path == "." && d.Kind == testfs.KindMtime })
			}
			if len(diffs) > 0 {
				t.Errorf("root/ differs from the source:\n%s", testfs.FormatDiffs(diffs, 20))
			}
			checkBoot(t, boot, filepath.Join(mnt, "boot"))
			if err := os.WriteFile(filepath.Join(mnt, "root", testfs.PathHostname), []byte("x"), 0o644); err == nil {
				t.Error("a file of the view could be written")
			}
			runTool(t, "umount", mnt)
			if r := <-done; r.code != 0 {
				t.Fatalf("mount: exit %d after umount\n%s", r.code, r.out)
			}
			if isMountPoint(t, mnt) {
				t.Error("still mounted after the command returned")
			}
		})
	}
}

// TestMountHostDir mounts a host folder: one folder per set, each with
// root/ and boot/.
func TestMountHostDir(t *testing.T) {
	testfs.Require(t, "fuse")
	d := fixture(t)
	backups := t.TempDir()
	var names []string
	for _, typ := range []string{"tgz", "dd"} {
		names = append(names, filepath.Base(backupOK(t, backups, "-t", typ, "--source-disk", d.Path)))
	}
	// A set that cannot be opened does not keep the others from
	// showing: each is opened when first looked into.
	broken := "testpi@debian12-dd-backup-20261101-031500"
	if err := os.Mkdir(filepath.Join(backups, "testpi", broken), 0o755); err != nil {
		t.Fatal(err)
	}
	mnt := t.TempDir()
	done := mountCLI(t, filepath.Join(backups, "testpi"), mnt, "--cache-dir", t.TempDir())
	if _, err := os.ReadDir(filepath.Join(mnt, broken)); err == nil {
		t.Errorf("the set without an image could be listed")
	}
	good := slices.Clone(names)
	names = append(names, broken)
	es, err := os.ReadDir(mnt)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range es {
		got = append(got, e.Name())
	}
	slices.Sort(names)
	if strings.Join(got, " ") != strings.Join(names, " ") {
		t.Errorf("host folder shows %q, want the sets %q", got, names)
	}
	want, _ := os.ReadFile(filepath.Join(mountRoot(t, d, false), testfs.PathFstab))
	for _, n := range good {
		b, err := os.ReadFile(filepath.Join(mnt, n, "root", testfs.PathFstab))
		if err != nil || !bytes.Equal(b, want) {
			t.Errorf("%s/root/%s: %v %q", n, testfs.PathFstab, err, b)
		}
		if _, err := os.Stat(filepath.Join(mnt, n, "boot", "config.txt")); err != nil {
			t.Errorf("%s/boot: %v", n, err)
		}
	}
	runTool(t, "umount", mnt)
	if r := <-done; r.code != 0 {
		t.Fatalf("mount: exit %d after umount\n%s", r.code, r.out)
	}
}

// TestMountInterrupt: SIGINT unmounts and ends the command with exit 0.
// Idle, the image's loop device is detached with it; with a file of the
// view still open, the mount point is detached lazily and is gone too.
func TestMountInterrupt(t *testing.T) {
	testfs.Require(t, "fuse")
	d := fixture(t)
	set := backupOK(t, t.TempDir(), "-t", "dd", "--source-disk", d.Path)
	img := filepath.Join(set, filepath.Base(set)+".img")
	for _, busy := range []bool{false, true} {
		t.Run(map[bool]string{false: "idle", true: "busy"}[busy], func(t *testing.T) {
			mnt := t.TempDir()
			cmd, stderr := startMount(t, set, mnt)
			b, err := os.ReadFile(filepath.Join(mnt, "root", testfs.PathHostname))
			if err != nil || len(b) == 0 {
				t.Fatalf("read through the view: %v", err)
			}
			if busy {
				f, err := os.Open(filepath.Join(mnt, "root", testfs.PathHostname))
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
			}
			cmd.Process.Signal(syscall.SIGINT)
			if err := cmd.Wait(); err != nil {
				t.Fatalf("after SIGINT: %v\n%s", err, stderr)
			}
			if isMountPoint(t, mnt) {
				t.Error("the mount point is still mounted after SIGINT")
			}
			if !busy {
				if out := runTool(t, "losetup", "-j", img); strings.TrimSpace(out) != "" {
					t.Errorf("a loop device is still attached to the image: %s", out)
				}
			}
		})
	}
}

// startMount starts the backupctl binary's mount and returns once the
// view is mounted (it said so).
func startMount(t *testing.T, set, mnt string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(faultBinary(t), "mount", set, mnt, "--cache-dir", t.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		syscall.Unmount(mnt, syscall.MNT_DETACH)
	})
	// The line comes once the view is mounted: the event to wait for.
	line, err := waitMounted(stdout)
	if err != nil {
		cmd.Wait()
		t.Fatalf("no 'mounted' line: %q %v\n%s", line, err, stderr.String())
	}
	go io.Copy(io.Discard, stdout)
	return cmd, &stderr
}

type cliResult struct {
	code int
	out  string
}

// mountCLI runs `backupctl mount SET MNT` in the background and returns
// once the view is mounted (the command said so); the result comes on
// the channel when the command returns.
func mountCLI(t *testing.T, set, mnt string, args ...string) <-chan cliResult {
	t.Helper()
	done, _ := mountCLINotes(t, set, mnt, args...)
	return done
}

// mountCLINotes is mountCLI that also returns what mount said before
// its "mounted" line (the notes on indexing and fetching).
func mountCLINotes(t *testing.T, set, mnt string, args ...string) (<-chan cliResult, string) {
	t.Helper()
	pr, pw := io.Pipe()
	var errOut bytes.Buffer
	done := make(chan cliResult, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		code := run(ctx, append([]string{"mount", set, mnt}, args...), strings.NewReader(""), pw, &errOut)
		pw.Close()
		done <- cliResult{code, errOut.String()}
	}()
	line, err := waitMounted(pr)
	if err != nil {
		r := <-done
		cancel()
		t.Fatalf("mount %s: %q %v; exit %d\n%s", filepath.Base(set), line, err, r.code, r.out)
	}
	go io.Copy(io.Discard, pr)
	t.Cleanup(func() {
		cancel() // unmounts, if the test did not
		syscall.Unmount(mnt, syscall.MNT_DETACH)
	})
	return done, line
}

// waitMounted reads mount's output up to its "mounted" line (after any
// note on indexing or decompressing) and returns what it read.
func waitMounted(r io.Reader) (string, error) {
	br := bufio.NewReader(r)
	var out strings.Builder
	for {
		line, err := br.ReadString('\n')
		out.WriteString(line)
		if strings.HasPrefix(line, "mounted ") {
			return out.String(), nil
		}
		if err != nil {
			return out.String(), err
		}
	}
}

func isMountPoint(t *testing.T, dir string) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 4 && f[4] == dir {
			return true
		}
	}
	return false
}

// bootFiles reads every file of the fixture's boot partition.
func bootFiles(t *testing.T, d *testfs.PiDisk) map[string][]byte {
	t.Helper()
	f, err := os.Open(d.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fsys, err := disklayout.OpenFAT(file.New(f, true), d.BootStart, d.BootSize)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	err = fs.WalkDir(fsys, ".", func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		files[p], err = fs.ReadFile(fsys, p)
		return err
	})
	if err != nil || len(files) == 0 {
		t.Fatalf("boot partition: %d files, %v", len(files), err)
	}
	return files
}

// checkBoot compares the files below dir with want.
func checkBoot(t *testing.T, want map[string][]byte, dir string) {
	t.Helper()
	got := 0
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if w, ok := want[rel]; !ok {
			t.Errorf("boot/%s: not on the source's boot partition", rel)
		} else if !bytes.Equal(b, w) {
			t.Errorf("boot/%s: %d bytes differ from the source's %d", rel, len(b), len(w))
		}
		got++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got != len(want) {
		t.Errorf("boot/ has %d files, the source's boot partition %d", got, len(want))
	}
}

// TestMountRefusals: what cannot be mounted says why and what to give
// instead, and mounts nothing; an rsync set whose listing does not match
// the manifest is damaged, not shown with wrong owners and modes.
func TestMountRefusals(t *testing.T) {
	testfs.Require(t, "fuse")
	d := fixture(t)
	damaged := backupOK(t, t.TempDir(), "-t", "rsync", "--source-disk", d.Path)
	listing := filepath.Join(damaged, "testpi-backup.tree.list")
	b, err := os.ReadFile(listing)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(listing, bytes.Replace(b, []byte(" 0644 "), []byte(" 0666 "), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	for _, c := range []struct {
		name, src, mnt, want string
	}{
		{"no sets", empty, t.TempDir(), "holds no backup set"},
		{"no mount point", empty, filepath.Join(empty, "missing"), "create it first"},
		{"damaged listing", damaged, t.TempDir(), "testpi-backup.tree.list does not match its size and SHA-256 in the manifest"},
	} {
		code, _, errOut := cli(context.Background(), "mount", c.src, c.mnt)
		if code == 0 || !strings.Contains(errOut, c.want) {
			t.Errorf("%s: exit %d %q; want an error saying %q", c.name, code, errOut, c.want)
		}
		if isMountPoint(t, c.mnt) {
			t.Errorf("%s: mounted anyway", c.name)
		}
	}
}

// writeTmg replaces the set's boot image by a tar of the files, made as
// raspiBackup's -B makes it (cd /boot/firmware; tar -cpi -f ... .).
func writeTmg(t *testing.T, set string, files map[string][]byte) {
	t.Helper()
	if err := os.Remove(filepath.Join(set, "testpi-backup.img")); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, b := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	runTool(t, "tar", "-C", dir, "-cpi", "-f", filepath.Join(set, "testpi-backup.tmg"), ".")
}
