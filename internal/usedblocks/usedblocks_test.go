package usedblocks

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/pibackup/pibackup/internal/testfs"
)

// The tests below are soundness tests against the real tools: make a
// filesystem with mkfs, copy ONLY the extents Analyze reports into a zeroed
// image, and check that e2fsck/fsck.vfat accept the copy and every file
// reads back identical. File contents are random, so a block we wrongly
// call free reads back as zeros and fails the comparison. The filesystems
// also hold stale random data in free space (a big file written and
// deleted), so the copy genuinely differs from a dd copy there.

func TestExtSoundness(t *testing.T) {
	testfs.Require(t, "ext4")
	cases := []struct {
		name string
		mkfs []string // after mkfs.ext4 -q -F
		size int64
	}{
		// Debian 12 defaults: 64bit, flex_bg, metadata_csum. -g makes
		// several groups so that BLOCK_UNINIT ones exist.
		{"4k-default", []string{"-b", "4096", "-g", "4096"}, 128 << 20},
		{"4k-no64bit", []string{"-b", "4096", "-g", "4096", "-O", "^64bit"}, 128 << 20},
		{"4k-no-flex_bg", []string{"-b", "4096", "-g", "4096", "-O", "^flex_bg"}, 128 << 20},
		{"4k-gdt_csum", []string{"-b", "4096", "-g", "4096", "-O", "^metadata_csum,uninit_bg"}, 128 << 20},
		{"4k-gdt_csum-64bit", []string{"-b", "4096", "-g", "4096", "-O", "^metadata_csum,uninit_bg,64bit"}, 128 << 20},
		{"4k-sparse_super2", []string{"-b", "4096", "-g", "4096", "-O", "sparse_super2"}, 128 << 20},
		{"4k-full-groups", []string{"-b", "4096"}, 300 << 20},
		{"1k-default", []string{"-b", "1024"}, 96 << 20},
		{"1k-no64bit-no-flex_bg", []string{"-b", "1024", "-O", "^64bit,^flex_bg"}, 96 << 20},
		{"1k-meta_bg", []string{"-b", "1024", "-g", "1024", "-O", "meta_bg,^resize_inode,^64bit"}, 96 << 20},
		{"4k-meta_bg-64bit", []string{"-b", "4096", "-g", "256", "-O", "meta_bg,^resize_inode"}, 96 << 20},
		{"ext3", []string{"-t", "ext3", "-b", "1024"}, 96 << 20},
		{"ext2", []string{"-t", "ext2", "-b", "4096", "-g", "4096"}, 96 << 20},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			src := filepath.Join(dir, "src")
			populate(t, src, 24<<20)
			img := filepath.Join(dir, "fs.img")
			makeExt(t, img, tc.size, tc.mkfs, src)

			res := analyzeFile(t, img, "ext4")
			if !res.Known {
				t.Fatalf("Analyze: known=false: %s", res.Reason)
			}
			sb := dumpe2fs(t, img)
			used := (sb["Block count"] - sb["Free blocks"]) * sb["Block size"]
			t.Logf("extents %d (%d ranges), superblock says %d used of %d; %d BLOCK_UNINIT groups",
				res.Used(), len(res.Extents), used, sb["Block count"]*sb["Block size"], sb["uninit"])
			if res.Used() != used {
				t.Errorf("extents total %d, dumpe2fs used %d (blocks %d - free %d) × %d",
					res.Used(), used, sb["Block count"], sb["Free blocks"], sb["Block size"])
			}

			cp := filepath.Join(dir, "copy.img")
			copyExtents(t, img, cp, res.Extents)
			run(t, "e2fsck", "-fn", cp)
			out := filepath.Join(dir, "out")
			if err := os.Mkdir(out, 0o755); err != nil {
				t.Fatal(err)
			}
			run(t, "debugfs", "-R", "rdump / "+out, cp)
			compareTrees(t, src, out)

			// The copy must differ from the original only where the
			// original had stale data: prove the fixture meant something.
			if same(t, img, cp) {
				t.Errorf("copy is identical to the original: no free space with stale data was skipped")
			}
		})
	}
}

