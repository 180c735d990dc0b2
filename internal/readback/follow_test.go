package readback

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testChunk = 1 << 20

// writeFollowed writes data to a new file at path in pieces of odd
// sizes from a writer goroutine, reporting each write to a Follower
// (or, with grows, only letting it see the file grow), syncs it and
// returns Finish's result. after, if set, is called after each write
// with the bytes written so far.
func writeFollowed(t *testing.T, path string, data []byte, o Options, after ...func(int)) (Proof, error) {
	t.Helper()
	w, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	o.Chunk = testChunk
	fl, err := Follow(path, o)
	if err != nil {
		t.Fatal(err)
	}
	written := make(chan error, 1)
	go func() {
		for rest := data; len(rest) > 0; {
			n, err := w.Write(rest[:min(len(rest), 12345)])
			if !o.Grows {
				fl.Wrote(rest[:n])
			}
			if err != nil {
				written <- err
				return
			}
			rest = rest[n:]
			for _, fn := range after {
				fn(len(data) - len(rest))
			}
		}
		written <- w.Sync()
	}()
	if err := <-written; err != nil {
		fl.Abort()
		t.Fatal(err)
	}
	return fl.Finish()
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestFollowProof: the proof of a file written while it was followed
// names its size and SHA-256, and the content check saw every byte, for
// a writer that reports its writes and for one that only grows the
// file; sizes on, around and off the chunk boundaries.
func TestFollowProof(t *testing.T) {
	for _, grows := range []bool{false, true} {
		for _, size := range []int{0, 1, testChunk - 1, testChunk, 3*testChunk + 4097} {
			t.Run(fmt.Sprintf("grows=%v/%d", grows, size), func(t *testing.T) {
				data := randomBytes(t, size)
				var seen bytes.Buffer
				var reported int64
				p, err := writeFollowed(t, filepath.Join(t.TempDir(), "f"), data, Options{
					Grows: grows, How: "test",
					Check:  func(r io.Reader) error { _, err := io.Copy(&seen, r); return err },
					OnRead: func(n int64) { reported += n },
				})
				if err != nil {
					t.Fatal(err)
				}
				want := Proof{Size: int64(size), SHA256: sum(data), Read: int64(size), How: "test"}
				if p != want {
					t.Errorf("proof %+v, want %+v", p, want)
				}
				if !bytes.Equal(seen.Bytes(), data) {
					t.Errorf("the check saw %d bytes, not the %d written", seen.Len(), size)
				}
				if reported != int64(size) {
					t.Errorf("OnRead reported %d bytes, want %d", reported, size)
				}
			})
		}
	}
}

// TestFollowCheckFails: a failing content check fails the Follower with
// its error, also when it gives up before the end of the file.
func TestFollowCheckFails(t *testing.T) {
	bad := errors.New("not a tar archive")
	_, err := writeFollowed(t, filepath.Join(t.TempDir(), "f"), randomBytes(t, 3*testChunk), Options{
		Check: func(r io.Reader) error {
			io.ReadFull(r, make([]byte, 1000))
			return bad
		},
	})
	if !errors.Is(err, bad) || !strings.Contains(err.Error(), "content check") {
		t.Fatalf("Finish: %v, want the content check's error", err)
	}
}

// TestFollowSeesChangedBytes: bytes that differ, when read back, from
// those the writer wrote fail the Follower with the range that holds
// them. Here they are changed through the page cache (another file
// descriptor) right before the read; TestFollowReadsTheDisk changes
// them on the disk.
func TestFollowSeesChangedBytes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	_, err := writeFollowed(t, path, randomBytes(t, 3*testChunk+10), Options{
		AfterWriteback: func(off, n int64) error {
			if off != testChunk {
				return nil
			}
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = f.WriteAt([]byte("corrupt"), off+100)
			return err
		},
	})
	want := fmt.Sprintf("bytes %d to %d read back from the disk differ from those written", testChunk, 2*testChunk)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Finish: %v, want %q", err, want)
	}
}

// TestFollowAbort: Abort ends a Follower whose writer failed, with its
// check still reading.
func TestFollowAbort(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	fl, err := Follow(path, Options{Check: func(r io.Reader) error { _, err := io.Copy(io.Discard, r); return err }})
	if err != nil {
		t.Fatal(err)
	}
	fl.Abort()
	fl.Abort()
}
