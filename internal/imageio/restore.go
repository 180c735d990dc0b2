package imageio

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/pibackup/pibackup/internal/progress"
)

// WriteImage writes the raw image read from src (already decompressed) to
// dst from offset 0 and returns its length. With skipZeros, 4 KiB blocks
// of zeros are not written: right for a target that already reads as
// zeros (a new file, which gets holes; a device after a zeroing discard),
// wrong for a device holding old data, which would show through. rep gets
// Add(n) for every byte of the image consumed.
//
// A regular file dst is extended to the full image length even when the
// image ends in skipped zeros.
func WriteImage(dst io.WriterAt, src io.Reader, skipZeros bool, rep progress.Reporter) (int64, error) {
	rep = progress.OrNop(rep)
	type block struct {
		buf []byte
		err error // io.EOF after the last block
	}
	free := make(chan []byte, buffers)
	for range buffers {
		free <- make([]byte, BlockSize)
	}
	full := make(chan block, buffers)
	stop := make(chan struct{})
	go func() {
		defer close(full)
		for {
			var buf []byte
			select {
			case buf = <-free:
			case <-stop:
				return
			}
			n, err := io.ReadFull(src, buf)
			if errors.Is(err, io.ErrUnexpectedEOF) {
				err = io.EOF // a last short block
			}
			if n > 0 {
				select {
				case full <- block{buf: buf[:n]}:
				case <-stop:
					return
				}
			}
			if err != nil {
				full <- block{err: err}
				return
			}
		}
	}()

	var pos int64
	var werr error
	for b := range full {
		if b.err != nil {
			if b.err != io.EOF && werr == nil {
				werr = fmt.Errorf("read image at %d: %w", pos, b.err)
			}
			continue
		}
		if werr == nil {
			if skipZeros {
				_, werr = WriteNonZero(dst, b.buf, pos)
			} else if _, err := dst.WriteAt(b.buf, pos); err != nil {
				werr = fmt.Errorf("write at %d: %w", pos, err)
			}
			if werr != nil {
				close(stop)
			}
			pos += int64(len(b.buf))
			rep.Add(int64(len(b.buf)))
		}
		free <- b.buf[:cap(b.buf)]
	}
	if werr != nil {
		return pos, werr
	}
	if f, ok := dst.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() < pos {
			if err := f.Truncate(pos); err != nil {
				return pos, fmt.Errorf("extend %s to %d: %w", f.Name(), pos, err)
			}
		}
	}
	return pos, nil
}
