package usedblocks

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// FuzzExtents feeds Analyze corrupt filesystems. It must not panic, must
// not read outside the partition (the reader fails such reads, which
// fails the run), and whatever it calls used must be well-formed.
//
// The input is the head of a partition (superblock, descriptors, the
// first bitmaps or FAT) plus its size; the rest reads as zeros. Inputs
// stay small, which the fuzzer needs (it stalls minimising 700 KiB
// inputs), while the filesystems they describe have many groups.
//
// Seeds are the heads of real filesystems made by mkfs when it is
// installed, so the fuzzer starts from structures that parse.
//
//	go test -run '^$' -fuzz FuzzExtents -fuzztime 60s -fuzzminimizetime 0 ./internal/usedblocks
//
// (-fuzzminimizetime 0: on a loaded 2-core box minimising each new input
// stalls the run for tens of seconds.)
func FuzzExtents(f *testing.F) {
	dir := f.TempDir()
	seeds := []struct {
		tool string
		size int64 // KiB
		args []string
	}{
		{"mkfs.ext4", 64, []string{"-q", "-F", "-b", "1024", "-N", "16"}},
		{"mkfs.ext4", 768, []string{"-q", "-F", "-b", "1024", "-N", "16", "-g", "256", "-O", "meta_bg,^resize_inode,^has_journal"}},
		{"mkfs.ext4", 768, []string{"-q", "-F", "-b", "1024", "-N", "16", "-g", "256", "-O", "^metadata_csum,uninit_bg,^has_journal"}},
		{"mkfs.ext4", 512, []string{"-q", "-F", "-t", "ext2", "-b", "1024", "-N", "16", "-g", "256"}},
		{"mkfs.vfat", 256, []string{"-F", "12"}},
	}
	for i, s := range seeds {
		img := filepath.Join(dir, "seed"+string(rune('a'+i)))
		if err := os.WriteFile(img, make([]byte, s.size<<10), 0o644); err != nil {
			f.Fatal(err)
		}
		args := append(s.args, img)
		if s.tool == "mkfs.vfat" {
			args = append(append([]string{"-C"}, s.args...), img, strconv.FormatInt(s.size, 10))
			os.Remove(img)
		}
		if out, err := exec.Command(s.tool, args...).CombinedOutput(); err != nil {
			f.Logf("seed %v: %v: %s", args, err, out)
			continue
		}
		b, err := os.ReadFile(img)
		if err != nil {
			f.Fatal(err)
		}
		head := b[:min(len(b), 16<<10)]
		f.Add(head, uint32(len(b)), uint8(i))
	}
	f.Add(make([]byte, 4096), uint32(1<<20), uint8(0))

	f.Fuzz(func(t *testing.T, data []byte, size uint32, typ uint8) {
		fsType := []string{"ext4", "vfat", ""}[int(typ)%3]
		size %= 64 << 20 // bounds the work per input: groups, FAT entries
		if size < uint32(len(data)) {
			size = uint32(len(data))
		}
		res, err := Analyze(zeroTail{data: data, size: int64(size)}, int64(size), fsType)
		if err != nil {
			t.Fatalf("Analyze: %v (the reader never fails, so this read outside the partition)", err)
		}
		if !res.Known {
			if res.Extents != nil || res.Reason == "" {
				t.Fatalf("unknown with extents %v, reason %q", res.Extents, res.Reason)
			}
			return
		}
		var end int64
		for i, e := range res.Extents {
			if e.Len <= 0 || e.Off < end || (i > 0 && e.Off == end) || e.End() > int64(size) {
				t.Fatalf("bad extent %d %+v after end %d (size %d)", i, e, end, size)
			}
			end = e.End()
		}
	})
}

// zeroTail is a partition of size bytes that starts with data and reads as
// zeros after it. Reads past size fail.
type zeroTail struct {
	data []byte
	size int64
}

func (z zeroTail) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > z.size {
		return 0, fmt.Errorf("read of %d at %d outside %d bytes", len(p), off, z.size)
	}
	clear(p)
	if off < int64(len(z.data)) {
		copy(p, z.data[off:])
	}
	return len(p), nil
}
