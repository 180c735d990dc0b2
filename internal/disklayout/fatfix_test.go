package disklayout_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem"
	"github.com/diskfs/go-diskfs/filesystem/fat16"
	"github.com/diskfs/go-diskfs/filesystem/fat32"

	"github.com/pibackup/pibackup/internal/disklayout"
	"github.com/pibackup/pibackup/internal/testfs"
)

// TestFixGoDiskfsFAT makes FAT32 and FAT16 partitions with go-diskfs at
// an offset inside a disk image (a folder in the root, files in it, as a
// Pi's boot partition has), and lets fsck.vfat judge them before and
// after FixGoDiskfsFAT. Before, it complains (go-diskfs v1.9.4); after,
// it must not. The partition's boot sector must also name its start
// (hidden sectors), as the Pi firmware wants.
func TestFixGoDiskfsFAT(t *testing.T) {
	testfs.Require(t, "vfat")
	const start = 8192 * 512
	for _, tc := range []struct {
		kind string
		size int64
	}{{"fat32", 300 << 20}, {"fat16", 64 << 20}} {
		t.Run(tc.kind, func(t *testing.T) {
			dir := t.TempDir()
			img := filepath.Join(dir, "disk.img")
			f, err := os.Create(img)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := f.Truncate(start + tc.size); err != nil {
				t.Fatal(err)
			}
			st := file.New(f, false)
			var fsys filesystem.FileSystem
			if tc.kind == "fat32" {
				fsys, err = fat32.Create(st, tc.size, start, 512, "bootfs", false)
			} else {
				fsys, err = fat16.Create(st, tc.size, start, 512, "bootfs", false)
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := fsys.Mkdir("/overlays"); err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{"/overlays/disable-bt.dtbo", "/config.txt"} {
				w, err := fsys.OpenFile(name, os.O_CREATE|os.O_RDWR)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := w.Write([]byte("data of " + name)); err != nil {
					t.Fatal(err)
				}
				w.Close()
			}
			fsck := func() ([]byte, error) {
				b := make([]byte, tc.size)
				if _, err := f.ReadAt(b, start); err != nil {
					t.Fatal(err)
				}
				part := filepath.Join(dir, "part.img")
				if err := os.WriteFile(part, b, 0o644); err != nil {
					t.Fatal(err)
				}
				return exec.Command("fsck.vfat", "-n", part).CombinedOutput()
			}
			if out, err := fsck(); err == nil {
				t.Logf("fsck.vfat accepts go-diskfs' %s as it is; the fix may be obsolete:\n%s", tc.kind, out)
			}
			if err := disklayout.FixGoDiskfsFAT(f, f, start); err != nil {
				t.Fatal(err)
			}
			if out, err := fsck(); err != nil {
				t.Fatalf("fsck.vfat after FixGoDiskfsFAT: %v\n%s", err, out)
			}
			bs := make([]byte, 512)
			if _, err := f.ReadAt(bs, start); err != nil {
				t.Fatal(err)
			}
			if hidden := uint32(bs[28]) | uint32(bs[29])<<8 | uint32(bs[30])<<16 | uint32(bs[31])<<24; hidden != start/512 {
				t.Errorf("hidden sectors = %d; want the partition start %d", hidden, start/512)
			}
			if out, err := exec.Command("mtype", "-i", img+"@@"+strconv.FormatInt(start, 10), "::/overlays/disable-bt.dtbo").CombinedOutput(); err != nil || string(out) != "data of /overlays/disable-bt.dtbo" {
				t.Errorf("mtype = %q, %v", out, err)
			}
		})
	}
}
