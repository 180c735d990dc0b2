package backup

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/pibackup/pibackup/internal/testfs"
)

// TestCleanFATReader: a FAT with the dirty flag Linux sets at mount is
// refused by fsck.vfat; read through cleanFATReader it passes, and
// nothing but that bit differs.
func TestCleanFATReader(t *testing.T) {
	testfs.Require(t, "vfat")
	for _, fat := range []string{"16", "32"} {
		t.Run("FAT"+fat, func(t *testing.T) {
			dir := t.TempDir()
			img := filepath.Join(dir, "fat.img")
			if out, err := exec.Command("mkfs.vfat", "-F", fat, "-C", img, "65536").CombinedOutput(); err != nil {
				t.Fatalf("mkfs.vfat: %v\n%s", err, out)
			}
			b, err := os.ReadFile(img)
			if err != nil {
				t.Fatal(err)
			}
			o := fatStateOffset(b)
			want := map[string]int64{"16": 0x25, "32": 0x41}[fat]
			if o != want {
				t.Fatalf("state byte at %#x, want %#x", o, want)
			}
			b[o] |= 0x01
			dirty := filepath.Join(dir, "dirty.img")
			if err := os.WriteFile(dirty, b, 0o600); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command("fsck.vfat", "-n", dirty).CombinedOutput(); err == nil {
				t.Fatalf("fsck.vfat accepts the dirty image; the test proves nothing:\n%s", out)
			}
			clean := make([]byte, len(b))
			if _, err := (cleanFATReader{ReaderAt: bytes.NewReader(b), at: []int64{o}}).ReadAt(clean, 0); err != nil {
				t.Fatal(err)
			}
			cleaned := filepath.Join(dir, "clean.img")
			if err := os.WriteFile(cleaned, clean, 0o600); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command("fsck.vfat", "-n", cleaned).CombinedOutput(); err != nil {
				t.Fatalf("fsck.vfat -n of the cleaned image: %v\n%s", err, out)
			}
			b[o] &^= 0x01
			if !bytes.Equal(b, clean) {
				t.Error("cleaning changed more than the dirty bit")
			}
		})
	}
	if fatStateOffset(make([]byte, 512)) != -1 {
		t.Error("a zero sector is taken for a FAT")
	}
}
