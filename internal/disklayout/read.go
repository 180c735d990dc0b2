// Package disklayout reads a disk's partition table and the identity of the
// filesystems on it (type, UUID, label) from any io.ReaderAt, so the same
// code works on a block device, an image file and a test fixture; and it
// writes and parses the sfdisk --dump text that raspiBackup keeps in every
// set. Partition tables are read with go-diskfs.
package disklayout

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/partition/gpt"
	"github.com/diskfs/go-diskfs/partition/mbr"

	"github.com/pibackup/pibackup/internal/backupset"
)

// SectorSize is the logical sector size we assume for MBR/GPT math. Every
// SD card, USB stick and NVMe drive a Pi boots from uses 512.
const SectorSize = 512

// ErrNoTable is returned when a disk has neither an MBR nor a GPT.
var ErrNoTable = errors.New("no partition table")

// ReadFile reads the layout of an image file or block device at path.
func ReadFile(path string) (*backupset.Disk, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	size, err := deviceSize(f)
	if err != nil {
		return nil, fmt.Errorf("size of %s: %w", path, err)
	}
	d, err := Read(f, size)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	d.Device = path
	return d, nil
}

// deviceSize works for files and block devices alike: Seek to the end
// reports a block device's size where Stat reports 0.
func deviceSize(f *os.File) (int64, error) {
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, err
	}
	_, err = f.Seek(0, io.SeekStart)
	return size, err
}

// Read reads the partition table of the disk in r, of the given size, and
// identifies the filesystem of each partition.
func Read(r *os.File, size int64) (*backupset.Disk, error) {
	d := &backupset.Disk{Size: size, SectorSize: SectorSize}
	be := file.New(r, true)
	if t, err := gpt.Read(be, SectorSize, SectorSize); err == nil {
		fromGPT(d, t)
	} else {
		t, err := mbr.Read(be, SectorSize, SectorSize)
		if err != nil {
			return nil, fmt.Errorf("read partition table: %w", err)
		}
		if !hasMBRSignature(r) {
			return nil, ErrNoTable
		}
		fromMBR(d, t)
		if ext, ok := Extended(d); ok {
			logical, err := readLogical(r, ext, t.UUID())
			if err != nil {
				return nil, fmt.Errorf("read partition table: %w", err)
			}
			d.Partitions = append(d.Partitions, logical...)
		}
	}
	for i := range d.Partitions {
		p := &d.Partitions[i]
		if IsExtendedType(p.Type) {
			continue // extended container: no filesystem of its own
		}
		id, err := Identify(io.NewSectionReader(r, p.Start, p.Size))
		if err != nil {
			return nil, fmt.Errorf("partition %d: %w", p.Number, err)
		}
		p.FSType, p.UUID = id.Type, id.UUID
		if id.Label != "" || d.Table == "dos" {
			p.Label = id.Label
		}
		p.FSUsed = id.Used
	}
	return d, nil
}

// fromGPT and fromMBR put a table go-diskfs decoded into d in the set's
// terms; Read (a disk) and ReadTable (the head of a stream) share them.
func fromGPT(d *backupset.Disk, t *gpt.Table) {
	d.Table = "gpt"
	d.DiskID = strings.ToUpper(t.GUID)
	for _, p := range t.Partitions {
		if p.Type == gpt.Unused {
			continue
		}
		d.Partitions = append(d.Partitions, backupset.Partition{
			Number:   p.Index,
			Start:    int64(p.Start) * SectorSize,
			Size:     int64(p.End-p.Start+1) * SectorSize,
			Type:     string(p.Type),
			PartUUID: strings.ToLower(p.GUID),
			Label:    p.Name, // the partition name; Read replaces it by the fs label when there is one
		})
	}
}

func fromMBR(d *backupset.Disk, t *mbr.Table) {
	d.Table = "dos"
	d.DiskID = "0x" + t.UUID()
	for _, p := range t.Partitions {
		if p.Type == mbr.Empty || p.Size == 0 {
			continue
		}
		d.Partitions = append(d.Partitions, backupset.Partition{
			Number:   p.Index,
			Start:    int64(p.Start) * SectorSize,
			Size:     int64(p.Size) * SectorSize,
			Type:     strconv.FormatUint(uint64(p.Type), 16),
			PartUUID: t.UUID() + fmt.Sprintf("-%02x", p.Index),
			Bootable: p.Bootable,
		})
	}
}

func hasMBRSignature(r io.ReaderAt) bool {
	b := make([]byte, 2)
	if _, err := r.ReadAt(b, 510); err != nil {
		return false
	}
	return b[0] == 0x55 && b[1] == 0xaa
}

// PartitionByNumber finds partition n.
func PartitionByNumber(d *backupset.Disk, n int) (*backupset.Partition, bool) {
	for i := range d.Partitions {
		if d.Partitions[i].Number == n {
			return &d.Partitions[i], true
		}
	}
	return nil, false
}

// PartDevice names partition n of a whole-disk device the way the kernel
// does: a "p" goes between the disk name and the number when the disk name
// ends in a digit (mmcblk0p1, nvme0n1p1, loop0p1) and not otherwise (sda1).
func PartDevice(disk string, n int) string {
	if disk != "" && disk[len(disk)-1] >= '0' && disk[len(disk)-1] <= '9' {
		return fmt.Sprintf("%sp%d", disk, n)
	}
	return fmt.Sprintf("%s%d", disk, n)
}

// IsLinuxType reports whether an MBR type or GPT type GUID is a Linux data
// partition, the kind raspiBackup resizes on restore.
func IsLinuxType(t string) bool {
	switch strings.ToUpper(t) {
	case "83", string(gpt.LinuxFilesystem):
		return true
	}
	return false
}

// PartitionByRef finds the partition of d that a kernel root= value or an
// fstab spec names: PARTUUID=, UUID=, LABEL= or a device path whose
// trailing number is the partition's (/dev/mmcblk0p6, /dev/sda2).
func PartitionByRef(d *backupset.Disk, ref string) (int, bool) {
	key, val, ok := strings.Cut(ref, "=")
	if !ok {
		dev, ok := strings.CutPrefix(ref, "/dev/")
		if !ok {
			return 0, false
		}
		i := len(dev)
		for i > 0 && dev[i-1] >= '0' && dev[i-1] <= '9' {
			i--
		}
		n, err := strconv.Atoi(dev[i:])
		if err != nil || i == 0 {
			return 0, false
		}
		_, ok = PartitionByNumber(d, n)
		return n, ok
	}
	val = strings.Trim(val, `"`)
	for _, q := range d.Partitions {
		var have string
		switch strings.ToUpper(key) {
		case "PARTUUID":
			have = q.PartUUID
		case "UUID":
			have = q.UUID
		case "LABEL":
			have = q.Label
			if have == val {
				return q.Number, true
			}
			continue
		}
		if have != "" && strings.EqualFold(have, val) {
			return q.Number, true
		}
	}
	return 0, false
}
