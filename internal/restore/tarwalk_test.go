package restore

import (
	"archive/tar"
	"bytes"
	"runtime"
	"testing"
)

// CheckTar reads a member's data through, not into a buffer of its size:
// a verify or restore of an archive of files up to maxTarMeta allocated
// and cleared every one of them.
func TestCheckTarDoesNotBufferMembers(t *testing.T) {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	data := bytes.Repeat([]byte("x"), 8<<20)
	for _, name := range []string{"./", "./a", "./b"} {
		h := &tar.Header{Name: name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(data)), Format: tar.FormatPAX}
		if name == "./" {
			h.Typeflag, h.Mode, h.Size = tar.TypeDir, 0o755, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			tw.Write(data)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	archive := b.Bytes()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if err := CheckTar(bytes.NewReader(archive)); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Errorf("CheckTar of two 8 MiB members allocated %d bytes", got)
	}
}
