package compress

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os/exec"
	"testing"

	"github.com/pibackup/pibackup/internal/backupset"
)

// TestZstdFramesRoundTrip writes inputs around the frame size through
// small frames, several compressing at once, in writes of odd sizes, and
// reads them back with our reader and with zstd itself.
func TestZstdFramesRoundTrip(t *testing.T) {
	const frame = 64 << 10
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{0, 1, frame - 1, frame, frame + 1, 7*frame + 5} {
		data := make([]byte, n)
		for i := range data {
			if i%4 == 0 {
				data[i] = byte(rng.IntN(256))
			}
		}
		for _, inFlight := range []int{1, 3} {
			var buf bytes.Buffer
			z, err := newZstdFrames(&buf, frame, inFlight)
			if err != nil {
				t.Fatal(err)
			}
			for rest := data; len(rest) > 0; {
				k := min(len(rest), 1+rng.IntN(frame/3))
				if _, err := z.Write(rest[:k]); err != nil {
					t.Fatal(err)
				}
				rest = rest[k:]
			}
			if err := z.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := z.Write([]byte{1}); err == nil {
				t.Errorf("write after close accepted")
			}
			packed := buf.Bytes()
			if n > 0 && n%frame == 0 && bytes.Count(packed, []byte{0x28, 0xb5, 0x2f, 0xfd}) < n/frame {
				t.Errorf("%d bytes: fewer frames than %d", n, n/frame)
			}
			r, err := NewReader(bytes.NewReader(packed), backupset.CompressZstd)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("%d bytes, %d at once: round trip: %v (got %d bytes)", n, inFlight, err, len(got))
			}
			cmd := exec.Command("zstd", "-dc")
			cmd.Stdin = bytes.NewReader(packed)
			out, err := cmd.Output()
			if err != nil || !bytes.Equal(out, data) {
				t.Fatalf("%d bytes, %d at once: zstd -dc: %v (got %d bytes)", n, inFlight, err, len(out))
			}
		}
	}
}

// failAfter accepts n bytes, then fails.
type failAfter struct{ n int }

var errFull = errors.New("disk full")

func (f *failAfter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		k := f.n
		f.n = 0
		return k, errFull
	}
	f.n -= len(p)
	return len(p), nil
}

// TestZstdFramesWriteError: a failing writer's error comes back from
// Write or Close (never swallowed), and Close waits for the frames still
// compressing.
func TestZstdFramesWriteError(t *testing.T) {
	const frame = 64 << 10
	data := make([]byte, 20*frame)
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range data {
		data[i] = byte(rng.IntN(256)) // incompressible: frames as large as their input
	}
	z, err := newZstdFrames(&failAfter{n: 3 * frame}, frame, 3)
	if err != nil {
		t.Fatal(err)
	}
	_, werr := z.Write(data)
	cerr := z.Close()
	if !errors.Is(werr, errFull) || !errors.Is(cerr, errFull) {
		t.Fatalf("write error %v, close error %v: want %v from both", werr, cerr, errFull)
	}
}
