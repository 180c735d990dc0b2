package imageio

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/compress"
	"github.com/pibackup/pibackup/internal/disklayout"
	"github.com/pibackup/pibackup/internal/progress"
	"github.com/pibackup/pibackup/internal/testfs"
)

// Fixture disk: 200 MiB of random bytes (stale data everywhere, and a
// "bootloader" in the gaps), an MBR, a FAT32 boot partition, a 2 MiB gap
// and an ext4 root that ends 10 MiB before its partition does.
const (
	diskSize  = 200 << 20
	bootStart = 8192 * 512
	bootSize  = 64 << 20
	rootStart = 143360 * 512
	rootFS    = 120 << 20
)

// buildDisk makes the fixture and returns its path and the source tree
// both filesystems were filled from.
func buildDisk(t *testing.T) (img, src string) {
	t.Helper()
	testfs.Require(t, "ext4")
	testfs.Require(t, "vfat")
	testfs.Require(t, "mtools")
	testfs.Require(t, "sfdisk")
	dir := t.TempDir()
	img = filepath.Join(dir, "disk.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(f, rand.NewChaCha8([32]byte{1}), diskSize); err != nil {
		t.Fatal(err)
	}
	f.Close()
	runIn(t, "label: dos\nstart=8192, size=131072, type=c\nstart=143360, type=83\n", "sfdisk", "-q", img)

	src = filepath.Join(dir, "src")
	populate(t, src, 30<<20)
	run(t, "mkfs.vfat", "-F", "32", "--offset", "8192", img, strconv.Itoa(bootSize>>10))
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Type()&fs.ModeSymlink == 0 && e.Name() != "big" { // FAT: no symlinks; keep it small
			run(t, "mcopy", "-s", "-m", "-i", fmt.Sprintf("%s@@%d", img, bootStart), filepath.Join(src, e.Name()), "::/")
		}
	}
	run(t, "mkfs.ext4", "-q", "-F", "-b", "4096", "-E", fmt.Sprintf("offset=%d,nodiscard", rootStart), "-d", src, img, strconv.Itoa(rootFS>>10)+"k")
	return img, src
}

