package compress

import (
	"bytes"
	"io"
	"math/rand/v2"
	"os/exec"
	"testing"

	"github.com/pibackup/pibackup/internal/backupset"
)

func TestRoundTripAndCorruption(t *testing.T) {
	data := make([]byte, 5<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		if i%3 == 0 {
			data[i] = byte(rng.IntN(256))
		}
	}
	for _, c := range []backupset.Compression{backupset.CompressNone, backupset.CompressGzip, backupset.CompressZstd} {
		var buf bytes.Buffer
		w, err := NewWriter(&buf, c)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		packed := buf.Bytes()
		r, err := NewReader(bytes.NewReader(packed), c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s: round trip: %v (len %d)", c, err, len(got))
		}
		// The classic tools read what we write.
		if tool := map[backupset.Compression]string{backupset.CompressGzip: "gzip", backupset.CompressZstd: "zstd"}[c]; tool != "" {
			if _, err := exec.LookPath(tool); err == nil {
				cmd := exec.Command(tool, "-dc")
				cmd.Stdin = bytes.NewReader(packed)
				out, err := cmd.Output()
				if err != nil || !bytes.Equal(out, data) {
					t.Errorf("%s -dc of our stream: %v", tool, err)
				}
			}
		}
		if c == backupset.CompressNone {
			continue
		}
		// A flipped byte or a truncation is an error, not short data.
		bad := bytes.Clone(packed)
		bad[len(bad)/2] ^= 0xff
		if r, err := NewReader(bytes.NewReader(bad), c); err == nil {
			if _, err := io.ReadAll(r); err == nil {
				t.Errorf("%s: corrupt stream read without error", c)
			}
		}
		if r, err := NewReader(bytes.NewReader(packed[:len(packed)-100]), c); err == nil {
			if _, err := io.ReadAll(r); err == nil {
				t.Errorf("%s: truncated stream read without error", c)
			}
		}
	}
}
