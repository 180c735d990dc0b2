package usedblocks

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pibackup/pibackup/internal/testfs"
)

// TestLiveMountedExt4 maps an ext4 that is mounted read-write, through
// its block device as a running system's backup does: the journal's
// "needs recovery" flag makes Analyze refuse it, while Live counts the
// blocks of a file written a moment ago, whose allocation may still sit
// only in the kernel's page cache and the journal.
func TestLiveMountedExt4(t *testing.T) {
	testfs.Require(t, "loop")
	testfs.Require(t, "ext4")
	img := filepath.Join(t.TempDir(), "root.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	const size = 256 << 20
	if err := os.Truncate(img, size); err != nil {
		t.Fatal(err)
	}
	run(t, "mkfs.ext4", "-q", "-F", img)
	dev := testfs.AttachLoop(t, img, 0, 0, false)
	mnt := t.TempDir()
	testfs.MountExt4(t, dev, mnt, false)

	f, err := os.Open(dev) // buffered, as backupctl reads it
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := Analyze(f, size, "ext4")
	if err != nil {
		t.Fatal(err)
	}
	if res.Known || !strings.Contains(res.Reason, "journal") {
		t.Errorf("Analyze of a mounted ext4: known %v, %q; want refused for its journal", res.Known, res.Reason)
	}
	live, known, reason, err := OpenLive(f, size, "")
	if err != nil || !known {
		t.Fatalf("OpenLive: known %v (%s), %v", known, reason, err)
	}
	usedNow := func() int64 {
		ext, known, err := live.Extents(0, size)
		if err != nil || !known {
			t.Fatalf("live extents: known %v, %v", known, err)
		}
		return Total(ext)
	}
	before := usedNow()
	data := make([]byte, 8<<20)
	for i := range data {
		data[i] = byte(i*7 + i/4096)
	}
	w, err := os.Create(filepath.Join(mnt, "new.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Sync(); err != nil { // allocated, committed to the journal
		t.Fatal(err)
	}
	w.Close()
	if grew := usedNow() - before; grew < int64(len(data)) {
		t.Errorf("the live map grew by %d bytes after an 8 MiB file was written; want at least %d", grew, len(data))
	}
}
