package imageio

import (
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pibackup/pibackup/internal/testfs"
)

type discardAt struct{}

func (discardAt) WriteAt(b []byte, _ int64) (int, error) { return len(b), nil }

// TestCopyReadsOnlyExtents copies scattered extents of a block device
// whose readahead is large (4 MiB, as some USB and SD readers have) and
// counts what the device delivered: only the extents, not readahead past
// each of them. A fresh loop device has an empty page cache, so every
// byte read is counted.
func TestCopyReadsOnlyExtents(t *testing.T) {
	ext, img := readaheadDisk(t)
	// The file itself, and the file behind a wrapper (a mounted FAT's
	// boot sector patched on the way), each on a loop device of its own.
	for _, wrap := range []bool{false, true} {
		dev, name := readaheadLoop(t, img)
		f, err := os.Open(dev)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var src io.ReaderAt = f
		if wrap {
			src = fileWrapper{f}
		}
		before := sectorsRead(t, name)
		if _, err := CopySparse(discardAt{}, src, ext, CopyOptions{}); err != nil {
			t.Fatal(err)
		}
		got, want := (sectorsRead(t, name)-before)*512, Total(ext)
		t.Logf("%T: extents %d KiB, device delivered %d KiB", src, want>>10, got>>10)
		if float64(got) > 1.05*float64(want) {
			t.Errorf("%T: the copy made the device deliver %d bytes for %d bytes of extents: readahead read free space", src, got, want)
		}
	}
}

// TestCopyAfterProbeReadsOnlyExtents is TestCopyReadsOnlyExtents on a
// device someone read a little of before the copy, as backupctl reads the
// partition table and the superblocks first. Those reads leave pages in
// the cache that the kernel's readahead marked; a copy reaching such a
// page starts readahead of its own although it asked for none (the
// kernel's FADV_RANDOM turns off only the readahead of pages not cached).
// On the soak's fixture that was 14 MiB of free FAT read for 4 MiB used.
func TestCopyAfterProbeReadsOnlyExtents(t *testing.T) {
	ext, img := readaheadDisk(t)
	dev, name := readaheadLoop(t, img)
	// The probe: a partition table and a superblock at the start of
	// each run, read the ordinary way.
	probe, err := os.Open(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	buf := make([]byte, 4096)
	for _, e := range ext {
		if _, err := probe.ReadAt(buf, e.Off); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	before := sectorsRead(t, name)
	if _, err := CopySparse(discardAt{}, f, ext, CopyOptions{}); err != nil {
		t.Fatal(err)
	}
	got, want := (sectorsRead(t, name)-before)*512, Total(ext)
	t.Logf("extents %d KiB, device delivered %d KiB after the probe", want>>10, got>>10)
	// The probe's pages are inside the extents: the copy reads them
	// again (it drops what is cached) and nothing else.
	if got != want {
		t.Errorf("the copy made the device deliver %d bytes for %d bytes of extents: the probe's readahead marks read free space", got, want)
	}
}

// readaheadDisk is a 256 MiB image and the extents the readahead tests
// copy of it: 16 runs of 8 MiB, 16 MiB apart, 128 MiB to read, each run
// in reads the kernel sees as sequential.
func readaheadDisk(t *testing.T) ([]Extent, string) {
	testfs.Require(t, "loop")
	var ext []Extent
	for i := range int64(16) {
		ext = append(ext, Extent{Off: i * 16 << 20, Len: 8 << 20})
	}
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 256<<20); err != nil {
		t.Fatal(err)
	}
	return ext, img
}

// readaheadLoop attaches img to a new loop device with a 4 MiB
// readahead, whose page cache is empty.
func readaheadLoop(t *testing.T, img string) (dev, name string) {
	dev = testfs.AttachLoop(t, img, 0, 0, true)
	name = filepath.Base(dev)
	if err := os.WriteFile("/sys/block/"+name+"/queue/read_ahead_kb", []byte("4096\n"), 0); err != nil {
		t.Fatal(err)
	}
	return dev, name
}

type fileWrapper struct{ f *os.File }

func (w fileWrapper) ReadAt(b []byte, off int64) (int, error) { return w.f.ReadAt(b, off) }
func (w fileWrapper) File() *os.File                          { return w.f }

func sectorsRead(t *testing.T, dev string) int64 {
	t.Helper()
	b, err := os.ReadFile("/sys/block/" + dev + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseInt(strings.Fields(string(b))[2], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
