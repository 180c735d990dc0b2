package compress

import (
	"errors"
	"fmt"
	"io"
	"runtime"

	"github.com/klauspost/compress/zstd"
)

// zstdFrames compresses its input as a series of independent zstd frames
// of frameSize bytes each, up to inFlight of them at once on their own
// goroutines, written in order. Concatenated frames are one zstd stream
// (RFC 8878, section 3.1): `zstd -d`, klauspost's decoder and so every
// restore read it as one.
//
// Why not the encoder's own stream mode: it compresses one block after
// the other on one core (its concurrency only overlaps the caller's copy
// with that core), so a tar set took 1.7 s of encoder time for 426 MB
// where `zstd -T0` took 1.0 s on two cores; its job-parallel mode
// (WithConcurrentBlocks) splits the input into jobs of four windows and
// keeps several in memory: 298 MiB peak on 2 cores with the 8 MiB
// window. Independent 8 MiB frames compress that archive to 136.4 MB
// (the single stream: 134.7 MB, `zstd -3 -T0`: 137.4 MB) with memory
// bounded by inFlight × (input + output + one encoder's history).
type zstdFrames struct {
	w         io.Writer
	enc       *zstd.Encoder // EncodeAll is safe for concurrent use
	frameSize int
	inFlight  int
	cur       []byte   // the frame being filled
	pending   []*frame // compressing or done, oldest first
	freeIn    [][]byte // buffers of written frames, reused
	freeOut   [][]byte
	wrote     bool // a frame was written (an empty stream gets one)
	err       error
}

type frame struct {
	in, out []byte
	done    chan struct{}
}

func newZstdFrames(w io.Writer, frameSize, inFlight int) (*zstdFrames, error) {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault),
		zstd.WithEncoderConcurrency(inFlight),
		// A frame never refers further back than its own start, and its
		// header records its size: a decoder needs frameSize of window.
		zstd.WithWindowSize(frameSize),
		// The history an encoder keeps for a frame is its window plus a
		// block instead of two windows.
		zstd.WithLowerEncoderMem(true),
		zstd.WithZeroFrames(true))
	if err != nil {
		return nil, fmt.Errorf("zstd writer: %w", err)
	}
	return &zstdFrames{w: w, enc: enc, frameSize: frameSize, inFlight: inFlight}, nil
}

func (z *zstdFrames) Write(p []byte) (int, error) {
	if z.err != nil {
		return 0, z.err
	}
	done := 0
	for done < len(p) {
		if z.cur == nil {
			z.cur = z.buffer()
		}
		n := copy(z.cur[len(z.cur):z.frameSize], p[done:])
		z.cur = z.cur[:len(z.cur)+n]
		done += n
		if len(z.cur) == z.frameSize {
			if err := z.submit(); err != nil {
				return done, err
			}
		}
	}
	return done, nil
}

// buffer returns an empty input buffer of frameSize capacity.
func (z *zstdFrames) buffer() []byte {
	if k := len(z.freeIn); k > 0 {
		b := z.freeIn[k-1]
		z.freeIn = z.freeIn[:k-1]
		return b[:0]
	}
	return make([]byte, 0, z.frameSize)
}

// submit starts compressing the current frame, after writing the oldest
// one out if inFlight are pending.
func (z *zstdFrames) submit() error {
	if len(z.pending) == z.inFlight {
		if err := z.writeOldest(); err != nil {
			return err
		}
	}
	f := &frame{in: z.cur, done: make(chan struct{})}
	if k := len(z.freeOut); k > 0 {
		f.out = z.freeOut[k-1][:0]
		z.freeOut = z.freeOut[:k-1]
	} else {
		// Room for a frame that does not compress: the encoder appends
		// without growing (and discarding) buffers.
		f.out = make([]byte, 0, z.frameSize+z.frameSize>>10+64)
	}
	z.cur = nil
	go func() {
		f.out = z.enc.EncodeAll(f.in, f.out)
		close(f.done)
	}()
	z.pending = append(z.pending, f)
	return nil
}

func (z *zstdFrames) writeOldest() error {
	f := z.pending[0]
	<-f.done
	z.pending = z.pending[1:]
	_, err := z.w.Write(f.out)
	z.wrote = true
	z.freeIn = append(z.freeIn, f.in)
	z.freeOut = append(z.freeOut, f.out)
	if err != nil {
		z.err = err
	}
	return err
}

// Close compresses what is left and writes every frame; it does not
// close the underlying writer.
func (z *zstdFrames) Close() error {
	err := z.flush()
	// Frames still compressing after a failed write use the encoder.
	for _, f := range z.pending {
		<-f.done
	}
	z.pending, z.freeIn, z.freeOut = nil, nil, nil
	z.enc.Close()
	// The frames' buffers (about 50 MiB) are garbage now, but the heap
	// may grow to twice what was live at the last collection before the
	// next one: what comes next (the check of the set, which decodes it)
	// stacked its allocations on top of them, to a 103 MB heap.
	runtime.GC()
	if z.err == nil {
		z.err = errors.New("zstd writer: write after close")
	}
	return err
}

func (z *zstdFrames) flush() error {
	if z.err != nil {
		return z.err
	}
	if len(z.cur) > 0 || (!z.wrote && len(z.pending) == 0) {
		if z.cur == nil {
			z.cur = z.buffer()
		}
		if err := z.submit(); err != nil {
			return err
		}
	}
	for len(z.pending) > 0 {
		if err := z.writeOldest(); err != nil {
			return err
		}
	}
	return nil
}
