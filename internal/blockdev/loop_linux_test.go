package blockdev

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// loopImage makes an empty (sparse) image file of size bytes to attach,
// or skips the test when it cannot attach loop devices (not root); with
// PIBACKUP_TEST_REQUIRE naming loop (or all) that is a failure instead.
func loopImage(t *testing.T, size int64) string {
	t.Helper()
	if os.Geteuid() != 0 {
		if strings.Contains(os.Getenv("PIBACKUP_TEST_REQUIRE"), "loop") || os.Getenv("PIBACKUP_TEST_REQUIRE") == "all" {
			t.Fatal("needs root for loop devices")
		}
		t.Skip("needs root for loop devices")
	}
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, size); err != nil {
		t.Fatal(err)
	}
	return img
}

// TestDetachWaitsForOtherOpeners holds a partition loop device open, as a
// disk scanner or blkid does for a moment, while it is detached: the
// kernel then only marks it for autoclear. Detach must not return before
// the device is really gone, or a restore that ends leaves a loop device
// attached behind it (seen once in TestRestoreFaultSignals).
func TestDetachWaitsForOtherOpeners(t *testing.T) {
	img := loopImage(t, 16<<20)
	a, err := AttachPartition(context.Background(), img, 1, 1<<20, 8<<20, false)
	if err != nil {
		t.Fatal(err)
	}
	dev := a.Path
	sys := filepath.Join("/sys/block", filepath.Base(dev), "loop")
	holder, err := os.Open(dev)
	if err != nil {
		a.Detach()
		t.Fatal(err)
	}
	detached := make(chan error, 1)
	go func() { detached <- a.Detach() }()

	// The event: the kernel has taken the detach and deferred it.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if b, _ := os.ReadFile(filepath.Join(sys, "autoclear")); strings.TrimSpace(string(b)) == "1" {
			break
		}
		if time.Now().After(deadline) {
			holder.Close()
			t.Fatalf("%s never got its autoclear flag after LOOP_CLR_FD", dev)
		}
	}
	select {
	case err := <-detached:
		holder.Close()
		t.Fatalf("Detach returned (%v) while another process still held %s: it is still attached", err, dev)
	default:
	}
	holder.Close()
	if err := <-detached; err != nil {
		t.Fatalf("Detach: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(sys, "backing_file")); err == nil && strings.TrimSpace(string(b)) == img {
		t.Errorf("%s still reads %s after Detach returned", dev, img)
	}
}

// TestWaitDetachedBound: a holder that never lets go ends in an error
// that says so, not in a hang; another file bound to the same device
// number is not ours.
func TestWaitDetachedBound(t *testing.T) {
	sysfs := t.TempDir()
	loop := filepath.Join(sysfs, "block", "loop7", "loop")
	if err := os.MkdirAll(loop, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(loop, "backing_file"), []byte("/var/tmp/a.img\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := waitDetached("/dev/loop7", "/var/tmp/a.img", sysfs, 50*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "another process still has it open") {
		t.Errorf("held device: err = %v; want one naming the holder", err)
	}
	if err := waitDetached("/dev/loop7", "/var/tmp/b.img", sysfs, time.Minute); err != nil {
		t.Errorf("device bound to another file: %v", err)
	}
	if err := waitDetached("/dev/loop8", "/var/tmp/a.img", sysfs, time.Minute); err != nil {
		t.Errorf("unbound device: %v", err)
	}
}

// TestAttachAutoclearMountRO mounts an ext4 at an offset of an image the
// way backupctl reads an offline disk: an autoclear loop device, mounted
// read-only. Nothing can be written through the mount, and once the
// handle is closed and the mount gone the kernel has detached the device
// without anyone asking.
func TestAttachAutoclearMountRO(t *testing.T) {
	const start, size = 1 << 20, 32 << 20
	img := loopImage(t, start+size)
	a, err := AttachPartition(context.Background(), img, 0, start, size, false)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mkfs.ext4", "-q", a.Path).CombinedOutput()
	if derr := a.Detach(); derr != nil {
		t.Fatal(derr)
	}
	if err != nil {
		t.Fatalf("mkfs.ext4: %v %s", err, out)
	}

	dev, handle, err := AttachAutoclear(img, start, size)
	if err != nil {
		t.Fatal(err)
	}
	dir, unmount, err := MountTempRO(dev, "ext4")
	handle.Close() // the mount holds the device now
	if err != nil {
		t.Fatal(err)
	}
	werr := os.WriteFile(filepath.Join(dir, "x"), nil, 0o644)
	if err := unmount(); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(werr, unix.EROFS) {
		t.Errorf("write through the read-only mount: %v; want EROFS", werr)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("mount folder left behind: %v", err)
	}
	real, _ := filepath.EvalSymlinks(img)
	if err := waitDetached(dev, real, "/sys", time.Minute); err != nil {
		t.Errorf("autoclear: %v", err)
	}
}
