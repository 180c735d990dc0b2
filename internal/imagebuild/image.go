// Package imagebuild assembles the recovery card: an MBR disk image whose
// first partition is a FAT32 boot partition with the Pi firmware, kernel,
// DTBs, overlays, config.txt, cmdline.txt, the initramfs and recovery.conf,
// and an optional ext4 partition labelled PIBACKUPS for backups.
package imagebuild

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/disk"
	"github.com/diskfs/go-diskfs/filesystem"
	"github.com/diskfs/go-diskfs/partition/mbr"

	"github.com/pibackup/pibackup/internal/disklayout"
)

const (
	sectorSize = 512
	mib        = 1 << 20
	// BootStart is where the boot partition starts: 1 MiB, the usual
	// alignment of partitioning tools, enough for SD erase blocks of the
	// boot partition, which is written once.
	BootStart = 1 * mib
	// minFAT32 is the smallest FAT32 go-diskfs makes with 512-byte clusters
	// (FAT32 needs at least 65525 clusters), rounded up.
	minFAT32 = 33 * mib
	// BootLabel and DataLabel are the volume labels of the two partitions.
	BootLabel = "PIRECOVERY"
	DataLabel = "PIBACKUPS"
)

// Layout is the partition layout of an image, in bytes.
type Layout struct {
	BootStart, BootSize int64
	// DataSize is the size of the ext4 partition; 0 means none.
	DataStart, DataSize int64
}

// Size is the size of the whole image.
func (l Layout) Size() int64 {
	if l.DataSize > 0 {
		return l.DataStart + l.DataSize
	}
	return l.BootStart + l.BootSize
}

// PlanLayout sizes the boot partition for files (unless bootSize > 0) and
// places a data partition of dataSize after it.
func PlanLayout(files []File, bootSize, dataSize int64) (Layout, error) {
	var content int64
	for _, f := range files {
		n, err := f.Size()
		if err != nil {
			return Layout{}, err
		}
		// Round every file up to a 512-byte cluster, plus directory slots
		// for the long name.
		content += (n+sectorSize-1)/sectorSize*sectorSize + 4*32
	}
	// FAT32 with 512-byte clusters: two FATs of 4 bytes per cluster, plus
	// 2% and 1 MiB of room so recovery.conf and config.txt can be edited.
	need := content + 2*(content/sectorSize)*4 + content/50 + 1*mib
	need = (need + mib - 1) / mib * mib
	if bootSize == 0 {
		bootSize = max(need, minFAT32)
	}
	switch {
	case bootSize < minFAT32:
		return Layout{}, fmt.Errorf("boot partition of %d MiB: FAT32 needs at least %d MiB", bootSize/mib, minFAT32/mib)
	case bootSize < need:
		return Layout{}, fmt.Errorf("boot partition of %d MiB is too small for %d MiB of files", bootSize/mib, need/mib)
	case bootSize%mib != 0:
		return Layout{}, fmt.Errorf("boot partition size %d: want whole MiB", bootSize)
	case dataSize < 0 || dataSize%mib != 0:
		return Layout{}, fmt.Errorf("data partition size %d: want whole MiB", dataSize)
	case dataSize > 0 && dataSize < 8*mib:
		return Layout{}, fmt.Errorf("data partition of %d MiB: want at least 8 MiB", dataSize/mib)
	}
	l := Layout{BootStart: BootStart, BootSize: bootSize}
	if dataSize > 0 {
		l.DataStart, l.DataSize = l.BootStart+l.BootSize, dataSize
	}
	if l.Size()/sectorSize > 0xffffffff {
		return Layout{}, errors.New("image too large for an MBR partition table (2 TiB)")
	}
	return l, nil
}

// partitionTable is the MBR of l.
func partitionTable(l Layout) *mbr.Table {
	t := &mbr.Table{
		LogicalSectorSize:  sectorSize,
		PhysicalSectorSize: sectorSize,
		Partitions: []*mbr.Partition{{
			// Index must be set, or CreateFilesystem cannot find the partition.
			Index: 1,
			// The Pi boot ROM and bootloaders read the first FAT partition;
			// 0x0c (FAT32 LBA) and the boot flag are what Raspberry Pi OS uses.
			Bootable: true,
			Type:     mbr.Fat32LBA,
			Start:    uint32(l.BootStart / sectorSize),
			Size:     uint32(l.BootSize / sectorSize),
		}},
	}
	if l.DataSize > 0 {
		t.Partitions = append(t.Partitions, &mbr.Partition{
			Index: 2,
			Type:  mbr.Linux,
			Start: uint32(l.DataStart / sectorSize),
			Size:  uint32(l.DataSize / sectorSize),
		})
	}
	return t
}