// TestExtRefuses checks the cases where the map must not be trusted.
func TestExtRefuses(t *testing.T) {
	testfs.Require(t, "ext4")
	dir := t.TempDir()
	img := filepath.Join(dir, "fs.img")
	makeExt(t, img, 32<<20, []string{"-b", "4096"}, "")
	good, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	setLE32 := func(b []byte, off int, mask uint32) {
		v := uint32(b[off]) | uint32(b[off+1])<<8 | uint32(b[off+2])<<16 | uint32(b[off+3])<<24
		v |= mask
		b[off], b[off+1], b[off+2], b[off+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
	}
	cases := []struct {
		name   string
		mutate func(b []byte)
		size   int64
		reason string
	}{
		{"needs_recovery", func(b []byte) { setLE32(b, 1024+0x60, incompatRecover) }, 0, "journal needs recovery"},
		{"errors", func(b []byte) { b[1024+0x3A] |= extStateErrors }, 0, "errors"},
		{"bigalloc", func(b []byte) { setLE32(b, 1024+0x64, roCompatBigalloc) }, 0, "bigalloc"},
		{"unknown incompat", func(b []byte) { setLE32(b, 1024+0x60, 1<<30) }, 0, "unknown ext4 incompat"},
		{"partition too small", func(b []byte) {}, 16 << 20, "larger than its"},
		{"no magic", func(b []byte) { b[1024+0x38] = 0 }, 0, "no ext2/3/4 superblock"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := bytes.Clone(good)
			tc.mutate(b)
			size := int64(len(b))
			if tc.size != 0 {
				size = tc.size
			}
			res, err := Analyze(bytes.NewReader(b), size, "ext4")
			if err != nil {
				t.Fatalf("Analyze: %v", err)
			}
			if res.Known || !strings.Contains(res.Reason, tc.reason) {
				t.Errorf("Analyze = known %v, reason %q; want unknown, reason containing %q", res.Known, res.Reason, tc.reason)
			}
		})
	}
}

// TestUninitBadChecksum: a BLOCK_UNINIT flag whose descriptor checksum
// does not verify makes the whole group used.
func TestUninitBadChecksum(t *testing.T) {
	testfs.Require(t, "ext4")
	dir := t.TempDir()
	img := filepath.Join(dir, "fs.img")
	makeExt(t, img, 64<<20, []string{"-b", "4096", "-g", "4096"}, "")
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	before, err := Analyze(bytes.NewReader(b), int64(len(b)), "ext4")
	if err != nil || !before.Known {
		t.Fatalf("Analyze = %+v, %v", before, err)
	}
	// Group 1's descriptor (64 bytes each, table in block 1); flip a
	// byte of its unused-inode count so only the checksum is wrong.
	desc := b[4096+1*64 : 4096+2*64]
	if desc[0x12]&bgBlockUninit == 0 {
		t.Fatalf("group 1 is not BLOCK_UNINIT; fixture changed")
	}
	desc[0x1C] ^= 0xFF
	after, err := Analyze(bytes.NewReader(b), int64(len(b)), "ext4")
	if err != nil || !after.Known {
		t.Fatalf("Analyze = %+v, %v", after, err)
	}
	groupStart := int64(1 * 4096 * 4096)
	if !covers(after.Extents, groupStart, 4096*4096) {
		t.Errorf("group 1 not wholly used after its checksum broke; extents %v", after.Extents)
	}
	if after.Used() <= before.Used() {
		t.Errorf("used %d after, %d before; want more", after.Used(), before.Used())
	}
}

