package blockdev_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pibackup/pibackup/internal/blockdev"
	"github.com/pibackup/pibackup/internal/blockdev/blockdevtest"
)

func TestFindSystem(t *testing.T) {
	s := blockdevtest.PiSys(t, blockdevtest.PiMountInfo)
	sys, err := s.FindSystem()
	if err != nil {
		t.Fatal(err)
	}
	if sys.RootPart != (blockdev.Part{Name: "mmcblk0p2", Disk: "mmcblk0", Number: 2}) || sys.BootMount != "/boot/firmware" || sys.BootPart.Name != "mmcblk0p1" {
		t.Errorf("FindSystem = %+v %+v", sys.RootPart, sys.BootPart)
	}
	if d := sys.Disks(); len(d) != 1 || d[0] != "mmcblk0" {
		t.Errorf("Disks = %q", d)
	}
	// Root on a USB disk, boot on the card (Bullseye layout at /boot).
	s2 := blockdevtest.PiSys(t, "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n30 22 179:1 / /boot rw - vfat /dev/mmcblk0p1 rw\n")
	sys, err = s2.FindSystem()
	if err != nil {
		t.Fatal(err)
	}
	if d := sys.Disks(); len(d) != 2 || d[0] != "mmcblk0" || d[1] != "sda" || sys.BootMount != "/boot" {
		t.Errorf("Disks = %q, boot %s", d, sys.BootMount)
	}
	info, err := s.Info("sda")
	if err != nil || info.Model != "Extreme SSD" || info.Size != 1953525168*512 || !info.Removable {
		t.Errorf("Info = %+v, %v", info, err)
	}
	disks, err := s.Disks()
	if err != nil || len(disks) != 2 {
		t.Errorf("Disks = %+v, %v", disks, err)
	}
	mounts, _ := s.Mounts()
	if m, ok := blockdev.MountAt(mounts, "/mnt/My Backups"); !ok || m.Source != "/dev/sda1" {
		t.Errorf("escaped mount point not found: %+v", mounts)
	}
}

func TestParseMountInfoErrors(t *testing.T) {
	for _, bad := range []string{"1 2 3\n", "x 1 8:1 / / rw - ext4 /dev/sda1 rw\n", "1 1 81 / / rw - ext4 /dev/sda1 rw\n"} {
		if _, err := blockdev.ParseMountInfo(strings.NewReader(bad)); err == nil {
			t.Errorf("ParseMountInfo(%q) succeeded", bad)
		}
	}
}

// TestAttachAndCheckTarget uses a real loop device (root only): a disk
// with a mounted filesystem must be refused, an idle one accepted.
func TestAttachAndCheckTarget(t *testing.T) {
	if os.Geteuid() != 0 {
		if strings.Contains(os.Getenv("PIBACKUP_TEST_REQUIRE"), "loop") || os.Getenv("PIBACKUP_TEST_REQUIRE") == "all" {
			t.Fatal("needs root for loop devices")
		}
		t.Skip("needs root for loop devices")
	}
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.Truncate(img, 0); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(64 << 20)
	f.Close()
	a, err := blockdev.AttachPartition(context.Background(), img, 2, 1<<20, 32<<20, false)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Detach()
	if out, err := exec.Command("mkfs.ext4", "-q", a.Path).CombinedOutput(); err != nil {
		t.Fatalf("mkfs: %v %s", err, out)
	}
	h := blockdev.Host()
	if err := h.CheckTarget(a.Path); err != nil {
		t.Errorf("idle loop disk refused: %v", err)
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", a.Path, mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount: %v %s", err, out)
	}
	err = h.CheckTarget(a.Path)
	exec.Command("umount", mnt).Run()
	if !errors.Is(err, blockdev.ErrTargetMounted) {
		t.Errorf("mounted loop disk: %v; want blockdev.ErrTargetMounted", err)
	}
	if err := h.CheckTarget(img, img); !errors.Is(err, blockdev.ErrTargetIsSource) {
		t.Errorf("image that is the source: %v", err)
	}
	if err := a.Detach(); err != nil {
		t.Error(err)
	}
}

// TestMountedPartsBindMount: backupctl reads the running root through a
// read-only bind mount of /, a second mount of the same device. The
// root must still count as mounted at / and read-write (the live dd of
// the root was read in full, its map refused, because the bind mount's
// "ro" hid the real mount).
func TestMountedPartsBindMount(t *testing.T) {
	s := blockdevtest.PiSys(t, blockdevtest.PiMountInfo+"57 22 179:2 / /tmp/backupctl-root-1 ro,relatime - ext4 /dev/mmcblk0p2 rw\n")
	mounted, err := s.MountedParts()
	if err != nil {
		t.Fatal(err)
	}
	m := mounted["mmcblk0p2"]
	if m.MountPoint != "/" || !m.Writable() {
		t.Errorf("root = %+v (writable %v); want the mount at / and writable", m, m.Writable())
	}
	mounts, _ := s.Mounts()
	for _, m := range mounts {
		if m.MountPoint == "/tmp/backupctl-root-1" && !m.Writable() {
			t.Errorf("a read-only bind mount of a read-write filesystem is not writable: %+v", m)
		}
	}
	ro := blockdevtest.PiSys(t, "22 1 179:2 / / ro,relatime - ext4 /dev/mmcblk0p2 ro\n")
	if mounted, _ := ro.MountedParts(); mounted["mmcblk0p2"].Writable() {
		t.Errorf("a read-only root is writable: %+v", mounted["mmcblk0p2"])
	}
}
