package imageio

import (
	"bytes"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"

	"github.com/pibackup/pibackup/internal/testfs"
	"github.com/pibackup/pibackup/internal/usedblocks"
)

// mutatingReader lets a test change the filesystem under a copy: the
// first read at or past trigger runs mutate first, as a running system
// allocating and writing blocks while the backup is in an earlier part of
// the disk.
type mutatingReader struct {
	f       *os.File
	trigger int64
	mutate  func()
	once    sync.Once
}

func (m *mutatingReader) ReadAt(p []byte, off int64) (int, error) {
	if off >= m.trigger {
		m.once.Do(m.mutate)
	}
	return m.f.ReadAt(p, off)
}

// TestLiveMapCatchesLateAllocations copies an ext4 whose third block
// group gets new blocks (data written, bitmap bits set) once the copy has
// begun in the first group. With a map read once before the copy, those
// blocks are zeros in the image (the control run shows it); a live
// region maps each group when the copy reaches it, so they are there.
func TestLiveMapCatchesLateAllocations(t *testing.T) {
	testfs.Require(t, "ext4")
	img := filepath.Join(t.TempDir(), "root.img")
	const size = 512 << 20
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, size); err != nil {
		t.Fatal(err)
	}
	// No group checksums: every group's bitmap is read, none is
	// skipped as BLOCK_UNINIT, so setting bits is all an allocation needs.
	run(t, "mkfs.ext4", "-q", "-F", "-b", "4096", "-O", "^metadata_csum,^uninit_bg", img)
	out, err := exec.Command("dumpe2fs", img).CombinedOutput()
	if err != nil {
		t.Fatalf("dumpe2fs: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`(?m)^Group 2: \(Blocks (\d+)-\d+\).*\n\s+Block bitmap at (\d+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no group 2 in dumpe2fs output:\n%s", out)
	}
	g2, _ := strconv.ParseInt(string(m[1]), 10, 64)
	bbm, _ := strconv.ParseInt(string(m[2]), 10, 64)
	const bs = 4096
	newBlock := g2 + 5000 // well inside group 2, free on a new filesystem
	data := make([]byte, 16*bs)
	rng := rand.New(rand.NewPCG(7, 8))
	for i := range data {
		data[i] = byte(rng.IntN(256))
	}

	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	allocate := func() {
		if _, err := f.WriteAt(data, newBlock*bs); err != nil {
			t.Error(err)
		}
		first := newBlock - g2
		bm := make([]byte, bs)
		if _, err := f.ReadAt(bm, bbm*bs); err != nil {
			t.Error(err)
		}
		for b := first; b < first+int64(len(data)/bs); b++ {
			bm[b/8] |= 1 << (b % 8)
		}
		if _, err := f.WriteAt(bm, bbm*bs); err != nil {
			t.Error(err)
		}
	}
	live, known, reason, err := usedblocks.OpenLive(f, size, "ext4")
	if err != nil || !known {
		t.Fatalf("OpenLive: known %v (%s), %v", known, reason, err)
	}
	window := live.Window()
	if window != 32768*bs {
		t.Fatalf("window %d; want one 128 MiB group", window)
	}
	before, _, err := live.Extents(0, size)
	if err != nil {
		t.Fatal(err)
	}
	got := func(t *testing.T, opts CopyOptions, extents []Extent) []byte {
		t.Helper()
		var buf bytes.Buffer
		// The trigger is the copy's first read: group 0 is mapped,
		// group 2 is not (a group is mapped when the reader gets near it,
		// at most one extent ahead).
		src := &mutatingReader{f: f, trigger: 0, mutate: allocate}
		if err := WriteStream(&buf, src, size, extents, opts); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()[newBlock*bs : newBlock*bs+int64(len(data))]
	}

	t.Run("map-read-once", func(t *testing.T) {
		// The control: the map as it was before the copy.
		if g := got(t, CopyOptions{}, before); !bytes.Equal(g, make([]byte, len(data))) {
			t.Fatalf("the blocks allocated during the copy are in the image although the map said free; the test proves nothing")
		}
	})
	// Undo the allocation for the live run.
	if _, err := f.WriteAt(make([]byte, len(data)), newBlock*bs); err != nil {
		t.Fatal(err)
	}
	bm := make([]byte, bs)
	f.ReadAt(bm, bbm*bs)
	for b := newBlock - g2; b < newBlock-g2+int64(len(data)/bs); b++ {
		bm[b/8] &^= 1 << (b % 8)
	}
	f.WriteAt(bm, bbm*bs)

	t.Run("live", func(t *testing.T) {
		var maps int
		opts := CopyOptions{Live: []LiveRegion{{Start: 0, Size: size, Window: window, Map: live.Extents,
			OnMap: func(from, to, used int64, err error) {
				maps++
				if err != nil {
					t.Errorf("map %d-%d: %v", from, to, err)
				}
			}}}}
		if g := got(t, opts, nil); !bytes.Equal(g, data) {
			t.Fatalf("the blocks allocated in group 2 while the copy was in group 0 are missing from the image")
		}
		if maps != size/int(window) {
			t.Errorf("%d maps; want one per group (%d)", maps, size/int(window))
		}
	})
}