func TestFATSoundness(t *testing.T) {
	testfs.Require(t, "vfat")
	testfs.Require(t, "mtools")
	cases := []struct {
		name string
		mkfs []string
		size int64
		bits string
	}{
		{"fat12", []string{"-F", "12", "-s", "16"}, 16 << 20, "12"},
		{"fat16", []string{"-F", "16"}, 64 << 20, "16"},
		{"fat16-1fat", []string{"-F", "16", "-f", "1", "-s", "8"}, 64 << 20, "16"},
		{"fat32", []string{"-F", "32", "-s", "1"}, 96 << 20, "32"},
		{"fat32-4k", []string{"-F", "32", "-s", "8", "-S", "512"}, 300 << 20, "32"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			src := filepath.Join(dir, "src")
			populate(t, src, tc.size/4)
			img := filepath.Join(dir, "fs.img")
			makeFAT(t, img, tc.size, tc.mkfs, src)

			res := analyzeFile(t, img, "vfat")
			if !res.Known {
				t.Fatalf("Analyze: known=false: %s", res.Reason)
			}
			f, err := os.Open(img)
			if err != nil {
				t.Fatal(err)
			}
			bs := make([]byte, 512)
			_, err = f.ReadAt(bs, 0)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			p, err := parseBPB(bs, tc.size)
			if err != nil {
				t.Fatal(err)
			}
			if strconv.Itoa(p.bits) != tc.bits {
				t.Fatalf("FAT%d, want FAT%s", p.bits, tc.bits)
			}
			free := mtoolsFree(t, img)
			used := int64(p.meta*p.bps) + int64(p.clusters*p.spc*p.bps) - free
			t.Logf("extents %d (%d ranges), mdir says %d used (%d free)", res.Used(), len(res.Extents), used, free)
			if res.Used() != used {
				t.Errorf("extents total %d, want metadata + used clusters %d", res.Used(), used)
			}

			cp := filepath.Join(dir, "copy.img")
			copyExtents(t, img, cp, res.Extents)
			run(t, "fsck.vfat", "-n", cp)
			out := filepath.Join(dir, "out")
			if err := os.Mkdir(out, 0o755); err != nil {
				t.Fatal(err)
			}
			run(t, "mcopy", "-s", "-n", "-m", "-i", cp, "::/*", out)
			compareTrees(t, src, out)
			if same(t, img, cp) {
				t.Errorf("copy is identical to the original: no free space with stale data was skipped")
			}
		})
	}
}

func TestUnknown(t *testing.T) {
	zero := make([]byte, 1<<20)
	swap := bytes.Clone(zero)
	copy(swap[4086:], "SWAPSPACE2")
	cases := []struct {
		name   string
		data   []byte
		fsType string
	}{
		{"zeros sniffed", zero, ""},
		{"swap", swap, "swap"},
		{"btrfs", zero, "btrfs"},
		{"ext4 without superblock", zero, "ext4"},
		{"vfat without BPB", zero, "vfat"},
		{"tiny", zero[:100], ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ext, known, err := Extents(bytes.NewReader(tc.data), int64(len(tc.data)), tc.fsType)
			if err != nil || known || ext != nil {
				t.Errorf("Extents = %v, %v, %v; want nil, false, nil", ext, known, err)
			}
		})
	}
}

// TestIOError: a failing device is an error, not "unknown".
func TestIOError(t *testing.T) {
	_, known, err := Extents(errReader{}, 1<<20, "ext4")
	if err == nil || known {
		t.Errorf("Extents on a failing reader = known %v, err %v; want an error", known, err)
	}
}

type errReader struct{}

func (errReader) ReadAt([]byte, int64) (int, error) { return 0, fmt.Errorf("EIO") }

