package imagebuild

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"os/exec"

	"github.com/diskfs/go-diskfs/partition/mbr"
)

// Verify reads img back: the partition table must match l and every file
// must be on the boot partition with the expected content.
func Verify(img string, files []File, l Layout) error {
	d, err := openBoot(img)
	if err != nil {
		return fmt.Errorf("verify: open image: %w", err)
	}
	defer d.Close()
	pt, err := d.GetPartitionTable()
	if err != nil {
		return fmt.Errorf("verify: read partition table: %w", err)
	}
	t, ok := pt.(*mbr.Table)
	if !ok {
		return fmt.Errorf("verify: partition table is %s, want MBR", pt.Type())
	}
	want := partitionTable(l).Partitions
	var got []*mbr.Partition
	for _, p := range t.Partitions {
		if p.Type != mbr.Empty {
			got = append(got, p)
		}
	}
	if len(got) != len(want) {
		return fmt.Errorf("verify: %d partitions, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Type != w.Type || g.Bootable != w.Bootable || g.Start != w.Start || g.Size != w.Size {
			return fmt.Errorf("verify: partition %d = type %#x boot %v start %d size %d, want type %#x boot %v start %d size %d",
				i+1, byte(g.Type), g.Bootable, g.Start, g.Size, byte(w.Type), w.Bootable, w.Start, w.Size)
		}
	}
	fs, err := d.GetFilesystem(1)
	if err != nil {
		return fmt.Errorf("verify: open boot partition: %w", err)
	}
	if lbl := fs.Label(); lbl != BootLabel {
		return fmt.Errorf("verify: boot partition label %q, want %q", lbl, BootLabel)
	}
	for _, f := range files {
		wantSum, err := sum(f)
		if err != nil {
			return err
		}
		r, err := fs.Open(f.Name)
		if err != nil {
			return fmt.Errorf("verify: %s missing on the boot partition: %w", f.Name, err)
		}
		h := sha256.New()
		_, err = io.Copy(h, r)
		r.Close()
		if err != nil {
			return fmt.Errorf("verify: read %s: %w", f.Name, err)
		}
		if !bytes.Equal(h.Sum(nil), wantSum) {
			return fmt.Errorf("verify: %s on the boot partition differs from its source", f.Name)
		}
	}
	// Nothing else may be there: a stray file would mean the list and the
	// image disagree.
	n := 0
	err = iofs.WalkDir(fs, ".", func(p string, de iofs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !de.IsDir() {
			n++
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("verify: walk boot partition: %w", err)
	}
	if n != len(files) {
		return fmt.Errorf("verify: %d files on the boot partition, want %d", n, len(files))
	}
	return nil
}

func sum(f File) ([]byte, error) {
	r, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return nil, fmt.Errorf("read %s: %w", f.Name, err)
	}
	return h.Sum(nil), nil
}

// ErrNoTool is returned by the external checks when the checker is not installed.
var ErrNoTool = errors.New("checker not installed")

// CheckFAT runs fsck.vfat -n (read-only) on the boot partition of img, as an
// independent judge of the FAT32 writer. It copies the partition out because
// fsck.vfat has no offset option and loop devices need root.
func CheckFAT(ctx context.Context, img string, l Layout) (string, error) {
	fsck, err := exec.LookPath("fsck.vfat")
	if err != nil {
		return "", fmt.Errorf("fsck.vfat (apt install dosfstools): %w", ErrNoTool)
	}
	part, err := os.CreateTemp("", "pibackup-fat-")
	if err != nil {
		return "", fmt.Errorf("check FAT: %w", err)
	}
	defer os.Remove(part.Name())
	defer part.Close()
	src, err := os.Open(img)
	if err != nil {
		return "", fmt.Errorf("check FAT: %w", err)
	}
	defer src.Close()
	if _, err := io.Copy(part, io.NewSectionReader(src, l.BootStart, l.BootSize)); err != nil {
		return "", fmt.Errorf("check FAT: copy partition: %w", err)
	}
	out, err := exec.CommandContext(ctx, fsck, "-n", "-v", part.Name()).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("fsck.vfat -n: %w\n%s", err, out)
	}
	return string(out), nil
}

// CheckExt4 runs e2fsck -fn on the data partition of img, if there is one.
func CheckExt4(ctx context.Context, img string, l Layout) (string, error) {
	if l.DataSize == 0 {
		return "", nil
	}
	e2fsck, err := exec.LookPath("e2fsck")
	if err != nil {
		return "", fmt.Errorf("e2fsck (apt install e2fsprogs): %w", ErrNoTool)
	}
	// e2fsprogs' unix I/O manager takes options after a '?' in the device
	// name, so no copy of a possibly large partition and no loop device.
	dev := fmt.Sprintf("%s?offset=%d", img, l.DataStart)
	out, err := exec.CommandContext(ctx, e2fsck, "-fn", dev).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("e2fsck -fn: %w\n%s", err, out)
	}
	return string(out), nil
}
