package restore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/disklayout"
	"github.com/pibackup/pibackup/internal/testfs"
)

// TestRestoreImageShrink restores dd and ddz sets (raspiBackup's without
// manifest, backupctl's with one) onto a target smaller than the source
// disk: the boot partition is copied as is, the root partition shrinks
// and is refilled from the image's files. judge checks the table with
// sfdisk, the filesystems with e2fsck -fn and fsck.vfat -n, the ids in
// cmdline.txt and fstab, and the tree with every bit of metadata.
func TestRestoreImageShrink(t *testing.T) {
	fx := getFixture(t)
	src := fx.disk
	small := src.BootStart + src.BootSize + 96<<20 // the source's root is larger
	for _, kind := range []string{"dd", "ddz", "b-dd", "b-ddz"} {
		t.Run(kind, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "small.img")
			p := restoreInto(t, fx, kind, img, small, false)
			if p.shrink == nil {
				t.Fatal("root not planned to shrink")
			}
			if (p.shrink.inPlace != "") != (kind == "dd" || kind == "b-dd") {
				t.Errorf("read in place = %q for %s", p.shrink.inPlace, kind)
			}
			plan := p.String()
			for _, want := range []string{"shrunk from", "format partition 2 ext4 (", "rsync -aHAX", "root data about"} {
				if !strings.Contains(plan, want) {
					t.Errorf("plan lacks %q:\n%s", want, plan)
				}
			}
			judge(t, fx, p, img, false)
			got, _ := disklayout.ReadFile(img)
			r, _ := disklayout.PartitionByNumber(got, 2)
			if r.Start+r.Size > small || r.Size >= src.RootSize {
				t.Errorf("root partition %+v not shrunk into %d bytes", r, small)
			}
			checkFSSize(t, img, p.partition(2))
		})
	}
	t.Run("keep ids", func(t *testing.T) {
		img := filepath.Join(t.TempDir(), "k.img")
		p := restoreInto(t, fx, "ddz", img, small, true)
		judge(t, fx, p, img, true)
	})
}

// TestRestoreImageShrinkRefused: a target too small for the root's data
// is refused by the plan, with figures, and is not touched; so is a
// compressed image when the scratch folder cannot take its root.
func TestRestoreImageShrinkRefused(t *testing.T) {
	fx := getFixture(t)
	src := fx.disk
	untouched := func(t *testing.T, size int64) (string, func()) {
		img := filepath.Join(t.TempDir(), "target.img")
		content := bytes.Repeat([]byte("not a disk "), int(size/11)+1)[:size]
		if err := os.WriteFile(img, content, 0o644); err != nil {
			t.Fatal(err)
		}
		want := sha256.Sum256(content)
		return img, func() {
			b, err := os.ReadFile(img)
			if err != nil || sha256.Sum256(b) != want {
				t.Errorf("the refused target changed (%v)", err)
			}
		}
	}
	for _, kind := range []string{"dd", "ddz", "b-ddz"} {
		t.Run(kind, func(t *testing.T) {
			tiny := src.BootStart + src.BootSize + 4<<20
			img, check := untouched(t, tiny)
			_, err := planFor(t, fx, kind, img, tiny, false)
			t.Logf("plan onto %d bytes: %v", tiny, err)
			var ts *disklayout.TooSmallError
			if !errors.As(err, &ts) || ts.Need <= tiny || ts.Need >= src.BootStart+src.BootSize+src.RootSize {
				t.Errorf("err = %v; want a TooSmallError needing less than the source disk", err)
			}
			for _, want := range []string{"holds about", "of data", "needs a partition of at least"} {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q: %v", want, err)
				}
			}
			check()
		})
	}
	t.Run("no scratch room", func(t *testing.T) {
		// /tmp too small, and the target's root partition too small to
		// hold the scratch copy beside the data.
		tinyTmp(t)
		small := src.BootStart + src.BootSize + 40<<20
		img, check := untouched(t, small)
		_, err := planFor(t, fx, "ddz", img, small, false)
		t.Logf("plan: %v", err)
		if err == nil || !strings.Contains(err.Error(), "scratch file") || !strings.Contains(err.Error(), "TMPDIR") || !strings.Contains(err.Error(), "beside the data") {
			t.Errorf("err = %v; want the scratch space named", err)
		}
		check()
	})
}

