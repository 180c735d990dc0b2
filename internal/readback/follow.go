package readback

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultChunk is how far a writer gets ahead before the Follower
// forces what it wrote to the disk and reads it back: large enough that
// the writeback is one long sequential write, small enough that little
// waits in the page cache.
const DefaultChunk = 8 << 20

// Options configure a Follower.
type Options struct {
	// Chunk is the size of the ranges read back while the file grows
	// (0: DefaultChunk). A multiple of the page size.
	Chunk int64
	// Check, if not nil, is the file's content check (verify's for its
	// kind). It reads the bytes read back, in its own goroutine; its
	// error fails the Follower.
	Check func(io.Reader) error
	// Grows says another process writes the file (GNU tar writing it
	// itself): the Follower sees it grow. Otherwise the writer reports
	// each write with Wrote, and its bytes are compared with those read
	// back.
	Grows bool
	// OnRead, if set, is told how many bytes were read back (progress).
	OnRead func(n int64)
	// How is the proof's How (the verify report).
	How string
	// AfterWriteback, if set, is called when the range [off, off+n) is
	// on the disk and dropped from the page cache, right before it is
	// read back. Tests change the disk there; an error fails the
	// Follower.
	AfterWriteback func(off, n int64) error
}

// Follower reads a file back from the disk right behind its writer: as
// the written end passes a chunk it forces that chunk to the disk,
// drops it from the page cache and reads it through a file descriptor
// of its own, hashing the bytes (SHA-256) and feeding them to the
// content check. Memory stays at one read buffer and the check's own.
type Follower struct {
	o    Options
	f    *os.File
	path string
	// written is the end of what the writer wrote (Wrote); grown files
	// are measured instead.
	written atomic.Int64
	// The writer's CRC-32C of every whole chunk it wrote, in order, and
	// of the last partial one once Finish is called (mu guards sums).
	mu      sync.Mutex
	sums    []uint32
	cur     uint32 // the writer's running CRC of the chunk being written
	curN    int64
	wake    chan struct{}
	finish  chan struct{}
	abort   chan struct{}
	done    chan struct{}
	stopped bool

	// Owned by the follow goroutine until done is closed.
	h    hash.Hash
	read int64
	err  error
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Follow starts following the file at path, which its writer has just
// created (empty). Every Follow ends with Finish or Abort.
func Follow(path string, o Options) (*Follower, error) {
	if o.Chunk <= 0 {
		o.Chunk = DefaultChunk
	}
	if ps := int64(os.Getpagesize()); o.Chunk%ps != 0 {
		return nil, fmt.Errorf("BUG: read-back chunk %d is not a multiple of the page size %d", o.Chunk, ps)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open for reading back: %w", err)
	}
	fl := &Follower{o: o, f: f, path: path, h: sha256.New(),
		wake: make(chan struct{}, 1), finish: make(chan struct{}), abort: make(chan struct{}), done: make(chan struct{})}
	go fl.run()
	return fl, nil
}

// Wrote tells the Follower that the writer appended p to the file (the
// bytes write(2) took). Only for a writer in this process (not Grows),
// from one goroutine.
func (fl *Follower) Wrote(p []byte) {
	for len(p) > 0 {
		k := min(int64(len(p)), fl.o.Chunk-fl.curN)
		fl.cur = crc32.Update(fl.cur, castagnoli, p[:k])
		fl.curN += k
		p = p[k:]
		if fl.curN == fl.o.Chunk {
			fl.mu.Lock()
			fl.sums = append(fl.sums, fl.cur)
			fl.mu.Unlock()
			fl.cur, fl.curN = 0, 0
		}
		// After the sum: the follower reads a chunk only once its sum is
		// there.
		fl.written.Add(k)
	}
	select {
	case fl.wake <- struct{}{}:
	default:
	}
}

// Finish reads back the rest of the file, once its writer has written
// all of it and synced it (fsync), waits for the content check and
// returns the proof, or the error: a difference between what was
// written and what the disk holds (with its offset), a failed content
// check, or a failed read.
func (fl *Follower) Finish() (Proof, error) {
	if fl.stopped {
		return Proof{}, errors.New("BUG: read-back finished twice")
	}
	fl.stopped = true
	if !fl.o.Grows && fl.curN > 0 {
		fl.mu.Lock()
		fl.sums = append(fl.sums, fl.cur)
		fl.mu.Unlock()
	}
	close(fl.finish)
	<-fl.done
	fl.f.Close()
	if fl.err != nil {
		return Proof{}, fl.err
	}
	return Proof{Size: fl.read, SHA256: hex.EncodeToString(fl.h.Sum(nil)), Read: fl.read, How: fl.o.How}, nil
}

// Abort stops following (the write failed); it is safe after Finish.
func (fl *Follower) Abort() {
	if fl.stopped {
		return
	}
	fl.stopped = true
	close(fl.abort)
	<-fl.done
	fl.f.Close()
}

var errAborted = errors.New("read-back aborted")

func (fl *Follower) run() {
	defer close(fl.done)
	var pw *io.PipeWriter
	var checked chan error
	if fl.o.Check != nil {
		var pr *io.PipeReader
		pr, pw = io.Pipe()
		checked = make(chan error, 1)
		go func() {
			// Buffered: a tar check reads a 512-byte header at a time.
			br := bufio.NewReaderSize(pr, 1<<20)
			err := fl.o.Check(br)
			if err == nil {
				// What the check left (padding) is hashed all the same.
				_, err = io.Copy(io.Discard, br)
			} else {
				err = fmt.Errorf("content check: %w", err)
			}
			pr.CloseWithError(cmpOr(err, io.ErrClosedPipe))
			checked <- err
		}()
	}
	if pw == nil {
		fl.err = fl.follow(nil)
		return
	}
	err := fl.follow(pw)
	pw.CloseWithError(err)
	cerr := <-checked
	// A write to a failed check returns the check's error; the
	// Follower's own (bytes that differ, at an offset) says more.
	fl.err = err
	if err == nil || err == cerr {
		fl.err = cerr
	}
}

func cmpOr(err, alt error) error {
	if err != nil {
		return err
	}
	return alt
}

// follow reads the file back chunk by chunk as it grows, and to its end
// once finish is closed.
func (fl *Follower) follow(check io.Writer) error {
	buf := make([]byte, 1<<20)
	const minIdle, maxIdle = time.Millisecond, 20 * time.Millisecond
	idle := minIdle
	timer := time.NewTimer(idle)
	defer timer.Stop()
	for {
		final := false
		select {
		case <-fl.abort:
			return errAborted
		case <-fl.finish:
			final = true
		default:
		}
		end, err := fl.end()
		if err != nil {
			return err
		}
		if !final {
			end -= end % fl.o.Chunk
		}
		if end > fl.read {
			for fl.read < end {
				n := min(fl.o.Chunk-fl.read%fl.o.Chunk, end-fl.read)
				if err := fl.readBack(fl.read, n, buf, check); err != nil {
					return err
				}
			}
			idle = minIdle
			continue
		}
		if final {
			return fl.atEnd()
		}
		if fl.o.Grows {
			timer.Reset(idle)
			idle = min(2*idle, maxIdle)
		}
		select {
		case <-fl.abort:
			return errAborted
		case <-fl.finish:
		case <-fl.wake:
		case <-timer.C:
		}
	}
}

// end is how far the file is written.
func (fl *Follower) end() (int64, error) {
	if !fl.o.Grows {
		return fl.written.Load(), nil
	}
	st, err := fl.f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// atEnd checks, once everything written was read back, that the file
// is not longer than written (the writer's bytes are all accounted for).
func (fl *Follower) atEnd() error {
	st, err := fl.f.Stat()
	if err != nil {
		return err
	}
	if st.Size() != fl.read {
		return fmt.Errorf("%s is %d bytes long, %d were written", fl.path, st.Size(), fl.read)
	}
	return nil
}

// readBack forces [off, off+n) to the disk, drops it from the page
// cache and reads it back, n being at most the rest of off's chunk.
func (fl *Follower) readBack(off, n int64, buf []byte, check io.Writer) error {
	if err := writeBack(fl.f, off, n); err != nil {
		return fmt.Errorf("write back bytes %d to %d of %s: %w", off, off+n, fl.path, err)
	}
	if fl.o.AfterWriteback != nil {
		if err := fl.o.AfterWriteback(off, n); err != nil {
			return err
		}
	}
	var crc uint32
	var checkErr error
	for done := int64(0); done < n; {
		k, err := fl.f.ReadAt(buf[:min(int64(len(buf)), n-done)], off+done)
		if k == 0 && err != nil {
			if err == io.EOF {
				return fmt.Errorf("%s ends at %d while %d bytes were written", fl.path, off+done, off+n)
			}
			return fmt.Errorf("read back %s at %d: %w", fl.path, off+done, err)
		}
		p := buf[:k]
		fl.h.Write(p)
		if !fl.o.Grows {
			crc = crc32.Update(crc, castagnoli, p)
		}
		if check != nil {
			if _, err := check.Write(p); err != nil {
				if fl.o.Grows {
					return err
				}
				// Read on to the end of the chunk: if it differs from
				// what was written, that is the better error.
				check, checkErr = nil, err
			}
		}
		done += int64(k)
		if fl.o.OnRead != nil {
			fl.o.OnRead(int64(k))
		}
	}
	if !fl.o.Grows {
		i := off / fl.o.Chunk
		fl.mu.Lock()
		want := fl.sums[i]
		fl.mu.Unlock()
		if crc != want {
			return fmt.Errorf("%s: bytes %d to %d read back from the disk differ from those written (CRC-32C %08x, written %08x)", fl.path, off, off+n, crc, want)
		}
	}
	if checkErr != nil {
		return checkErr
	}
	fl.read = off + n
	return nil
}