func TestDiskImage(t *testing.T) {
	img, src := buildDisk(t)
	d, err := disklayout.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	plan, err := PlanDisk(in, d, PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range plan.Parts {
		t.Logf("partition %d %s: known %v %s, read %d of %d", p.Number, p.FSType, p.Known, p.Reason, p.Read, p.Size)
		if !p.Known {
			t.Errorf("partition %d (%s) not known: %s", p.Number, p.FSType, p.Reason)
		}
	}
	t.Logf("plan reads %d of %d bytes in %d extents", plan.Read(), plan.Size, len(plan.Extents))

	dir := t.TempDir()
	sparse := filepath.Join(dir, "sparse.img")
	out, err := os.Create(sparse)
	if err != nil {
		t.Fatal(err)
	}
	var ctr progress.Counter
	if err := WriteSparseFile(out, in, plan, CopyOptions{Progress: &ctr}); err != nil {
		t.Fatal(err)
	}
	out.Close()
	if _, _, _, all := ctr.Snapshot(); all != plan.Read() {
		t.Errorf("progress counted %d, plan reads %d", all, plan.Read())
	}

	t.Run("differs from dd only in free space", func(t *testing.T) {
		dd, err := os.ReadFile(img)
		if err != nil {
			t.Fatal(err)
		}
		ours, err := os.ReadFile(sparse)
		if err != nil {
			t.Fatal(err)
		}
		if len(ours) != len(dd) {
			t.Fatalf("image is %d bytes, disk %d", len(ours), len(dd))
		}
		var inExt, zeroed int64
		pos := int64(0)
		for _, e := range append(plan.Extents, Extent{Off: plan.Size}) {
			if !bytes.Equal(ours[e.Off:e.End()], dd[e.Off:e.End()]) {
				t.Errorf("extent %+v differs from the disk", e)
			}
			if !allZero(ours[pos:e.Off]) {
				t.Errorf("free range [%d,%d) is not zero in the image", pos, e.Off)
			}
			inExt += e.Len
			zeroed += e.Off - pos
			pos = e.End()
		}
		// Outside the partitions everything is the disk's.
		for _, r := range [][2]int64{{0, bootStart}, {bootStart + bootSize, rootStart}} {
			if !bytes.Equal(ours[r[0]:r[1]], dd[r[0]:r[1]]) {
				t.Errorf("gap [%d,%d) differs from the disk", r[0], r[1])
			}
		}
		if zeroed < 100<<20 {
			t.Errorf("only %d bytes of free space skipped", zeroed)
		}
		if bytes.Equal(ours, dd) {
			t.Errorf("image equals the disk")
		}
	})

	t.Run("filesystems intact", func(t *testing.T) {
		checkFilesystems(t, sparse, src)
	})

	t.Run("sparse on disk", func(t *testing.T) {
		var st syscall.Stat_t
		if err := syscall.Stat(sparse, &st); err != nil {
			t.Fatal(err)
		}
		alloc := st.Blocks * 512
		t.Logf("sparse image allocates %d bytes for %d read", alloc, plan.Read())
		if alloc > plan.Read()+1<<20 {
			t.Errorf("image allocates %d bytes, more than the %d read", alloc, plan.Read())
		}
	})

	want := fileSHA(t, sparse)
	for _, c := range []backupset.Compression{backupset.CompressNone, backupset.CompressGzip, backupset.CompressZstd} {
		t.Run("stream "+string(c), func(t *testing.T) {
			var buf bytes.Buffer
			zw, err := compress.NewWriter(&buf, c)
			if err != nil {
				t.Fatal(err)
			}
			if err := WriteStream(zw, in, plan.Size, plan.Extents, CopyOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := zw.Close(); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s stream: %d bytes", c, buf.Len())
			zr, err := compress.NewReader(&buf, c)
			if err != nil {
				t.Fatal(err)
			}
			restored := filepath.Join(t.TempDir(), "restored.img")
			f, err := os.Create(restored)
			if err != nil {
				t.Fatal(err)
			}
			var ctr progress.Counter
			n, err := WriteImage(f, zr, true, &ctr)
			if err != nil {
				t.Fatal(err)
			}
			f.Close()
			if n != plan.Size {
				t.Errorf("WriteImage wrote %d bytes, want %d", n, plan.Size)
			}
			if _, _, _, all := ctr.Snapshot(); all != plan.Size {
				t.Errorf("progress counted %d, want %d", all, plan.Size)
			}
			if got := fileSHA(t, restored); got != want {
				t.Errorf("restored sha256 %s, sparse image %s", got, want)
			}
		})
	}

	t.Run("full read equals dd", func(t *testing.T) {
		full, err := PlanDisk(in, d, PlanOptions{Full: true})
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(t.TempDir(), "full.img")
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := WriteSparseFile(f, in, full, CopyOptions{}); err != nil {
			t.Fatal(err)
		}
		f.Close()
		if got, want := fileSHA(t, p), fileSHA(t, img); got != want {
			t.Errorf("full image sha256 %s, disk %s", got, want)
		}
	})
}

// checkFilesystems runs fsck on both partitions of an image of the fixture
// and compares their files with the source tree.
func checkFilesystems(t *testing.T, img, src string) {
	t.Helper()
	root := fmt.Sprintf("%s?offset=%d", img, rootStart)
	run(t, "e2fsck", "-fn", root)
	out := filepath.Join(t.TempDir(), "root")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, "debugfs", "-R", "rdump / "+out, root)
	compareTrees(t, src, out, nil)

	// fsck.vfat has no offset option: check a copy of the partition.
	boot := filepath.Join(t.TempDir(), "boot.img")
	in, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	bf, err := os.Create(boot)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(bf, io.NewSectionReader(in, bootStart, bootSize)); err != nil {
		t.Fatal(err)
	}
	bf.Close()
	run(t, "fsck.vfat", "-n", boot)
	bout := filepath.Join(t.TempDir(), "boot")
	if err := os.Mkdir(bout, 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, "mcopy", "-s", "-n", "-m", "-i", boot, "::/*", bout)
	compareTrees(t, src, bout, func(rel string, d fs.DirEntry) bool {
		return d.Type()&fs.ModeSymlink != 0 || rel == "big" || strings.HasPrefix(rel, "big/")
	})
}

func TestChunks(t *testing.T) {
	const M = 1 << 20
	cases := []struct {
		name string
		ext  []Extent
		want string // off:len{parts} per chunk
	}{
		{"one small", []Extent{{Off: 4096, Len: 4096}}, "4096:4096[4096+4096]"},
		{"split at 4 MiB", []Extent{{Off: 3 * M, Len: 2 * M}}, "3145728:1048576[3145728+1048576] 4194304:1048576[4194304+1048576]"},
		{"aligned full blocks", []Extent{{Off: 0, Len: 8 * M}}, "0:4194304[0+4194304] 4194304:4194304[4194304+4194304]"},
		{"near extents share a read", []Extent{{Off: 0, Len: 4096}, {Off: 64 << 10, Len: 4096}}, "0:69632[0+4096 65536+4096]"},
		{"far extents do not", []Extent{{Off: 0, Len: 4096}, {Off: (64 << 10) + 4096, Len: 4096}}, "0:4096[0+4096] 69632:4096[69632+4096]"},
		{"no read crosses a block", []Extent{{Off: 4*M - 4096, Len: 4096}, {Off: 4 * M, Len: 4096}}, "4190208:4096[4190208+4096] 4194304:4096[4194304+4096]"},
		{"empty", nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for c := range chunks(slices.Values(tc.ext)) {
				var parts []string
				for _, p := range c.parts {
					parts = append(parts, fmt.Sprintf("%d+%d", p.Off, p.Len))
				}
				got = append(got, fmt.Sprintf("%d:%d[%s]", c.off, c.len(), strings.Join(parts, " ")))
			}
			if g := strings.Join(got, " "); g != tc.want {
				t.Errorf("chunks(%v) = %s, want %s", tc.ext, g, tc.want)
			}
		})
	}
}