// Write creates the image file dst with files on the boot partition,
// replacing an existing dst. The image is written to a temporary name next to
// dst and renamed when complete, so dst is never a half-written image.
func Write(ctx context.Context, dst string, files []File, l Layout, log *slog.Logger) (err error) {
	if fi, err := os.Stat(dst); err == nil && !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file; buildimage writes image files only", dst)
	}
	tmp := dst + ".partial"
	os.Remove(tmp) // a leftover of an interrupted build
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	// Build MBR and boot partition in memory (see memDisk), then write them
	// out in one go; the data partition stays a hole until mke2fs.
	mem := newMemDisk(l.BootStart+l.BootSize, l.Size())
	d, err := diskfs.OpenBackend(mem, diskfs.WithSectorSize(diskfs.SectorSize512))
	if err != nil {
		return fmt.Errorf("create image: %w", err)
	}
	if err := writeBoot(d, files, l); err != nil {
		return err
	}
	if err := disklayout.FixGoDiskfsFAT(mem, mem, l.BootStart); err != nil {
		return fmt.Errorf("boot partition: %w", err)
	}
	if err := writeFile(tmp, mem.buf, l.Size()); err != nil {
		return err
	}
	if l.DataSize > 0 {
		if err := mkfsData(ctx, tmp, l, log); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("rename image: %w", err)
	}
	return nil
}

func writeBoot(d *disk.Disk, files []File, l Layout) error {
	if err := d.Partition(partitionTable(l)); err != nil {
		return fmt.Errorf("write partition table: %w", err)
	}
	fs, err := d.CreateFilesystem(disk.FilesystemSpec{
		Partition:   1,
		FSType:      filesystem.TypeFat32,
		VolumeLabel: BootLabel,
		// Timestamps from SOURCE_DATE_EPOCH when set.
		Reproducible: true,
	})
	if err != nil {
		return fmt.Errorf("create FAT32: %w", err)
	}
	for _, f := range files {
		if err := copyIn(fs, f); err != nil {
			return err
		}
	}
	return nil
}

func copyIn(fs filesystem.FileSystem, f File) error {
	r, err := f.Open()
	if err != nil {
		return err
	}
	defer r.Close()
	_, err = disklayout.WriteFATFile(fs, "/"+f.Name, func(w io.Writer) (int64, error) { return io.Copy(w, r) })
	return err
}

// writeFile writes head at the start of a new file p of size bytes; the
// rest stays sparse.
func writeFile(p string, head []byte, size int64) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("create image: %w", err)
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return fmt.Errorf("size image: %w", err)
	}
	if _, err := f.WriteAt(head, 0); err != nil {
		f.Close()
		return fmt.Errorf("write image: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write image: %w", err)
	}
	return nil
}

// openBoot opens img with its MBR and boot partition read into memory, for
// fast reading (go-diskfs reads FAT32 one 512-byte cluster at a time).
func openBoot(img string) (*disk.Disk, error) {
	var mbrSector [sectorSize]byte
	f, err := os.Open(img)
	if err != nil {
		return nil, err
	}
	_, err = f.ReadAt(mbrSector[:], 0)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("read MBR of %s: %w", img, err)
	}
	// Partition entry 1 at 446: LBA start at +8, sector count at +12.
	start := int64(binary.LittleEndian.Uint32(mbrSector[446+8:]))
	size := int64(binary.LittleEndian.Uint32(mbrSector[446+12:]))
	mem, err := loadHead(img, (start+size)*sectorSize)
	if err != nil {
		return nil, err
	}
	return diskfs.OpenBackend(mem, diskfs.WithSectorSize(diskfs.SectorSize512))
}

// mkfsData makes the ext4 data partition with the host's mke2fs, which has
// written every ext4 file system the kernel will ever mount; go-diskfs's ext4
// writer is younger. -E offset writes into the partition of the image file
// without a loop device or root.
func mkfsData(ctx context.Context, img string, l Layout, log *slog.Logger) error {
	mkfs, err := exec.LookPath("mke2fs")
	if err != nil {
		return fmt.Errorf("the data partition needs mke2fs (apt install e2fsprogs), or build without -data-size: %w", err)
	}
	args := []string{"-F", "-q", "-t", "ext4", "-L", DataLabel,
		"-E", "offset=" + strconv.FormatInt(l.DataStart, 10),
		img, strconv.FormatInt(l.DataSize/1024, 10) + "k"}
	log.Info("mke2fs", "args", args)
	out, err := exec.CommandContext(ctx, mkfs, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("mke2fs %v: %w\n%s", args, err, out)
	}
	return nil
}
