package disklayout_test

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/fat32"

	"github.com/pibackup/pibackup/internal/disklayout"
)

// TestWriteFATFile writes a file in a folder that does not exist yet, then
// the same file again shorter: the folder is made, the second write
// replaces the first (no tail of the longer content left), and what is
// read back through a fresh open of the filesystem is what was written.
func TestWriteFATFile(t *testing.T) {
	img := filepath.Join(t.TempDir(), "fat.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const size = 64 << 20
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	fsys, err := fat32.Create(file.New(f, false), size, 0, 512, "BOOT", false)
	if err != nil {
		t.Fatal(err)
	}
	write := func(s string) {
		t.Helper()
		n, err := disklayout.WriteFATFile(fsys, "/current/cmdline.txt", func(w io.Writer) (int64, error) {
			n, err := io.WriteString(w, s)
			return int64(n), err
		})
		if err != nil || n != int64(len(s)) {
			t.Fatalf("WriteFATFile(%q) = %d, %v", s, n, err)
		}
	}
	write(strings.Repeat("console=serial0,115200 ", 40) + "root=PARTUUID=0badf00d-02\n")
	write("root=PARTUUID=cafe-02\n")
	back, err := disklayout.OpenFAT(file.New(f, true), 0, size)
	if err != nil {
		t.Fatal(err)
	}
	b, err := back.ReadFile("/current/cmdline.txt")
	if err != nil || string(b) != "root=PARTUUID=cafe-02\n" {
		t.Errorf("read back %q, %v; want the second write only", b, err)
	}
}