// TestCopyFunctions checks CopySparse, WriteStream and WriteImage against
// a model on random data with odd extents, including the zeroing of the
// gaps read along with near extents.
func TestCopyFunctions(t *testing.T) {
	const size = 13<<20 + 1234
	rng := rand.New(rand.NewPCG(3, 4))
	src := make([]byte, size)
	for i := range src {
		src[i] = byte(rng.Uint32())
	}
	clear(src[6<<20 : 7<<20]) // zeros inside an extent: a hole with SkipZeros
	cases := []struct {
		name string
		ext  []Extent
	}{
		{"none", nil},
		{"all", []Extent{{Off: 0, Len: size}}},
		{"odd", []Extent{{Off: 1, Len: 5}, {Off: 700, Len: 1 << 20}, {Off: (1 << 20) + 800, Len: 3}, {Off: 5 << 20, Len: 3 << 20}, {Off: size - 10, Len: 10}}},
		{"many small", func() []Extent {
			var e []Extent
			for off := int64(0); off+512 < size; off += 3 * 4096 {
				e = append(e, Extent{Off: off, Len: 512})
			}
			return e
		}()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := make([]byte, size)
			for _, e := range tc.ext {
				copy(want[e.Off:e.End()], src[e.Off:e.End()])
			}
			for _, skip := range []bool{false, true} {
				dst := &memWriterAt{b: make([]byte, size)}
				if _, err := CopySparse(dst, bytes.NewReader(src), tc.ext, CopyOptions{SkipZeros: skip}); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(dst.b, want) {
					t.Errorf("CopySparse(SkipZeros=%v) differs from the model", skip)
				}
			}
			var stream bytes.Buffer
			if err := WriteStream(&stream, bytes.NewReader(src), size, tc.ext, CopyOptions{}); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(stream.Bytes(), want) {
				t.Errorf("WriteStream differs from the model (%d bytes, want %d)", stream.Len(), size)
			}
			for _, skip := range []bool{false, true} {
				dst := &memWriterAt{b: make([]byte, size)}
				n, err := WriteImage(dst, bytes.NewReader(want), skip, nil)
				if err != nil || n != size {
					t.Fatalf("WriteImage = %d, %v", n, err)
				}
				if !bytes.Equal(dst.b, want) {
					t.Errorf("WriteImage(skipZeros=%v) differs", skip)
				}
				if skip && dst.written > Total(tc.ext)+int64(len(tc.ext)+1)*2*holeSize {
					t.Errorf("WriteImage(skipZeros) wrote %d bytes for %d of data", dst.written, Total(tc.ext))
				}
			}
		})
	}
}

func TestWriteImageSparseFile(t *testing.T) {
	img := make([]byte, 9<<20)
	copy(img[4096:], "data")
	copy(img[5<<20:], "more")
	p := filepath.Join(t.TempDir(), "out.img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n, err := WriteImage(f, bytes.NewReader(img), true, nil)
	if err != nil || n != int64(len(img)) {
		t.Fatalf("WriteImage = %d, %v", n, err)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	if st.Size != int64(len(img)) || st.Blocks*512 > 64<<10 {
		t.Errorf("file is %d bytes with %d allocated; want %d with 2 blocks", st.Size, st.Blocks*512, len(img))
	}
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, img) {
		t.Errorf("content differs")
	}
}

func TestErrors(t *testing.T) {
	src := bytes.NewReader(make([]byte, 20<<20))
	boom := errors.New("boom")
	if _, err := CopySparse(failWriterAt{boom}, src, []Extent{{Off: 0, Len: 20 << 20}}, CopyOptions{}); !errors.Is(err, boom) {
		t.Errorf("CopySparse to a failing writer: %v, want boom", err)
	}
	if err := WriteStream(failWriter{boom}, src, 20<<20, []Extent{{Off: 10 << 20, Len: 1}}, CopyOptions{}); !errors.Is(err, boom) {
		t.Errorf("WriteStream to a failing writer: %v, want boom", err)
	}
	if _, err := CopySparse(&memWriterAt{b: make([]byte, 30<<20)}, src, []Extent{{Off: 19 << 20, Len: 2 << 20}}, CopyOptions{}); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("CopySparse past the source end: %v, want unexpected EOF", err)
	}
	if _, err := WriteImage(failWriterAt{boom}, bytes.NewReader(make([]byte, 1)), false, nil); !errors.Is(err, boom) {
		t.Errorf("WriteImage to a failing writer: %v, want boom", err)
	}
	if _, err := WriteImage(&memWriterAt{b: make([]byte, 10<<20)}, io.MultiReader(bytes.NewReader(make([]byte, 5<<20)), iotestErr{boom}), false, nil); !errors.Is(err, boom) {
		t.Errorf("WriteImage from a failing reader: %v, want boom", err)
	}
}

