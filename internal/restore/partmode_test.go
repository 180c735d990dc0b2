package restore

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/fat16"
	"github.com/diskfs/go-diskfs/filesystem/fat32"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/disklayout"
)

func TestFATName(t *testing.T) {
	for in, want := range map[string]string{
		".": "", "./": "", "./cmdline.txt": "/cmdline.txt", "overlays/README": "/overlays/README",
		"./../../x": "/x", "/abs/y": "/abs/y",
	} {
		if got := fatName(in); got != want {
			t.Errorf("fatName(%q) = %q; want %q", in, got, want)
		}
	}
}

// TestFillFATRefusesNamesOutside: a boot tar (.tmg) whose member names
// lead outside the partition, as a set made to attack the restore has
// them, fails the fill with an error naming the member, before the member
// is written anywhere (fatName would have cleaned "../config.txt" into
// "/config.txt" and overwritten the real one).
func TestFillFATRefusesNamesOutside(t *testing.T) {
	for _, name := range []string{"../config.txt", "./overlays/../../config.txt", "/config.txt"} {
		t.Run(name, func(t *testing.T) {
			var tb bytes.Buffer
			tw := tar.NewWriter(&tb)
			for _, m := range []struct{ name, body string }{{"./config.txt", "good\n"}, {name, "evil\n"}} {
				tw.WriteHeader(&tar.Header{Name: m.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(m.body))})
				io.WriteString(tw, m.body)
			}
			tw.Close()
			const size = 64 << 20
			f, err := os.Create(filepath.Join(t.TempDir(), "part.img"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			f.Truncate(size)
			fsys, err := fat32.Create(file.New(f, false), size, 0, 512, "bootfs", false)
			if err != nil {
				t.Fatal(err)
			}
			_, err = fillFATFromTar(context.Background(), fsys, bytes.NewReader(tb.Bytes()), slog.New(slog.DiscardHandler))
			t.Logf("error: %v", err)
			if !errors.Is(err, ErrBadSet) || !strings.Contains(err.Error(), fmt.Sprintf("tar member %q", name)) {
				t.Errorf("fillFATFromTar = %v; want ErrBadSet naming %q", err, name)
			}
			r, err := fsys.OpenFile("/config.txt", os.O_RDONLY)
			if err != nil {
				t.Fatal(err)
			}
			if b, _ := io.ReadAll(r); string(b) != "good\n" {
				t.Errorf("/config.txt holds %q after the refused member; want the first member's", b)
			}
		})
	}
}

// TestMakeFATFsck makes FAT32 and FAT16 filesystems at an offset with
// go-diskfs, fills them from a tar, finishes the boot sector and lets
// fsck.vfat (the independent judge) check them.
func TestMakeFATFsck(t *testing.T) {
	fsck, err := exec.LookPath("fsck.vfat")
	if err != nil {
		t.Skip("fsck.vfat not installed")
	}
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	mtime := time.Date(2024, 4, 16, 9, 41, 6, 0, time.UTC)
	tw.WriteHeader(&tar.Header{Name: "./overlays/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mtime})
	for _, f := range []struct{ name, body string }{{"./cmdline.txt", "console=serial0 root=PARTUUID=1-02\n"}, {"./overlays/README", "long name file\n"}, {"./kernel8.img", string(bytes.Repeat([]byte("k"), 300000))}} {
		tw.WriteHeader(&tar.Header{Name: f.name, Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(f.body)), ModTime: mtime})
		io.WriteString(tw, f.body)
	}
	tw.WriteHeader(&tar.Header{Name: "./link", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"})
	tw.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	const start = 4 << 20
	for _, tc := range []struct {
		kind string
		size int64
	}{{"fat32", 64 << 20}, {"fat16", 16 << 20}} {
		t.Run(tc.kind, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "disk.img")
			f, err := os.Create(p)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			f.Truncate(start + tc.size)
			st := file.New(f, false)
			var n int64
			if tc.kind == "fat32" {
				fsys, err := fat32.Create(st, tc.size, start, 512, "bootfs", false)
				if err != nil {
					t.Fatal(err)
				}
				n, err = fillFATFromTar(context.Background(), fsys, bytes.NewReader(tb.Bytes()), log)
			} else {
				fsys, err := fat16.Create(st, tc.size, start, 512, "bootfs", false)
				if err != nil {
					t.Fatal(err)
				}
				n, err = fillFATFromTar(context.Background(), fsys, bytes.NewReader(tb.Bytes()), log)
			}
			if err != nil || n != 300000+35+15 {
				t.Fatalf("fillFATFromTar = %d, %v", n, err)
			}
			if err := disklayout.FixGoDiskfsFAT(f, f, start); err != nil {
				t.Fatal(err)
			}
			part := filepath.Join(t.TempDir(), "part.img")
			b := make([]byte, tc.size)
			f.ReadAt(b, start)
			os.WriteFile(part, b, 0o644)
			if out, err := exec.Command(fsck, "-n", "-v", part).CombinedOutput(); err != nil {
				t.Errorf("fsck.vfat: %v\n%s", err, out)
			}
			if out, err := exec.Command("mtype", "-i", part, "::/overlays/README").CombinedOutput(); err == nil && string(out) != "long name file\n" {
				t.Errorf("overlays/README reads %q", out)
			}
		})
	}
}

// TestBlkidOf: raspiBackup's .blkid lists every device, the backup disk
// too. A partition takes the line of its own device (as the .sfdisk dump
// names it), never another disk's partition with the same number; with
// no device name, a number two devices share names neither.
func TestBlkidOf(t *testing.T) {
	blkid, err := backupset.ParseBlkid(strings.NewReader(`/dev/sda1: LABEL="backup" UUID="9f0e1a2b-0000-4000-8000-00000000000a" TYPE="ext4" PARTUUID="c0ffee00-01"
/dev/mmcblk0p1: LABEL_FATBOOT="RECOVERY" LABEL="RECOVERY" UUID="0A0B-0C01" TYPE="vfat" PARTUUID="4e4f4f42-01"
/dev/mmcblk0p5: LABEL="boot" UUID="0A0B-0C05" TYPE="vfat" PARTUUID="4e4f4f42-05"
`))
	if err != nil {
		t.Fatal(err)
	}
	s := &setInfo{blkid: blkid}
	for _, tc := range []struct {
		q    backupset.Partition
		want string // label; "" for no line
	}{
		{backupset.Partition{Number: 1, Device: "mmcblk0p1"}, "RECOVERY"},
		{backupset.Partition{Number: 1, Device: "sda1"}, "backup"},
		{backupset.Partition{Number: 1}, ""},
		{backupset.Partition{Number: 5}, "boot"},
		{backupset.Partition{Number: 5, Device: "mmcblk0p5"}, "boot"},
	} {
		e, ok := s.blkidOf(&tc.q)
		if e.Label != tc.want || ok != (tc.want != "") {
			t.Errorf("blkidOf(%+v) = %+v, %v; want label %q", tc.q, e, ok, tc.want)
		}
	}
}
