package imageio

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"iter"
	"os"
	"slices"

	"github.com/pibackup/pibackup/internal/progress"
)

const (
	// BlockSize is the read and write unit. Reads are aligned to it on
	// the disk, so an SD card sees large sequential requests.
	BlockSize = 4 << 20
	// buffers in flight between the reader and the writer: two overlap
	// reading with writing. Four made no difference the bench could
	// measure on a loaded box and cost 8 MiB more, which with pgzip on a
	// 4-core Pi Zero 2 W (about 45 MiB of its own) would break the
	// 64 MiB budget.
	buffers = 2
	// holeSize is the granularity of zero detection: the page and ext4
	// block size, the smallest hole a Linux filesystem keeps.
	holeSize = 4096
	// readGap: extents closer than this are read as one, gap included,
	// and the gap is zeroed before it is written. An SD card pays about a
	// millisecond per request, the time to read some tens of KiB.
	readGap = 64 << 10
)

// FileReader is a source that wraps an open file (changing a few bytes
// on the way, like a mounted FAT's boot sector saved as clean): the
// advice on how the source is read goes to that file, or a wrapped disk
// would be read with the kernel's readahead. File may return nil.
type FileReader interface {
	io.ReaderAt
	File() *os.File
}

// CopyOptions tune the copy functions.
type CopyOptions struct {
	// Progress gets Add(n) for every byte of the extents read; a caller
	// that wants a bar calls Phase(name, plan.Read()) first.
	Progress progress.Reporter
	// SkipZeros (CopySparse) leaves 4 KiB blocks that are all zeros
	// unwritten even inside extents, so they become holes too.
	SkipZeros bool
	// Live are regions of the disk (mounted filesystems) whose extents
	// are decided only when the copy reaches them; the extents given to
	// the copy functions must leave them out.
	Live []LiveRegion
}

// LiveRegion is a filesystem that changes while it is copied: Map is
// asked for the used ranges of each Window-sized piece of [Start,
// Start+Size) just before that piece is read (disk-relative offsets).
// When Map cannot tell (known false, or an error), the piece is read
// whole: a wrong "free" would lose data, a wrong "used" only costs time.
type LiveRegion struct {
	Start, Size, Window int64
	Map                 func(from, to int64) (ext []Extent, known bool, err error)
	// OnMap, if set, hears what each piece was mapped to, for the log.
	OnMap func(from, to, used int64, err error)
}

// withLive yields extents and the live regions' extents, each region
// mapped piece by piece as the reader reaches it, in disk order and never
// overlapping.
func withLive(extents []Extent, live []LiveRegion) iter.Seq[Extent] {
	return func(yield func(Extent) bool) {
		var last int64 // end of what was yielded: nothing before it again
		emit := func(e Extent) bool {
			if s := max(e.Off, last); e.End() > s {
				last = e.End()
				return yield(Extent{Off: s, Len: e.End() - s})
			}
			return true
		}
		regions := slices.Clone(live)
		slices.SortFunc(regions, func(a, b LiveRegion) int { return cmp.Compare(a.Start, b.Start) })
		i := 0
		for _, r := range regions {
			for ; i < len(extents) && extents[i].Off < r.Start; i++ {
				if !emit(extents[i]) {
					return
				}
			}
			end := r.Start + r.Size
			for from := r.Start; from < end; {
				to := min(end, from+max(r.Window, BlockSize))
				ext, known, err := r.Map(from, to)
				if !known || err != nil {
					ext = []Extent{{Off: from, Len: to - from}}
				}
				if r.OnMap != nil {
					r.OnMap(from, to, Total(ext), err)
				}
				for _, e := range ext {
					if !emit(e) {
						return
					}
				}
				from = to
			}
		}
		for ; i < len(extents); i++ {
			if !emit(extents[i]) {
				return
			}
		}
	}
}