func TestAddBitmap(t *testing.T) {
	cases := []struct {
		name string
		bm   []byte
		n    uint64
		want [][2]uint64
	}{
		{"empty", make([]byte, 16), 128, nil},
		{"full", bytes.Repeat([]byte{0xFF}, 16), 128, [][2]uint64{{100, 128}}},
		{"full, short group", bytes.Repeat([]byte{0xFF}, 16), 70, [][2]uint64{{100, 70}}},
		{"first and last", append(append([]byte{1}, make([]byte, 14)...), 0x80), 128, [][2]uint64{{100, 1}, {227, 1}}},
		{"run across words", append(append(make([]byte, 7), 0xF0, 0x0F), make([]byte, 7)...), 128, [][2]uint64{{160, 8}}},
		{"alternating", bytes.Repeat([]byte{0x55}, 2), 16, [][2]uint64{{100, 1}, {102, 1}, {104, 1}, {106, 1}, {108, 1}, {110, 1}, {112, 1}, {114, 1}}},
		{"mixed word", []byte{0b1110_0110, 0xFF, 0, 0, 0, 0, 0, 0b1000_0000}, 64, [][2]uint64{{101, 2}, {105, 11}, {163, 1}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got [][2]uint64
			addBitmap(tc.bm, 100, tc.n, func(s, n uint64) {
				if k := len(got); k > 0 && got[k-1][0]+got[k-1][1] == s {
					got[k-1][1] += n // addBitmap may split a run at word edges
					return
				}
				got = append(got, [2]uint64{s, n})
			})
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("addBitmap = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestBuilderBoundsMemory(t *testing.T) {
	b := newBuilder(1 << 40)
	b.max = 1000
	for i := range int64(100000) {
		b.add(i*8192, 4096) // every other 4 KiB block
	}
	ext := b.finish()
	if len(ext) > b.max {
		t.Fatalf("%d extents, want at most %d", len(ext), b.max)
	}
	// Merging must only ever add: every original range is still covered.
	for i := range int64(100000) {
		if !covers(ext, i*8192, 4096) {
			t.Fatalf("range %d lost after merging", i)
		}
	}
}

func TestCRC(t *testing.T) {
	// Check values of the two CRC flavours e2fsprogs uses.
	if got := crc16(0, []byte("123456789")); got != 0xBB3D { // CRC-16/ARC
		t.Errorf("crc16 = %#x, want 0xbb3d", got)
	}
	if got := ^crc32cRaw(^uint32(0), []byte("123456789")); got != 0xE3069283 { // CRC-32C
		t.Errorf("crc32c = %#x, want 0xe3069283", got)
	}
}

// covers reports whether [off, off+n) lies inside one extent.
func covers(ext []Extent, off, n int64) bool {
	for _, e := range ext {
		if e.Off <= off && off+n <= e.End() {
			return true
		}
	}
	return false
}

func analyzeFile(t *testing.T, img, fsType string) Result {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	res, err := Analyze(f, fi.Size(), fsType)
	if err != nil {
		t.Fatalf("Analyze: %v", err)
	}
	return res
}

// populate writes a tree of random files totalling about total bytes:
// sizes around block and cluster edges, a directory big enough to need
// several blocks, symlinks, a hard link and an empty file.
func populate(t *testing.T, dir string, total int64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, uint64(total)))
	write := func(rel string, n int64) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var sum int64
	for i, n := range []int64{0, 1, 511, 512, 513, 1023, 1024, 1025, 4095, 4096, 4097, 65536, 1 << 20, 3<<20 + 17} {
		write(fmt.Sprintf("edge/f%02d", i), n)
		sum += n
	}
	for i := range 300 {
		write(fmt.Sprintf("many/file%03d.txt", i), int64(rng.IntN(3000)))
	}
	if err := os.Symlink("many/file001.txt", filepath.Join(dir, "short-link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(strings.Repeat("long/", 30)+"target", filepath.Join(dir, "long-link")); err != nil {
		t.Fatal(err)
	}
	for i := 0; sum < total; i++ {
		n := min(int64(rng.IntN(2<<20)), total-sum)
		write(fmt.Sprintf("big/d%d/blob%d.bin", i%4, i), n)
		sum += n
	}
}

// makeExt makes an ext filesystem holding stale random data in its free
// space: a big file is written with the tree and then deleted.
func makeExt(t *testing.T, img string, size int64, opts []string, src string) {
	t.Helper()
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	args := append([]string{"-q", "-F"}, opts...)
	if src != "" {
		stale := filepath.Join(src, "stale.bin")
		writeRandom(t, stale, size/4)
		args = append(args, "-d", src)
		defer os.Remove(stale)
	}
	run(t, "mkfs.ext4", append(args, img)...)
	if src != "" {
		run(t, "debugfs", "-w", "-R", "rm /stale.bin", img)
	}
}

// makeFAT makes a FAT filesystem, fills part of it with a random file,
// deletes that, then copies the tree in.
func makeFAT(t *testing.T, img string, size int64, opts []string, src string) {
	t.Helper()
	args := append(append([]string{"-C"}, opts...), img, strconv.FormatInt(size>>10, 10))
	run(t, "mkfs.vfat", args...)
	stale := filepath.Join(filepath.Dir(img), "stale.bin")
	writeRandom(t, stale, size/2)
	run(t, "mcopy", "-i", img, stale, "::/stale.bin")
	run(t, "mdel", "-i", img, "::/stale.bin")
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Type()&fs.ModeSymlink != 0 {
			os.Remove(filepath.Join(src, e.Name())) // FAT has no symlinks
			continue
		}
		run(t, "mcopy", "-s", "-m", "-i", img, filepath.Join(src, e.Name()), "::/")
	}
}

func writeRandom(t *testing.T, path string, n int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rng := rand.NewChaCha8([32]byte{7})
	if _, err := io.CopyN(f, rng, n); err != nil {
		t.Fatal(err)
	}
}

// copyExtents makes dst a zeroed image of src's size holding only ext.
func copyExtents(t *testing.T, src, dst string, ext []Extent) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if err := out.Truncate(fi.Size()); err != nil {
		t.Fatal(err)
	}
	for _, e := range ext {
		if _, err := io.Copy(io.NewOffsetWriter(out, e.Off), io.NewSectionReader(in, e.Off, e.Len)); err != nil {
			t.Fatal(err)
		}
	}
}

func same(t *testing.T, a, b string) bool {
	t.Helper()
	x, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(x, y)
}

// compareTrees checks that every file, directory and symlink of want is in
// got with the same content, and that got has nothing more.
func compareTrees(t *testing.T, want, got string) {
	t.Helper()
	seen := map[string]bool{}
	n := 0
	err := filepath.WalkDir(want, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(want, p)
		seen[rel] = true
		q := filepath.Join(got, rel)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			a, _ := os.Readlink(p)
			b, err := os.Readlink(q)
			if err != nil || a != b {
				t.Errorf("%s: symlink %q, copy has %q (%v)", rel, a, b, err)
			}
		case d.Type().IsRegular():
			a, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			b, err := os.ReadFile(q)
			if err != nil {
				t.Errorf("%s: %v", rel, err)
				return nil
			}
			if !bytes.Equal(a, b) {
				t.Errorf("%s: content differs (%d vs %d bytes)", rel, len(a), len(b))
			}
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(got, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(got, p)
		if !seen[rel] && rel != "lost+found" && !strings.HasPrefix(rel, "lost+found/") {
			t.Errorf("%s: extra in copy", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 300 {
		t.Errorf("compared only %d files", n)
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1", "MTOOLS_NO_VFAT=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

var dumpe2fsField = regexp.MustCompile(`(?m)^(Block count|Free blocks|Block size):\s+(\d+)$`)

// dumpe2fs returns the superblock's block count, free blocks and block
// size, and the number of BLOCK_UNINIT groups (as "uninit").
func dumpe2fs(t *testing.T, img string) map[string]int64 {
	t.Helper()
	out := run(t, "dumpe2fs", img)
	m := map[string]int64{}
	for _, f := range dumpe2fsField.FindAllStringSubmatch(out, -1) {
		m[f[1]], _ = strconv.ParseInt(f[2], 10, 64)
	}
	m["uninit"] = int64(strings.Count(out, "BLOCK_UNINIT"))
	return m
}

var mdirFree = regexp.MustCompile(`([\d ]+) bytes free`)

// mtoolsFree is the free space mdir reports.
func mtoolsFree(t *testing.T, img string) int64 {
	t.Helper()
	out := run(t, "mdir", "-i", img, "::/")
	m := mdirFree.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no free space in mdir output:\n%s", out)
	}
	n, err := strconv.ParseInt(strings.ReplaceAll(strings.TrimSpace(m[1]), " ", ""), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