// tinyTmp points TMPDIR at a 1 MiB tmpfs, as a Pi Zero's RAM /tmp is for
// a real root filesystem.
func tinyTmp(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, 0) })
	t.Setenv("TMPDIR", dir)
}

// TestRestoreImageShrinkScratchOnTarget: with no room in TMPDIR, a ddz
// image's root is decompressed into a temporary filesystem at the end of
// the target's root partition, the new root is made before it and then
// grown over it.
func TestRestoreImageShrinkScratchOnTarget(t *testing.T) {
	fx := getFixture(t)
	src := fx.disk
	small := src.BootStart + src.BootSize + 96<<20
	for _, kind := range []string{"ddz", "b-ddz"} {
		t.Run(kind, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "small.img")
			tinyTmp(t)
			p := restoreInto(t, fx, kind, img, small, false)
			if p.shrink == nil || p.shrink.onTarget == 0 {
				t.Fatalf("scratch not planned on the target: %+v", p.shrink)
			}
			if plan := p.String(); !strings.Contains(plan, "temporary ext4") || !strings.Contains(plan, "grow the root filesystem") {
				t.Errorf("the plan does not say where the scratch copy goes:\n%s", plan)
			}
			judge(t, fx, p, img, false)
			checkFSSize(t, img, p.partition(2))
		})
	}
}

// TestRestoreImageShrinkCrashImage: a dd image copied while its root was
// mounted read-write (what a dd of a running system is) has a journal to
// replay. It is not mounted in place (that would show the filesystem
// without its last transactions) but copied to scratch, where e2fsck
// replays the journal: a file written and synced just before the copy is
// in the restored root.
func TestRestoreImageShrinkCrashImage(t *testing.T) {
	fx := getFixture(t)
	src := fx.disk
	name := fxHost + "@debian12-dd-backup-20240416-094200"
	setDir := filepath.Join(t.TempDir(), fxHost, name)
	if err := os.MkdirAll(setDir, 0o755); err != nil {
		t.Fatal(err)
	}
	live := filepath.Join(t.TempDir(), "live.img")
	if err := copyFile(src.Path, live, backupset.CompressNone); err != nil {
		t.Fatal(err)
	}
	const written = "written while mounted\n"
	dev := testfs.AttachLoop(t, live, src.RootStart, src.RootSize, false)
	mnt := t.TempDir()
	if err := mountAndRun(dev, mnt, func() error {
		if err := os.WriteFile(filepath.Join(mnt, "home/pi/live.txt"), []byte(written), 0o644); err != nil {
			return err
		}
		unix.Sync()
		return copyFile(live, filepath.Join(setDir, name+".img"), backupset.CompressNone)
	}); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("dumpe2fs", "-h", fmt.Sprintf("%s?offset=%d", filepath.Join(setDir, name+".img"), src.RootStart)).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "needs_recovery") {
		t.Fatalf("the image copied while mounted has no journal to replay (%v):\n%s", err, out)
	}
	img := filepath.Join(t.TempDir(), "small.img")
	p, err := NewPlan(context.Background(), Options{Set: os.DirFS(setDir), SetName: name, LocalDir: setDir,
		Target: img, Size: src.BootStart + src.BootSize + 96<<20, Log: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if p.shrink == nil || !p.shrink.recover || p.shrink.inPlace != "" {
		t.Fatalf("shrink plan %+v; want a scratch copy to replay the journal in", p.shrink)
	}
	if _, err := p.Execute(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, _ := disklayout.ReadFile(img)
	root, _ := disklayout.PartitionByNumber(got, 2)
	if out, err := exec.Command("e2fsck", "-fn", fmt.Sprintf("%s?offset=%d", img, root.Start)).CombinedOutput(); err != nil {
		t.Errorf("e2fsck -fn: %v\n%s", err, out)
	}
	if b, err := testfs.ReadRootFile(img, root.Start, "/home/pi/live.txt"); err != nil || string(b) != written {
		t.Errorf("the file written before the copy: %q, %v", b, err)
	}
}
