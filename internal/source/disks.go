package source

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"unicode/utf16"

	"github.com/pibackup/pibackup/internal/blockdev"
	"github.com/pibackup/pibackup/internal/disklayout"
	"github.com/pibackup/pibackup/internal/size"
)

// Disk is a whole block device: a possible USB source and a possible
// restore target.
type Disk struct {
	Name       string // kernel name: "sda", "mmcblk0"
	Path       string // device node, or an image file in tests
	Model      string // vendor and model as sysfs has them, may be ""
	Size       int64  // bytes
	Removable  bool
	ReadOnly   bool
	Partitions []Partition
}

// Partition is one partition of a Disk with the file system found on it.
type Partition struct {
	Number int
	Name   string // "sda1"
	Path   string // "/dev/sda1"
	Size   int64
	FSType string // vfat, exfat, ext4, ...; "" unknown
	Label  string
	UUID   string
}

// Describe is the one-line description the UI shows for a disk.
func (d Disk) Describe() string {
	s := fmt.Sprintf("%s  %s", d.Path, size.Format(d.Size))
	if d.Model != "" {
		s += "  " + d.Model
	}
	if d.Removable {
		s += "  removable"
	}
	return s
}

// DiskLister lists the block devices. Tests use a fake.
type DiskLister interface {
	Disks() ([]Disk, error)
}

// Sysfs lists the disks blockdev finds in sysfs and adds their
// partitions, reading each partition's superblock for its file system and
// label.
type Sysfs struct {
	Sys blockdev.Sys
}

// NewSysfs returns a lister over the running system.
func NewSysfs() *Sysfs { return &Sysfs{Sys: blockdev.Host()} }

// skipped are kernel disks that are never a source or a target.
var skipped = []string{"loop", "sr", "fd", "mtdblock", "nbd", "dm-", "md"}

// Disks implements DiskLister. Loop devices, CD drives and empty devices
// (a card reader without a card) are left out.
func (s *Sysfs) Disks() ([]Disk, error) {
	infos, err := s.Sys.Disks()
	if err != nil {
		return nil, err
	}
	var disks []Disk
	for _, in := range infos {
		if hasAnyPrefix(in.Name, skipped) {
			continue
		}
		d := Disk{Name: in.Name, Path: in.Path, Size: in.Size, Model: in.Model, Removable: in.Removable, ReadOnly: in.ReadOnly}
		dir := filepath.Join(s.Sys.SysBlock, in.Name)
		parts, _ := os.ReadDir(dir)
		for _, p := range parts {
			pdir := filepath.Join(dir, p.Name())
			if _, err := os.Stat(filepath.Join(pdir, "partition")); err != nil {
				continue
			}
			part := Partition{
				Number: int(readInt(filepath.Join(pdir, "partition"))),
				Name:   p.Name(),
				Path:   filepath.Join(s.Sys.Dev, p.Name()),
				Size:   readInt(filepath.Join(pdir, "size")) * 512,
			}
			if fsid, err := identify(part.Path); err == nil {
				part.FSType, part.Label, part.UUID = fsid.Type, fsid.Label, fsid.UUID
			}
			d.Partitions = append(d.Partitions, part)
		}
		sort.Slice(d.Partitions, func(i, j int) bool { return d.Partitions[i].Number < d.Partitions[j].Number })
		if len(d.Partitions) == 0 {
			// A stick formatted whole, without a partition table
			// ("superfloppy"): its filesystem is the disk itself.
			if fsid, err := identify(in.Path); err == nil && fsid.Type != "" {
				d.Partitions = []Partition{{Number: 0, Name: in.Name, Path: in.Path, Size: in.Size,
					FSType: fsid.Type, Label: fsid.Label, UUID: fsid.UUID}}
			}
		}
		disks = append(disks, d)
	}
	return disks, nil
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func readString(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func readInt(p string) int64 {
	n, _ := strconv.ParseInt(readString(p), 10, 64)
	return n
}

// identify reads the file system identity of the device or image at p.
func identify(p string) (disklayout.FS, error) {
	f, err := os.Open(p)
	if err != nil {
		return disklayout.FS{}, err
	}
	defer f.Close()
	fsid, err := disklayout.Identify(f)
	if err != nil || fsid.Type != "" {
		return fsid, err
	}
	return identifyExFAT(f)
}

// identifyExFAT recognises exFAT, which disklayout does not know, and
// reads its volume label from the first cluster of the root directory
// (exFAT specification §3.1 boot sector, §7.3 volume label entry).
func identifyExFAT(r io.ReaderAt) (disklayout.FS, error) {
	bs := make([]byte, 512)
	if _, err := r.ReadAt(bs, 0); err != nil {
		return disklayout.FS{}, err
	}
	if string(bs[3:11]) != "EXFAT   " {
		return disklayout.FS{}, nil
	}
	fsid := disklayout.FS{Type: "exfat"}
	serial := binary.LittleEndian.Uint32(bs[100:])
	fsid.UUID = fmt.Sprintf("%04X-%04X", serial>>16, serial&0xffff)
	sectorShift, clusterShift := bs[108], bs[109]
	if sectorShift < 9 || sectorShift > 12 || clusterShift > 25-sectorShift {
		return fsid, nil
	}
	heap := int64(binary.LittleEndian.Uint32(bs[88:])) << sectorShift
	root := int64(binary.LittleEndian.Uint32(bs[96:]))
	clusterSize := int64(1) << (sectorShift + clusterShift)
	dir := make([]byte, min(clusterSize, 64<<10))
	if _, err := r.ReadAt(dir, heap+(root-2)*clusterSize); err != nil && !errors.Is(err, io.EOF) {
		return fsid, nil
	}
	for off := 0; off+32 <= len(dir); off += 32 {
		e := dir[off : off+32]
		if e[0] == 0 {
			break
		}
		if e[0] == 0x83 && e[1] <= 11 {
			u := make([]uint16, e[1])
			for i := range u {
				u[i] = binary.LittleEndian.Uint16(e[2+2*i:])
			}
			fsid.Label = string(utf16.Decode(u))
			break
		}
	}
	return fsid, nil
}
