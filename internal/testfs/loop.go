package testfs

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// AttachLoop attaches size bytes of imagePath starting at offset to a free
// loop device and returns its path (/dev/loopN). The device is detached in
// t.Cleanup; only that device, never "all loops of this file", because
// other tests may be using the same machine. size 0 means "to the end of
// the file".
//
// A loop device per partition is used because partition nodes
// (/dev/loopNpM) do not appear in every container.
func AttachLoop(t testing.TB, imagePath string, offset, size int64, readOnly bool) string {
	t.Helper()
	dev, err := attachLoop(context.Background(), imagePath, offset, size, readOnly)
	if err != nil {
		t.Fatalf("AttachLoop: %v", err)
	}
	t.Cleanup(func() {
		if err := detachLoop(context.Background(), dev); err != nil {
			t.Errorf("AttachLoop cleanup: %v", err)
		}
	})
	return dev
}

// MountExt4 mounts the ext4 file system on dev at dir and unmounts it in
// t.Cleanup. The mount always uses noatime: Compare reads every file, and
// with relatime those reads would rewrite the atimes it may be asked to
// compare.
func MountExt4(t testing.TB, dev, dir string, readOnly bool) {
	t.Helper()
	if err := mountExt4(dev, dir, readOnly); err != nil {
		t.Fatalf("MountExt4: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			t.Errorf("MountExt4 cleanup: unmount %s: %v", dir, err)
		}
	})
}

func loopArgs(imagePath string, offset, size int64, readOnly bool) []string {
	args := []string{"--find", "--show"}
	if readOnly {
		args = append(args, "--read-only")
	}
	args = append(args, "--offset", strconv.FormatInt(offset, 10))
	if size > 0 {
		args = append(args, "--sizelimit", strconv.FormatInt(size, 10))
	}
	return append(args, imagePath)
}

func attachLoop(ctx context.Context, imagePath string, offset, size int64, readOnly bool) (string, error) {
	out, err := run(ctx, nil, nil, "losetup", loopArgs(imagePath, offset, size, readOnly)...)
	if err != nil {
		return "", fmt.Errorf("attach %s: %w", imagePath, err)
	}
	dev := strings.TrimSpace(string(out))
	if !strings.HasPrefix(dev, "/dev/loop") {
		return "", fmt.Errorf("attach %s: losetup printed %q, want /dev/loopN", imagePath, dev)
	}
	return dev, nil
}

func detachLoop(ctx context.Context, dev string) error {
	if _, err := run(ctx, nil, nil, "losetup", "--detach", dev); err != nil {
		return fmt.Errorf("detach: %w", err)
	}
	return nil
}

func mountExt4(dev, dir string, readOnly bool) error {
	flags := uintptr(unix.MS_NOATIME)
	if readOnly {
		flags |= unix.MS_RDONLY
	}
	if err := unix.Mount(dev, dir, "ext4", flags, ""); err != nil {
		return fmt.Errorf("mount %s on %s: %w", dev, dir, err)
	}
	return nil
}

func unixUnmount(dir string) error { return unix.Unmount(dir, 0) }