// CopySparse copies the extents of src to the same offsets of dst, which
// must read as zeros everywhere else (a new or truncated file): nothing
// outside the extents is written. It returns the bytes written.
func CopySparse(dst io.WriterAt, src io.ReaderAt, extents []Extent, opts CopyOptions) (int64, error) {
	var written int64
	err := readExtents(src, withLive(extents, opts.Live), opts, func(c *chunk) error {
		for _, e := range c.parts {
			b := c.buf[e.Off-c.off : e.End()-c.off]
			if !opts.SkipZeros {
				if _, err := dst.WriteAt(b, e.Off); err != nil {
					return fmt.Errorf("write at %d: %w", e.Off, err)
				}
				written += int64(len(b))
				continue
			}
			n, err := WriteNonZero(dst, b, e.Off)
			written += n
			if err != nil {
				return err
			}
		}
		return nil
	})
	return written, err
}

// WriteSparseFile writes the image of src described by p to dst, a
// regular file it truncates: unread ranges and all-zero blocks become
// holes, so the file takes the disk space of the data only.
func WriteSparseFile(dst *os.File, src io.ReaderAt, p *Plan, opts CopyOptions) error {
	if err := dst.Truncate(0); err != nil {
		return fmt.Errorf("truncate %s: %w", dst.Name(), err)
	}
	if err := dst.Truncate(p.Size); err != nil {
		return fmt.Errorf("size %s: %w", dst.Name(), err)
	}
	opts.SkipZeros = true
	if _, err := CopySparse(dst, src, p.Extents, opts); err != nil {
		return fmt.Errorf("image to %s: %w", dst.Name(), err)
	}
	return nil
}

// WriteStream writes the whole image [0, size) of src to w: the extents
// as read, zeros everywhere else. It is for compressed and piped targets,
// which cannot seek; the compressor turns the zeros into a few bytes.
func WriteStream(w io.Writer, src io.ReaderAt, size int64, extents []Extent, opts CopyOptions) error {
	if n := len(extents); n > 0 && extents[n-1].End() > size {
		return fmt.Errorf("extents end at %d, past the %d-byte image", extents[n-1].End(), size)
	}
	for _, r := range opts.Live {
		if r.Start+r.Size > size {
			return fmt.Errorf("live region ends at %d, past the %d-byte image", r.Start+r.Size, size)
		}
	}
	var pos int64
	zeros := make([]byte, 1<<20)
	writeZeros := func(n int64) error {
		for n > 0 {
			k := min(n, int64(len(zeros)))
			if _, err := w.Write(zeros[:k]); err != nil {
				return fmt.Errorf("write zeros at %d: %w", pos, err)
			}
			n -= k
			pos += k
		}
		return nil
	}
	err := readExtents(src, withLive(extents, opts.Live), opts, func(c *chunk) error {
		// The chunk's gaps were zeroed by the reader, so it is written
		// whole.
		if err := writeZeros(c.off - pos); err != nil {
			return err
		}
		if _, err := w.Write(c.buf); err != nil {
			return fmt.Errorf("write at %d: %w", pos, err)
		}
		pos += int64(len(c.buf))
		return nil
	})
	if err != nil {
		return err
	}
	return writeZeros(size - pos)
}

// WriteNonZero writes the 4 KiB blocks (aligned on the disk) of b that are
// not all zeros, merged into runs, at off; the zero ones are skipped, which
// is right only where dst already reads as zeros there (a new file). A
// partial block at either end of b counts on its own, so b may be any
// slice of a longer stream.
func WriteNonZero(dst io.WriterAt, b []byte, off int64) (int64, error) {
	var written int64
	runStart := -1
	flush := func(end int) error {
		if runStart < 0 {
			return nil
		}
		at := off + int64(runStart)
		n, err := dst.WriteAt(b[runStart:end], at)
		written += int64(n)
		runStart = -1
		if err != nil {
			return fmt.Errorf("write at %d: %w", at, err)
		}
		return nil
	}
	var zero [holeSize]byte
	for i := 0; i < len(b); {
		// Block boundaries are aligned on the disk, not in b.
		end := min(len(b), i+holeSize-int((off+int64(i))%holeSize))
		if bytes.Equal(b[i:end], zero[:end-i]) {
			if err := flush(i); err != nil {
				return written, err
			}
		} else if runStart < 0 {
			runStart = i
		}
		i = end
	}
	return written, flush(len(b))
}

