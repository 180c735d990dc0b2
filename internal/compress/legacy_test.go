package compress

import (
	"bytes"
	"io"
	"math/rand/v2"
	"os/exec"
	"strings"
	"testing"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/testfs"
)

// legacyTools are the command lines raspiBackup's --tarCompressionTool
// runs (through tar -I), each with the Debian package that has it.
var legacyTools = []struct {
	comp backupset.Compression
	argv []string
	pkg  string
}{
	{backupset.CompressBzip2, []string{"bzip2", "-c"}, "bzip2"},
	{backupset.CompressXz, []string{"xz", "-c", "-T2"}, "xz-utils"},
	{backupset.CompressLzma, []string{"xz", "-c", "--format=lzma"}, "xz-utils"},
	{backupset.CompressLzip, []string{"lzip", "-c"}, "lzip"},
	{backupset.CompressLzop, []string{"lzop", "-c"}, "lzop"},
	{backupset.CompressLz4, []string{"lz4", "-c"}, "lz4"},
}

// legacyData is compressible but not trivial, and large enough for
// several lzop blocks (256 KiB) and xz blocks.
func legacyData() []byte {
	data := make([]byte, 3<<20+12345)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range data {
		if i%4 == 0 {
			data[i] = byte(rng.IntN(256))
		} else {
			data[i] = byte(i / 4096)
		}
	}
	return data
}

func compressWith(t *testing.T, argv []string, data []byte) []byte {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin = bytes.NewReader(data)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v %s", strings.Join(argv, " "), err, errOut.String())
	}
	return out.Bytes()
}

// TestLegacyDecoders reads what the real tools write, byte for byte, and
// refuses a truncated stream with an error (never short data as if it
// were the end).
func TestLegacyDecoders(t *testing.T) {
	data := legacyData()
	for _, tool := range legacyTools {
		t.Run(string(tool.comp), func(t *testing.T) {
			if _, err := exec.LookPath(tool.argv[0]); err != nil {
				testfs.Require(t, "legacy-compressors")
			}
			packed := compressWith(t, tool.argv, data)
			r, err := NewReader(bytes.NewReader(packed), tool.comp)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("decode %s output: %v (%d bytes, want %d)", tool.argv[0], err, len(got), len(data))
			}
			r, err = NewReader(bytes.NewReader(packed[:len(packed)*2/3]), tool.comp)
			if err == nil {
				got, err = io.ReadAll(r)
			}
			if err == nil {
				t.Errorf("a truncated %s stream read without error (%d bytes)", tool.comp, len(got))
			}
		})
	}
}

// TestLegacyCorruption flips one byte in the middle of each stream whose
// format carries checksums (all but classic .lzma): reading must fail.
func TestLegacyCorruption(t *testing.T) {
	data := legacyData()
	for _, tool := range legacyTools {
		if tool.comp == backupset.CompressLzma {
			continue // no checksum in the format; tar's own checks see it
		}
		t.Run(string(tool.comp), func(t *testing.T) {
			if _, err := exec.LookPath(tool.argv[0]); err != nil {
				testfs.Require(t, "legacy-compressors")
			}
			packed := compressWith(t, tool.argv, data)
			packed[len(packed)/2] ^= 0x10
			r, err := NewReader(bytes.NewReader(packed), tool.comp)
			if err == nil {
				var got []byte
				got, err = io.ReadAll(r)
				if err == nil && !bytes.Equal(got, data) {
					t.Fatalf("a corrupt %s stream decoded to other data without an error", tool.comp)
				}
			}
			if err == nil {
				t.Errorf("a corrupt %s stream read without error", tool.comp)
			}
		})
	}
}

// TestLzipMultiMember reads an lzip file of several members (lzip -b, or
// files concatenated), as its format allows.
func TestLzipMultiMember(t *testing.T) {
	if _, err := exec.LookPath("lzip"); err != nil {
		testfs.Require(t, "legacy-compressors")
	}
	data := legacyData()
	packed := compressWith(t, []string{"lzip", "-c", "-b", "1MiB"}, data)
	r, err := NewReader(bytes.NewReader(packed), backupset.CompressLzip)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("multi-member lzip: %v (%d bytes, want %d)", err, len(got), len(data))
	}
}
