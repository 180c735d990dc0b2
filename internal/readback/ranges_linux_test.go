package readback

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRangesReadTheDisk is the proof that Ranges.Prove reads the disk:
// the sparse file lives on an ext4 on a loop device, it was just written
// (its pages are in the page cache), and once Prove has dropped them the
// test overwrites a block of a data range on the block device itself
// (O_DIRECT, at the physical offset FIEMAP gives). Only a read from the
// disk sees that, and Prove must fail.
func TestRangesReadTheDisk(t *testing.T) {
	dev, mnt := mountedExt4(t)

	write := func(name string) (string, *Ranges, string) {
		p := filepath.Join(mnt, name)
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		r := NewRanges()
		data := randomBytes(t, 1<<20)
		if _, err := f.WriteAt(data, 4<<20); err != nil {
			t.Fatal(err)
		}
		r.Wrote(data, 4<<20)
		if err := f.Truncate(8 << 20); err != nil {
			t.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
		all := make([]byte, 8<<20)
		copy(all[4<<20:], data)
		s := sha256.Sum256(all)
		return p, r, hex.EncodeToString(s[:])
	}
	p, r, sha := write("good")
	if _, err := r.Prove(p, 8<<20, sha, ProveOptions{}); err != nil {
		t.Fatalf("untouched: %v", err)
	}
	p, r, sha = write("bad")
	changed := false
	_, err := r.Prove(p, 8<<20, sha, ProveOptions{BeforeRead: func() error {
		phys, err := physical(p, 4<<20+8192)
		if err != nil {
			return err
		}
		changed = true
		return overwriteBlock(dev, phys)
	}})
	if !changed {
		t.Fatalf("the disk was not changed: %v", err)
	}
	if !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "read back with CRC-32C") {
		t.Fatalf("Prove after a block of the file was changed on the disk: %v; want the ranges' mismatch", err)
	}
}
