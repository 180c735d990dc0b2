package main

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pibackup/pibackup/internal/restore"
	"github.com/pibackup/pibackup/internal/testfs"
)

// holdLock takes flock(2) LOCK_EX on path, as a running restore, clone
// or test restore of that target does, until the test ends.
func holdLock(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatalf("lock %s: %v", path, err)
	}
}

// targetLocked reports whether someone holds path's lock.
func targetLocked(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB); err != nil {
		return true
	}
	unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return false
}

// markedImage is a 320 MiB image file whose first MiB is random, so any
// write to its partition table area shows.
func markedImage(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "target.img")
	head := make([]byte, 1<<20)
	rand.Read(head)
	if err := os.WriteFile(p, head, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, 320<<20); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestTargetLock: one restore or clone per target at a time. A second
// run onto a target whose lock is held is refused at once with the exit
// code of a held lock and writes nothing; two real restores onto one
// image file leave one whole restore, never a mix.
func TestTargetLock(t *testing.T) {
	d := fixture(t)
	set := backupOK(t, t.TempDir(), "--source-disk", d.Path, "-t", "tgz")
	ctx := context.Background()

	refused := func(t *testing.T, target string, args ...string) {
		t.Helper()
		before := fileSHA256(t, target)
		start := time.Now()
		code, _, errOut := cli(ctx, args...)
		took := time.Since(start)
		t.Logf("%s: exit %d after %s: %s", args[0], code, took.Round(time.Millisecond), lastLine(errOut))
		if code != exitLocked {
			t.Errorf("%s onto a locked target = exit %d, want %d", args[0], code, exitLocked)
		}
		if !strings.Contains(errOut, restore.ErrTargetBusy.Error()) {
			t.Errorf("error does not say the target is busy: %s", errOut)
		}
		if took > 10*time.Second {
			t.Errorf("refusal took %s; want it at once", took)
		}
		if fileSHA256(t, target) != before {
			t.Errorf("%s wrote the locked target", args[0])
		}
	}

	t.Run("restore-image-file", func(t *testing.T) {
		img := markedImage(t)
		holdLock(t, img)
		refused(t, img, "restore", "--yes", set, "--to", img)
	})
	t.Run("clone-image-file", func(t *testing.T) {
		img := markedImage(t)
		holdLock(t, img)
		refused(t, img, "clone", "--yes", "--source-disk", d.Path, "--to", img)
	})
	t.Run("restore-disk", func(t *testing.T) {
		dev := testfs.AttachLoop(t, markedImage(t), 0, 0, false)
		holdLock(t, dev)
		refused(t, dev, "restore", "--yes", set, "--to", dev)
	})
	t.Run("locked-after-plan", func(t *testing.T) {
		// The lock is taken between planning and writing (the other run
		// started while this one waited for its confirmation).
		img := markedImage(t)
		before := fileSHA256(t, img)
		p, err := restore.NewPlan(ctx, restore.Options{Set: os.DirFS(set), SetName: filepath.Base(set), LocalDir: set, Target: img})
		if err != nil {
			t.Fatal(err)
		}
		holdLock(t, img)
		res, err := p.Execute(ctx)
		if !errors.Is(err, restore.ErrTargetBusy) || res.Incomplete {
			t.Errorf("Execute on a locked target = %v (incomplete %v); want ErrTargetBusy, nothing written", err, res.Incomplete)
		}
		if fileSHA256(t, img) != before {
			t.Error("Execute wrote the locked target")
		}
	})
	t.Run("two-restores", func(t *testing.T) {
		img := filepath.Join(t.TempDir(), "t.img")
		type outcome struct {
			code   int
			stderr string
		}
		first := make(chan outcome, 1)
		go func() {
			code, _, errOut := cli(ctx, "restore", "--yes", set, "--to", img, "--size", "320M")
			first <- outcome{code, errOut}
		}()
		faultWait(t, "the first restore to lock its target", func() bool { return targetLocked(img) })
		code, _, errOut := cli(ctx, "restore", "--yes", set, "--to", img, "--size", "320M")
		if code != exitLocked {
			t.Errorf("second restore while the first runs = exit %d (%s); want %d", code, lastLine(errOut), exitLocked)
		}
		o := <-first
		if o.code != 0 {
			t.Fatalf("first restore = exit %d: %s", o.code, lastLine(o.stderr))
		}
		// The first restore's result is whole: the table it wrote and
		// the root filesystem it made, judged by sfdisk and e2fsck.
		out, err := exec.Command("sfdisk", "--dump", img).CombinedOutput()
		if err != nil || strings.Count(string(out), img) < 2 {
			t.Fatalf("sfdisk --dump %s: %v\n%s", img, err, out)
		}
		p, err := restore.NewPlan(ctx, restore.Options{Set: os.DirFS(set), SetName: filepath.Base(set), Target: img})
		if err != nil {
			t.Fatal(err)
		}
		root := p.Layout.Partitions[len(p.Layout.Partitions)-1]
		dev := testfs.AttachLoop(t, img, root.Start, root.Size, true)
		if out, err := exec.Command("e2fsck", "-fn", dev).CombinedOutput(); err != nil {
			t.Errorf("e2fsck -fn of the restored root: %v\n%s", err, out)
		}
		if targetLocked(img) {
			t.Error("the lock is still held after both runs ended")
		}
	})
}