// chunk is one aligned read: buf holds [off, off+len(buf)) of the source
// with bytes outside parts zeroed.
type chunk struct {
	off   int64
	buf   []byte
	parts []Extent // the extents inside this chunk, disk-relative
}

// readExtents reads extents in aligned chunks of up to BlockSize in one
// goroutine and hands them, in order, to consume in the calling one, so
// reading the disk and writing (or compressing) overlap. consume must not
// keep c.buf.
func readExtents(src io.ReaderAt, extents iter.Seq[Extent], opts CopyOptions, consume func(c *chunk) error) error {
	rep := progress.OrNop(opts.Progress)
	free := make(chan []byte, buffers)
	for range buffers {
		free <- make([]byte, BlockSize)
	}
	full := make(chan *chunk, buffers)
	stop := make(chan struct{})
	var readErr error
	go func() {
		defer close(full)
		adv := newAdviser(src)
		defer adv.close()
		for c := range chunks(extents) {
			var buf []byte
			select {
			case buf = <-free:
			case <-stop:
				return
			}
			c.buf = buf[:c.len()]
			if err := readFull(src, c.buf, c.off); err != nil {
				readErr = err
				return
			}
			adv.done(c.off, int64(len(c.buf)))
			c.zeroGaps()
			select {
			case full <- c:
			case <-stop:
				return
			}
		}
	}()
	var err error
	for c := range full {
		if err == nil {
			err = consume(c)
			if err != nil {
				close(stop) // the reader stops; the loop drains what it sent
			}
			rep.Add(Total(c.parts))
		}
		free <- c.buf[:cap(c.buf)]
	}
	if err != nil {
		return err
	}
	return readErr
}

// Total is the summed length of ext.
func Total(ext []Extent) int64 {
	var n int64
	for _, e := range ext {
		n += e.Len
	}
	return n
}

func (c *chunk) len() int64 { return c.parts[len(c.parts)-1].End() - c.off }

// zeroGaps clears what was read between the chunk's parts: free space
// must not reach the image, or it would not compress.
func (c *chunk) zeroGaps() {
	pos := c.off
	for _, e := range c.parts {
		clear(c.buf[pos-c.off : e.Off-c.off])
		pos = e.End()
	}
}

// chunks cuts the extents into reads: extents less than readGap apart are
// read together, and no read crosses a BlockSize boundary, so every read
// but the edges of a run is BlockSize long and aligned. It yields them one
// by one so a fragmented map does not turn into a second, bigger list.
func chunks(extents iter.Seq[Extent]) iter.Seq[*chunk] {
	return func(yield func(*chunk) bool) {
		var cur *chunk
		for e := range extents {
			for off := e.Off; off < e.End(); {
				end := min(e.End(), (off/BlockSize+1)*BlockSize)
				if cur != nil && off/BlockSize == cur.off/BlockSize && off-cur.parts[len(cur.parts)-1].End() < readGap {
					cur.parts = append(cur.parts, Extent{Off: off, Len: end - off})
				} else {
					if cur != nil && !yield(cur) {
						return
					}
					cur = &chunk{off: off, parts: []Extent{{Off: off, Len: end - off}}}
				}
				off = end
			}
		}
		if cur != nil {
			yield(cur)
		}
	}
}

func readFull(src io.ReaderAt, b []byte, off int64) error {
	n, err := src.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("read %d bytes at %d: %w", len(b), off, err)
}
