package readback

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/pibackup/pibackup/internal/testfs"
)

// TestFollowReadsTheDisk is the proof that the Follower reads the disk,
// not the page cache: the file lives on an ext4 on a loop device, and
// between the writeback of a chunk and its read the test overwrites a
// block of that chunk on the block device itself (O_DIRECT, at the
// physical offset FIEMAP gives). The page cache still holds, or would
// hold, what the writer wrote; only a read from the disk sees the new
// bytes, and the Follower must report them.
func TestFollowReadsTheDisk(t *testing.T) {
	dev, mnt := mountedExt4(t)
	data := randomBytes(t, 3*testChunk+5000)

	// Untouched, the disk proves the file.
	p, err := writeFollowed(t, filepath.Join(mnt, "good"), data, Options{})
	if err != nil || p.SHA256 != sum(data) {
		t.Fatalf("untouched: proof %+v, %v", p, err)
	}

	path := filepath.Join(mnt, "bad")
	corrupted := false
	// The writer waits, once it wrote the second chunk, until the test
	// changed the disk: so the chunk is still dirty in the page cache
	// when the Follower gets to it (no fsync, no flusher in 30 s), and
	// only its own writeback puts it on the disk.
	hooked := make(chan struct{})
	hold := func(written int) {
		if written >= 2*testChunk && hooked != nil {
			<-hooked
			hooked = nil
		}
	}
	_, err = writeFollowed(t, path, data, Options{AfterWriteback: func(off, n int64) error {
		if off != testChunk {
			return nil
		}
		defer func() {
			if !corrupted {
				close(hooked)
			}
		}()
		phys, err := physical(path, off+8192)
		if err != nil {
			return err
		}
		if err := overwriteBlock(dev, phys); err != nil {
			return err
		}
		corrupted = true
		close(hooked)
		return nil
	}}, hold)
	if !corrupted {
		t.Fatalf("the test hook did not corrupt the disk (Finish: %v)", err)
	}
	want := fmt.Sprintf("bytes %d to %d read back from the disk differ from those written", testChunk, 2*testChunk)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Finish after the block on the disk was changed: %v, want %q", err, want)
	}
}

// mountedExt4 makes a 64 MiB ext4 (4 KiB blocks) on a loop device and
// mounts it read-write; it returns the device and the mount point.
func mountedExt4(t *testing.T) (dev, mnt string) {
	t.Helper()
	testfs.Require(t, "loop")
	testfs.Require(t, "ext4")
	img := filepath.Join(t.TempDir(), "ext4.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 64<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-b", "4096", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v: %s", err, out)
	}
	dev = testfs.AttachLoop(t, img, 0, 0, false)
	mnt = t.TempDir()
	testfs.MountExt4(t, dev, mnt, false)
	return dev, mnt
}

// physical is where the byte at off of the file at path is on its
// block device (FS_IOC_FIEMAP, the file synced first).
func physical(path string, off int64) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	// struct fiemap with room for one struct fiemap_extent.
	type extent struct {
		Logical, Physical, Length uint64
		_                         [2]uint64
		Flags                     uint32
		_                         [3]uint32
	}
	var fm struct {
		Start, Length                        uint64
		Flags, Mapped, ExtentCount, Reserved uint32
		Extents                              [1]extent
	}
	const fsIocFiemap, fiemapFlagSync = 0xC020660B, 1
	fm.Start, fm.Length, fm.Flags, fm.ExtentCount = uint64(off), 1, fiemapFlagSync, 1
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, f.Fd(), fsIocFiemap, uintptr(unsafe.Pointer(&fm))); e != 0 {
		return 0, fmt.Errorf("FIEMAP %s: %w", path, e)
	}
	x := fm.Extents[0]
	if fm.Mapped != 1 || x.Logical > uint64(off) || x.Logical+x.Length <= uint64(off) {
		return 0, fmt.Errorf("FIEMAP %s: no extent at %d: %+v", path, off, fm)
	}
	return int64(x.Physical + uint64(off) - x.Logical), nil
}

// overwriteBlock writes 4 KiB of 0x55 at off of the block device dev,
// around the page cache (O_DIRECT, from page-aligned memory).
func overwriteBlock(dev string, off int64) error {
	if off%4096 != 0 {
		return fmt.Errorf("BUG: block device offset %d is not 4 KiB aligned", off)
	}
	buf, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return err
	}
	defer unix.Munmap(buf)
	for i := range buf {
		buf[i] = 0x55
	}
	f, err := os.OpenFile(dev, os.O_WRONLY|unix.O_DIRECT, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.WriteAt(buf, off); err != nil {
		return fmt.Errorf("write %s at %d: %w", dev, off, err)
	}
	return nil
}
