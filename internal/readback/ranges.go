package readback

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
)

// Ranges records what a writer of a sparse file (a raw disk image whose
// all-zero blocks are holes) writes where, so the file can be proven
// from the disk without reading its holes: Prove reads back exactly the
// ranges written and compares their digests, and proves that everything
// else reads as zeros by asking the filesystem where it holds data
// (SEEK_DATA): only data outside the ranges is read, and it must be
// zeros. A mostly empty 32 GB card image is then proven by reading what
// was copied, not 32 GB.
//
// The digest is a CRC-32C per piece of a range (at most PieceSize bytes,
// pieces cut at multiples of PieceSize in the file), as the Follower
// compares its chunks: it costs next to nothing beside the SHA-256 the
// writer takes anyway, catches any burst of up to 32 bits and all but
// 2^-32 of other changes, and a mismatch names the bytes that differ.
// The offsets and lengths are the record itself: each piece is read
// where it was written.
type Ranges struct {
	spans  []span
	pieces []piece // in file order
	n      int64
	end    int64 // end of the last write: writes must come in order
	err    error
}

type span struct{ off, n int64 }

// piece is a part of a span, within one PieceSize-aligned block.
type piece struct {
	off, n int64
	sum    uint32
}

// PieceSize is the most bytes one digest covers.
const PieceSize = 4 << 20

// NewRanges returns an empty record.
func NewRanges() *Ranges { return &Ranges{} }

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
	r.n += int64(len(p))
	r.end = off + int64(len(p))
	for q, o := p, off; len(q) > 0; {
		k := min(int64(len(q)), PieceSize-o%PieceSize)
		if j := len(r.pieces) - 1; j >= 0 && r.pieces[j].off+r.pieces[j].n == o && o%PieceSize != 0 {
			r.pieces[j].sum = crc32.Update(r.pieces[j].sum, castagnoli, q[:k])
			r.pieces[j].n += k
		} else {
			r.pieces = append(r.pieces, piece{o, k, crc32.Checksum(q[:k], castagnoli)})
		}
		q, o = q[k:], o+k
	}
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
	// The whole file (0: to its end) to the disk and out of the page
	// cache, as the Follower does chunk by chunk.
	if err := writeBack(f, 0, 0); err != nil {
		return Proof{}, fmt.Errorf("drop cached pages: %w", err)
	}
	if o.BeforeRead != nil {
		if err := o.BeforeRead(); err != nil {
			return Proof{}, err
		}
	}
	p := Proof{Size: size, SHA256: sha, How: o.How}
	buf := make([]byte, PieceSize)
	if o.Head != nil {
		head := buf[:min(1<<20, size)]
		if _, err := f.ReadAt(head, 0); err != nil && err != io.EOF {
			return Proof{}, fmt.Errorf("read back: %w", err)
		}
		p.Read += int64(len(head))
		if err := o.Head(head); err != nil {
			return Proof{}, err
		}
	}
	for _, pc := range r.pieces {
		b := buf[:pc.n]
		k, err := f.ReadAt(b, pc.off)
		p.Read += int64(k)
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return Proof{}, fmt.Errorf("read back bytes %d to %d: %w", pc.off, pc.off+pc.n, err)
		}
		if got := crc32.Checksum(b, castagnoli); got != pc.sum {
			return Proof{}, fmt.Errorf("bytes %d to %d read back with CRC-32C %08x, written with %08x: %w",
				pc.off, pc.off+pc.n, got, pc.sum, ErrMismatch)
		}
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
