package blockdevtest

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// BlockNode makes a block device node major:minor in a new folder (root
// only; nothing opens it, so it may name a device this machine lacks)
// and returns its path. The checks stat a target before they read
// sysfs, so a fake sysfs needs real nodes to describe.
func BlockNode(t testing.TB, name string, major, minor uint32) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := unix.Mknod(p, unix.S_IFBLK|0o600, int(unix.Mkdev(major, minor))); err != nil {
		t.Fatalf("mknod %s: %v", p, err)
	}
	t.Cleanup(func() { os.Remove(p) })
	return p
}
