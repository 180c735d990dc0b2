// Package usedblocks reads the allocation map of the filesystem in a
// partition (ext2/3/4 block bitmaps, FAT tables) and returns the byte ranges
// that hold data, so a dd-style image needs to read only those instead of
// every block of the card as raspiBackup's dd does.
//
// The rule throughout is: when in doubt, mark it used. A range reported
// free is never read again by a backup, so a wrong "free" loses data while a
// wrong "used" only costs time. Anything this package does not fully
// understand (an unknown filesystem, an ext4 feature that changes the
// allocation map, a journal that still needs replaying, a corrupt
// superblock) makes it answer known=false, and the caller reads the whole
// partition.
//
// Everything works on an io.ReaderAt, so the same code reads a block
// device, an image file or a fuzzer's bytes.
package usedblocks

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"
)

// Extent is a byte range [Off, Off+Len) relative to the start of the
// partition.
type Extent struct {
	Off int64
	Len int64
}

// End is the offset just past the extent.
func (e Extent) End() int64 { return e.Off + e.Len }

// Result is what Analyze learns about one partition.
type Result struct {
	// FSType is the filesystem that was read: "ext4", "vfat", ... It is the
	// caller's fsType, or what the superblock says when that was "".
	FSType string
	// Known is true when Extents is the filesystem's allocation map. When
	// false, Extents is nil and the whole partition must be read.
	Known bool
	// Reason says why Known is false, for the caller's log.
	Reason string
	// Extents are the allocated ranges, sorted, non-overlapping, merged
	// when adjacent, clipped to the partition.
	Extents []Extent
	// BlockSize is the allocation unit (ext block or FAT cluster) in bytes.
	BlockSize int64
}

// Used is the total length of r.Extents.
func (r Result) Used() int64 { return Total(r.Extents) }

// Total is the summed length of ext.
func Total(ext []Extent) int64 {
	var n int64
	for _, e := range ext {
		n += e.Len
	}
	return n
}

// Extents returns the allocated byte ranges of the filesystem of type
// fsType ("ext2", "ext3", "ext4", "vfat", or "" to detect it) in the
// partition r of size bytes. known is false when the filesystem's map
// cannot be trusted or read; the caller then reads the whole partition. err
// is an I/O error only: a corrupt filesystem is reported as known=false.
func Extents(r io.ReaderAt, size int64, fsType string) (ext []Extent, known bool, err error) {
	res, err := Analyze(r, size, fsType)
	return res.Extents, res.Known, err
}

// Analyze is Extents with the reason for known=false and the block size.
func Analyze(r io.ReaderAt, size int64, fsType string) (Result, error) {
	d := &dev{r: r, size: size}
	res := Result{FSType: fsType}
	if fsType == "" {
		res.FSType = d.sniff()
	}
	b := newBuilder(size)
	var err error
	switch res.FSType {
	case "ext2", "ext3", "ext4":
		res.BlockSize, err = extExtents(d, b)
	case "vfat", "fat", "fat12", "fat16", "fat32", "msdos":
		res.BlockSize, err = fatExtents(d, b)
	case "":
		err = unsupported("no filesystem recognised")
	default:
		err = unsupported("no allocation map reader for %s", res.FSType)
	}
	var u *unsupportedError
	if errors.As(err, &u) {
		res.Reason = u.reason
		return res, nil
	}
	if err != nil {
		return res, err
	}
	res.Known = true
	res.Extents = b.finish()
	return res, nil
}

// unsupportedError marks a filesystem we will not trust; Analyze turns it
// into known=false rather than an error, because the caller's answer to it
// (read everything) always works.
type unsupportedError struct{ reason string }

func (e *unsupportedError) Error() string { return e.reason }

func unsupported(format string, args ...any) error {
	return &unsupportedError{reason: fmt.Sprintf(format, args...)}
}

// dev is the partition, with reads past its end turned into "corrupt"
// instead of reads of the next partition.
type dev struct {
	r    io.ReaderAt
	size int64
}

func (d *dev) readAt(p []byte, off int64) error {
	if off < 0 || off > d.size || int64(len(p)) > d.size-off {
		return unsupported("corrupt: read of %d bytes at %d is outside the %d-byte partition", len(p), off, d.size)
	}
	n, err := d.r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("read %d bytes at %d: %w", len(p), off, err)
}

// sniff names the filesystem from its superblock, for fsType "".
func (d *dev) sniff() string {
	buf := make([]byte, 2048)
	if d.readAt(buf, 0) != nil {
		return ""
	}
	if buf[1024+0x38] == 0x53 && buf[1024+0x39] == 0xEF {
		return "ext4" // ext2/3/4 share one reader
	}
	if looksFAT(buf[:512]) {
		return "vfat"
	}
	return ""
}

// maxExtents bounds the memory of a result: 1M extents are 16 MiB. A real
// card's map stays far below; a pathological one (every other block used)
// gets small gaps merged, which only reads a little more.
const maxExtents = 1 << 20

// builder collects used ranges in any order and merges them.
type builder struct {
	ext   []Extent
	limit int64 // partition size: nothing is reported beyond it
	gap   int64 // ranges closer than this are merged (grows under pressure)
	max   int
}

func newBuilder(limit int64) *builder { return &builder{limit: limit, max: maxExtents} }

func (b *builder) add(off, n int64) {
	if off < 0 {
		n += off
		off = 0
	}
	if n > b.limit-off {
		n = b.limit - off
	}
	if n <= 0 {
		return
	}
	// Bitmaps are scanned in order, so most ranges extend the last one.
	if k := len(b.ext); k > 0 {
		last := &b.ext[k-1]
		if off >= last.Off && off <= last.End()+b.gap {
			if e := off + n; e > last.End() {
				last.Len = e - last.Off
			}
			return
		}
	}
	b.ext = append(b.ext, Extent{off, n})
	if len(b.ext) >= b.max {
		b.compact()
		for len(b.ext) > b.max/2 {
			b.gap = max(2*b.gap, 4096)
			b.compact()
		}
	}
}

// compact sorts and merges the ranges, joining those less than b.gap apart.
func (b *builder) compact() {
	slices.SortFunc(b.ext, func(x, y Extent) int { return cmp.Compare(x.Off, y.Off) })
	out := b.ext[:0]
	for _, e := range b.ext {
		if k := len(out); k > 0 && e.Off <= out[k-1].End()+b.gap {
			if e.End() > out[k-1].End() {
				out[k-1].Len = e.End() - out[k-1].Off
			}
			continue
		}
		out = append(out, e)
	}
	b.ext = out
}

func (b *builder) finish() []Extent {
	b.compact()
	return slices.Clip(b.ext)
}
