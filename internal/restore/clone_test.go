package restore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/disklayout"
	"github.com/pibackup/pibackup/internal/testfs"
)

func TestParseRsyncStats(t *testing.T) {
	out := `
Number of files: 121 (reg: 74, dir: 38, link: 5, dev: 4)
Number of created files: 1 (reg: 1)
Number of deleted files: 0
Number of regular files transferred: 2
Total file size: 72,213,728 bytes
Total transferred file size: 1,048,594 bytes
Literal data: 1,048,594 bytes
`
	st := parseRsyncStats(out)
	if st.files != 2 || st.transferred != 1048594 {
		t.Errorf("parseRsyncStats = %+v", st)
	}
}

// TestClone clones a Pi disk image onto a larger image, then changes the
// source and clones again: the second run formats nothing and copies only
// what changed; a third run with no change copies nothing.
func TestClone(t *testing.T) {
	fx := getFixture(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "source.img")
	if err := copyFile(fx.disk.Path, src, backupset.CompressNone); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(dir, "clone.img")
	ctx := context.Background()
	clone := func(wantSync bool) *CloneResult {
		t.Helper()
		p, err := NewClonePlan(ctx, CloneOptions{Source: src, Target: target, Size: 384 << 20, Log: testLogger(t)})
		if err != nil {
			t.Fatalf("NewClonePlan: %v", err)
		}
		t.Logf("plan:\n%s", p)
		if p.Sync != wantSync {
			t.Fatalf("Sync = %v (%s); want %v", p.Sync, p.why, wantSync)
		}
		res, err := p.Execute(ctx)
		if err != nil {
			t.Fatalf("Execute: %v", err)
		}
		t.Logf("clone (sync %v) took %v: root %d bytes in %d files, boot %d bytes written", res.Sync, res.Duration, res.RootTransferred, res.FilesChanged, res.BootWritten)
		judgeClone(t, fx, src, target)
		return res
	}
	first := clone(false)
	if first.RootTransferred < 60<<20 {
		t.Errorf("first clone sent only %d bytes", first.RootTransferred)
	}

	// Change the source: one new 1 MiB file, one changed file.
	func() {
		d, _ := disklayout.ReadFile(src)
		root, _ := disklayout.PartitionByNumber(d, 2)
		dev := testfs.AttachLoop(t, src, root.Start, root.Size, false)
		mnt := t.TempDir()
		if err := mountAndRun(dev, mnt, func() error {
			if err := os.WriteFile(filepath.Join(mnt, "home/pi/new.bin"), make([]byte, 1<<20), 0o644); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(mnt, testfs.PathHostname), []byte("changed\n"), 0o644)
		}); err != nil {
			t.Fatal(err)
		}
	}()
	second := clone(true)
	if second.RootTransferred < 1<<20 || second.RootTransferred > 2<<20 || second.FilesChanged != 2 {
		t.Errorf("second run sent %d bytes in %d files; want just over 1 MiB in 2 files", second.RootTransferred, second.FilesChanged)
	}
	if second.BootWritten > 4<<20 {
		t.Errorf("second run wrote %d bytes of the unchanged boot partition", second.BootWritten)
	}
	third := clone(true)
	if third.RootTransferred != 0 || third.FilesChanged != 0 {
		t.Errorf("third run sent %d bytes in %d files; want nothing", third.RootTransferred, third.FilesChanged)
	}

	// Another disk's clone marker does not count: a different source
	// gets a full clone.
	other := filepath.Join(dir, "other.img")
	if err := copyFile(fx.sets["dd"]+"/"+filepath.Base(fx.sets["dd"])+".img", other, backupset.CompressNone); err != nil {
		t.Fatal(err)
	}
	p, err := NewClonePlan(ctx, CloneOptions{Source: target, Target: other, Log: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if p.Sync {
		t.Error("a disk that is not our clone of this source was planned as a sync")
	}
	if _, err := NewClonePlan(ctx, CloneOptions{Source: src, Target: src}); !errors.Is(err, ErrTarget) && !errors.Is(err, ErrSameDisk) {
		t.Errorf("clone onto itself: %v", err)
	}
}

func mountAndRun(dev, mnt string, fn func() error) error {
	if out, err := exec.Command("mount", dev, mnt).CombinedOutput(); err != nil {
		return fmt.Errorf("mount: %v %s", err, out)
	}
	err := fn()
	if out, uerr := exec.Command("umount", mnt).CombinedOutput(); uerr != nil && err == nil {
		err = fmt.Errorf("umount: %v %s", uerr, out)
	}
	return err
}

// judgeClone checks a clone against its source: fsck of both
// filesystems, trees equal, ids its own, cmdline.txt and fstab naming them.
func judgeClone(t *testing.T, fx *fixture, src, img string) {
	t.Helper()
	s, err := disklayout.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	got, err := disklayout.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if got.DiskID == s.DiskID {
		t.Errorf("clone shares the disk id %s", got.DiskID)
	}
	boot, _ := disklayout.PartitionByNumber(got, 1)
	root, _ := disklayout.PartitionByNumber(got, 2)
	sroot, _ := disklayout.PartitionByNumber(s, 2)
	if root.UUID == sroot.UUID || boot.UUID == fx.disk.BootVolumeID {
		t.Errorf("clone shares filesystem ids: root %s boot %s", root.UUID, boot.UUID)
	}
	if out, err := exec.Command("e2fsck", "-fn", fmt.Sprintf("%s?offset=%d", img, root.Start)).CombinedOutput(); err != nil {
		t.Errorf("e2fsck -fn: %v\n%s", err, out)
	}
	fsckVfat(t, img, boot.Start, boot.Size)
	cmdline, err := testfs.ExtractFile(img, boot.Start, "cmdline.txt")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(cmdline), "root=PARTUUID="+root.PartUUID+" ") {
		t.Errorf("cmdline.txt %q does not name %s", cmdline, root.PartUUID)
	}
	fstab, err := testfs.ReadRootFile(img, root.Start, "/etc/fstab")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(fstab), "PARTUUID="+root.PartUUID+" ") || !strings.Contains(string(fstab), "PARTUUID="+boot.PartUUID+" ") {
		t.Errorf("fstab does not name the clone's partitions:\n%s", fstab)
	}
	a := mountRO(t, src, sroot.Start, sroot.Size)
	b := mountRO(t, img, root.Start, root.Size)
	diffs, err := testfs.Compare(a, b, testfs.CompareOptions{Ignore: []string{"etc/fstab", cloneMarker}})
	if err != nil {
		t.Fatal(err)
	}
	if len(diffs) > 0 {
		t.Errorf("clone differs from the source: %s", testfs.FormatDiffs(diffs, 20))
	}
}