func TestPlanGapsAndUnknown(t *testing.T) {
	// A disk of zeros: partition 1 unknown (read whole), the rest gaps.
	d := &backupset.Disk{Size: 10 << 20, Partitions: []backupset.Partition{
		{Number: 1, Start: 1 << 20, Size: 2 << 20, FSType: ""},
		{Number: 2, Start: 2 << 20, Size: 2 << 20, FSType: "btrfs"}, // overlaps 1
	}}
	p, err := PlanDisk(bytes.NewReader(make([]byte, 10<<20)), d, PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(p.Extents) != fmt.Sprint([]Extent{{Off: 0, Len: 10 << 20}}) {
		t.Errorf("extents %v, want the whole disk", p.Extents)
	}
	for _, pp := range p.Parts {
		if pp.Known || pp.Reason == "" {
			t.Errorf("partition %d: known %v, reason %q", pp.Number, pp.Known, pp.Reason)
		}
	}
	d.Partitions = append(d.Partitions, backupset.Partition{Number: 3, Start: 9 << 20, Size: 2 << 20})
	// A partition running past the disk's end is clipped, not an error.
	if _, err := PlanDisk(bytes.NewReader(make([]byte, 10<<20)), d, PlanOptions{}); err != nil {
		t.Errorf("partition past the end: %v", err)
	}
}

type memWriterAt struct {
	b       []byte
	written int64
}

func (m *memWriterAt) WriteAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > int64(len(m.b)) {
		return 0, fmt.Errorf("write past end")
	}
	m.written += int64(len(p))
	return copy(m.b[off:], p), nil
}

type failWriterAt struct{ err error }

func (f failWriterAt) WriteAt([]byte, int64) (int, error) { return 0, f.err }

type failWriter struct{ err error }

func (f failWriter) Write([]byte) (int, error) { return 0, f.err }

type iotestErr struct{ err error }

func (r iotestErr) Read([]byte) (int, error) { return 0, r.err }

func allZero(b []byte) bool {
	for len(b) > 0 {
		n := min(len(b), 1<<16)
		if !bytes.Equal(b[:n], make([]byte, n)) {
			return false
		}
		b = b[n:]
	}
	return true
}

func fileSHA(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// populate writes random files totalling about total bytes, with sizes
// around block edges, a big directory, and symlinks.
func populate(t *testing.T, dir string, total int64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(5, uint64(total)))
	var sum int64
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
		sum += n
	}
	for i, n := range []int64{0, 1, 511, 512, 4095, 4096, 4097, 65536, 1 << 20} {
		write(fmt.Sprintf("edge/f%02d", i), n)
	}
	for i := range 200 {
		write(fmt.Sprintf("many/file%03d.txt", i), int64(rng.IntN(3000)))
	}
	if err := os.Symlink("many/file001.txt", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	for i := 0; sum < total; i++ {
		write(fmt.Sprintf("big/blob%d.bin", i), min(int64(rng.IntN(2<<20)), total-sum))
	}
}

// compareTrees checks that the files and symlinks of want (except those
// skip names) are in got with the same content.
func compareTrees(t *testing.T, want, got string, skip func(rel string, d fs.DirEntry) bool) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(want, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(want, p)
		if skip != nil && skip(rel, d) {
			return nil
		}
		q := filepath.Join(got, rel)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			a, _ := os.Readlink(p)
			if b, err := os.Readlink(q); err != nil || a != b {
				t.Errorf("%s: symlink %q, copy %q (%v)", rel, a, b, err)
			}
		case d.Type().IsRegular():
			a, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			b, err := os.ReadFile(q)
			if err != nil || !bytes.Equal(a, b) {
				t.Errorf("%s: content differs (%d vs %d bytes, %v)", rel, len(a), len(b), err)
			}
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 200 {
		t.Errorf("compared only %d files", n)
	}
}

func run(t *testing.T, name string, args ...string) { t.Helper(); runIn(t, "", name, args...) }

func runIn(t *testing.T, stdin, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}
