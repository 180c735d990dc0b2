package readback

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// sparseFile writes a sparse file as an image writer does (data at a
// few offsets, holes between, a hole at the end) and returns its path,
// the record, its size and the SHA-256 of all its bytes.
func sparseFile(t *testing.T) (string, *Ranges, int64, string) {
	t.Helper()
	const size = 8 << 20
	p := filepath.Join(t.TempDir(), "img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := NewRanges()
	all := make([]byte, size)
	rng := rand.New(rand.NewPCG(7, 8))
	for _, w := range []struct{ off, n int64 }{{0, 64 << 10}, {64 << 10, 64 << 10}, {1 << 20, 100_000}, {5 << 20, 64 << 10}} {
		b := all[w.off : w.off+w.n]
		for i := range b {
			b[i] = byte(rng.IntN(255) + 1)
		}
		if _, err := f.WriteAt(b, w.off); err != nil {
			t.Fatal(err)
		}
		r.Wrote(b, w.off)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(all)
	return p, r, size, hex.EncodeToString(sum[:])
}

func TestRangesProve(t *testing.T) {
	p, r, size, sha := sparseFile(t)
	var head []byte
	proof, err := r.Prove(p, size, sha, ProveOptions{How: "ranges", Head: func(b []byte) error { head = bytes.Clone(b); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	if proof.Size != size || proof.SHA256 != sha || proof.How != "ranges" {
		t.Errorf("proof %+v", proof)
	}
	// The ranges and the first MiB (the head), not the holes.
	if want := r.Written() + 1<<20; proof.Read > want+64<<10 || proof.Read < r.Written() {
		t.Errorf("read back %d bytes; want about %d (%d written)", proof.Read, want, r.Written())
	}
	if len(head) != 1<<20 || head[0] == 0 {
		t.Errorf("head check got %d bytes", len(head))
	}
	if _, err := r.Prove(p, size, sha, ProveOptions{Head: func([]byte) error { return errors.New("no partition table") }}); err == nil || !strings.Contains(err.Error(), "no partition table") {
		t.Errorf("failing head check: %v", err)
	}
}

// TestRangesCatchBadWrites: each way the disk can differ from what was
// written is caught, from the disk (the change is made after the pages
// were dropped, through another descriptor).
func TestRangesCatchBadWrites(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(f *os.File) error
		want   string
	}{
		{"byte flipped in a range", func(f *os.File) error {
			b := []byte{0}
			if _, err := f.ReadAt(b, 1<<20+5000); err != nil {
				return err
			}
			b[0] ^= 0xff
			_, err := f.WriteAt(b, 1<<20+5000)
			return err
		}, "bytes 1048576 to 1148576 read back with CRC-32C"},
		{"range punched to a hole", func(f *os.File) error {
			return unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, 5<<20, 64<<10)
		}, "bytes 5242880 to 5308416 read back with CRC-32C"},
		{"data where a hole was", func(f *os.File) error {
			_, err := f.WriteAt([]byte("not zero"), 3<<20)
			return err
		}, "offset 3145728, where nothing was written"},
		{"zeros written where a hole was", func(f *os.File) error {
			_, err := f.WriteAt(make([]byte, 4096), 3<<20)
			return err
		}, ""},
		{"file cut short", func(f *os.File) error {
			return f.Truncate(6 << 20)
		}, "bytes on the disk"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, r, size, sha := sparseFile(t)
			_, err := r.Prove(p, size, sha, ProveOptions{BeforeRead: func() error {
				f, err := os.OpenFile(p, os.O_RDWR, 0)
				if err != nil {
					return err
				}
				defer f.Close()
				if err := c.change(f); err != nil {
					return err
				}
				return f.Sync()
			}})
			if c.want == "" {
				if err != nil {
					t.Fatalf("zeros in a hole are no error: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v; want ErrMismatch saying %q", err, c.want)
			}
			t.Log(err)
		})
	}
}
