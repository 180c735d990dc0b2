package testfs

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCompareDisks(t *testing.T) {
	Require(t, "pidisk")
	dir := t.TempDir()
	src, err := BuildPiDisk(dir, DiskOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cp := filepath.Join(dir, "copy.img")
	copyFile(t, src.Path, cp)
	r, err := CompareDisks(src.Path, cp)
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() {
		t.Fatalf("identical copy: %s", r)
	}
	// Change one file in the copy's root: the report must name it.
	dev := AttachLoop(t, cp, src.RootStart, src.RootSize, false)
	mnt := t.TempDir()
	MountExt4(t, dev, mnt, false)
	if err := os.WriteFile(filepath.Join(mnt, PathHostname), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unixUnmount(mnt); err != nil {
		t.Fatal(err)
	}
	if err := mountExt4(dev, mnt, true); err != nil { // MountExt4's cleanup unmounts it again
		t.Fatal(err)
	}
	r, err = CompareDisks(src.Path, cp)
	if err != nil {
		t.Fatal(err)
	}
	if r.OK() || !strings.Contains(r.String(), PathHostname) {
		t.Fatalf("changed hostname not reported: %s", r)
	}
	// An fstab naming an id that does not exist is a problem.
	if p := CheckIDs(r.Copy, "root=PARTUUID=deadbeef-02 rootwait", "PARTUUID=deadbeef-01 /boot vfat defaults 0 2\n"); len(p) != 2 {
		t.Errorf("CheckIDs = %q", p)
	}
	if p := CheckIDs(r.Copy, "root="+"PARTUUID="+src.RootPARTUUID, src.Fstab); len(p) != 0 {
		t.Errorf("CheckIDs of the fixture = %q", p)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
}
