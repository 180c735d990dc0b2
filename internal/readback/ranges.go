package readback

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
)

// Ranges records what a writer of a sparse file (a raw disk image whose
// all-zero blocks are holes) writes where, so the file can be proven
// from the disk without reading its holes: Prove reads back exactly the
// ranges written and compares a digest of their bytes, and proves that
// everything else reads as zeros by asking the filesystem where it holds
// data (SEEK_DATA): only data outside the ranges is read, and it must be
// zeros. A mostly empty 32 GB card image is then proven by reading what
// was copied, not 32 GB.
type Ranges struct {
	spans []span
	h     hash.Hash // the bytes written, in file order
	n     int64
	end   int64 // end of the last write: writes must come in order
	err   error
}

type span struct{ off, n int64 }

// NewRanges returns an empty record.
func NewRanges() *Ranges { return &Ranges{h: sha256.New()} }

// Wrote records that p was written at off. Writes come in increasing
// offset order and do not overlap (imageio.CopySparse, backup's sparse
// writer).
func (r *Ranges) Wrote(p []byte, off int64) {
	if len(p) == 0 || r.err != nil {
		return
	}
	if off < r.end {
		r.err = fmt.Errorf("BUG: write at %d after one that ended at %d", off, r.end)
		return
	}
	r.h.Write(p)
	r.n += int64(len(p))
	r.end = off + int64(len(p))
	if k := len(r.spans); k > 0 && r.spans[k-1].off+r.spans[k-1].n == off {
		r.spans[k-1].n += int64(len(p))
		return
	}
	r.spans = append(r.spans, span{off, int64(len(p))})
}

// Written is how many bytes were written (the data of the file).
func (r *Ranges) Written() int64 { return r.n }

// ErrMismatch marks a file whose bytes on the disk are not those written.
var ErrMismatch = errors.New("read back from the disk, the file is not what was written")

// ProveOptions configure Ranges.Prove.
type ProveOptions struct {
	// Head, if set, checks the first bytes of the file (up to 1 MiB,
	// holes as zeros), as read back: a disk image's partition table.
	Head func(head []byte) error
	// BeforeRead, if set, is called once the file's pages are dropped,
	// right before it is read back; tests change the file there.
	BeforeRead func() error
	How        string
}

// Prove checks the file at path, size bytes long and complete on the
// disk (its writer closed it after an fsync), against what was recorded:
// its pages are dropped from the page cache, every recorded range is
// read back and its bytes' digest compared, and every byte the
// filesystem holds outside those ranges must be zero. The proof's
// SHA-256 is the caller's (the whole file, holes as zeros, hashed while
// writing): Prove shows the disk holds what was hashed.
func (r *Ranges) Prove(path string, size int64, sha string, o ProveOptions) (Proof, error) {
	if r.err != nil {
		return Proof{}, r.err
	}
	f, err := os.Open(path)
	if err != nil {
		return Proof{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Proof{}, err
	}
	if fi.Size() != size {
		return Proof{}, fmt.Errorf("%d bytes on the disk, %d written: %w", fi.Size(), size, ErrMismatch)
	}
	if err := dropPages(f); err != nil {
		return Proof{}, fmt.Errorf("drop cached pages: %w", err)
	}
	if o.BeforeRead != nil {
		if err := o.BeforeRead(); err != nil {
			return Proof{}, err
		}
	}
	p := Proof{Size: size, SHA256: sha, How: o.How}
	buf := make([]byte, 1<<20)
	if o.Head != nil {
		head := buf[:min(int64(len(buf)), size)]
		if _, err := f.ReadAt(head, 0); err != nil && err != io.EOF {
			return Proof{}, fmt.Errorf("read back: %w", err)
		}
		p.Read += int64(len(head))
		if err := o.Head(head); err != nil {
			return Proof{}, err
		}
	}
	h := sha256.New()
	for _, s := range r.spans {
		if err := readRange(f, s.off, s.n, buf, h); err != nil {
			return Proof{}, fmt.Errorf("read back: %w", err)
		}
		p.Read += s.n
	}
	if got, want := h.Sum(nil), r.h.Sum(nil); !bytes.Equal(got, want) {
		return Proof{}, fmt.Errorf("the %d bytes written in %d ranges read back with sha256 %s, written %s: %w",
			r.n, len(r.spans), hex.EncodeToString(got), hex.EncodeToString(want), ErrMismatch)
	}
	// What the filesystem holds outside the ranges must read as zeros.
	extra, err := r.checkOutside(f, size, buf)
	p.Read += extra
	if err != nil {
		return Proof{}, err
	}
	if fi, err := f.Stat(); err != nil || fi.Size() != size {
		return Proof{}, fmt.Errorf("%d bytes on the disk after the read-back, %d written (%v): %w", fi.Size(), size, err, ErrMismatch)
	}
	return p, nil
}

func readRange(f *os.File, off, n int64, buf []byte, w io.Writer) error {
	for n > 0 {
		b := buf[:min(n, int64(len(buf)))]
		k, err := f.ReadAt(b, off)
		w.Write(b[:k])
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		off += int64(k)
		n -= int64(k)
	}
	return nil
}

// checkOutside reads what the filesystem stores outside the recorded
// ranges (normally nothing: the block around the end of a range at
// most) and fails unless it is all zeros. It returns the bytes read.
func (r *Ranges) checkOutside(f *os.File, size int64, buf []byte) (int64, error) {
	var read int64
	zeros := func(off, end int64) error {
		for off < end {
			b := buf[:min(end-off, int64(len(buf)))]
			k, err := f.ReadAt(b, off)
			read += int64(k)
			if i := firstNonZero(b[:k]); i >= 0 {
				return fmt.Errorf("data at offset %d, where nothing was written: %w", off+int64(i), ErrMismatch)
			}
			if err != nil {
				if err == io.EOF {
					return nil
				}
				return err
			}
			off += int64(k)
		}
		return nil
	}
	i := 0 // the first span that may overlap what comes next
	err := dataExtents(f, size, func(off, end int64) error {
		for off < end {
			for i < len(r.spans) && r.spans[i].off+r.spans[i].n <= off {
				i++
			}
			if i == len(r.spans) || r.spans[i].off >= end {
				return zeros(off, end)
			}
			if s := r.spans[i]; s.off > off {
				if err := zeros(off, s.off); err != nil {
					return err
				}
			}
			off = r.spans[i].off + r.spans[i].n
		}
		return nil
	})
	return read, err
}

func firstNonZero(b []byte) int {
	for i, c := range b {
		if c != 0 {
			return i
		}
	}
	return -1
}
