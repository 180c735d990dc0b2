package disklayout

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"strings"
)

// FS is what Identify learns from a filesystem's superblock.
type FS struct {
	Type  string // "ext4", "ext3", "ext2", "vfat", "swap", "btrfs", "xfs", "" unknown
	UUID  string // as blkid prints it
	Label string
	Used  int64 // bytes allocated, 0 when unknown
}

// Identify reads the superblock at the start of r, the way blkid does, for
// the filesystems a Pi card holds. An unknown filesystem is not an error.
func Identify(r io.ReaderAt) (FS, error) {
	buf := make([]byte, 4096)
	n, err := r.ReadAt(buf, 0)
	if err != nil && err != io.EOF {
		return FS{}, fmt.Errorf("read superblock: %w", err)
	}
	buf = buf[:n]
	if fs, ok := identifyExt(buf); ok {
		return fs, nil
	}
	if fs, ok := identifyFAT(buf); ok {
		return fs, nil
	}
	if len(buf) >= 4096 && string(buf[4086:4096]) == "SWAPSPACE2" {
		return FS{Type: "swap", UUID: formatUUID(buf[1036:1052]), Label: cstr(buf[1052:1068])}, nil
	}
	if len(buf) >= 4 && string(buf[0:4]) == "XFSB" {
		return FS{Type: "xfs", UUID: formatUUID(buf[32:48]), Label: cstr(buf[108:120])}, nil
	}
	sb := make([]byte, 512)
	if _, err := r.ReadAt(sb, 0x10000); err == nil && string(sb[0x40:0x48]) == "_BHRfS_M" {
		return FS{Type: "btrfs", UUID: formatUUID(sb[0x20:0x30]), Label: cstr(sb[0x12b : 0x12b+256])}, nil
	}
	return FS{}, nil
}

func identifyExt(b []byte) (FS, bool) {
	if len(b) < 2048 {
		return FS{}, false
	}
	sb := b[1024:2048]
	if binary.LittleEndian.Uint16(sb[0x38:]) != 0xEF53 {
		return FS{}, false
	}
	compat := binary.LittleEndian.Uint32(sb[0x5c:])
	incompat := binary.LittleEndian.Uint32(sb[0x60:])
	roCompat := binary.LittleEndian.Uint32(sb[0x64:])
	typ := "ext2"
	if compat&0x4 != 0 { // has_journal
		typ = "ext3"
	}
	// extents, 64bit, flex_bg or huge_file/dir_nlink/extra_isize mean ext4.
	if incompat&(0x40|0x80|0x200) != 0 || roCompat&(0x8|0x20|0x40) != 0 {
		typ = "ext4"
	}
	blocksLo := uint64(binary.LittleEndian.Uint32(sb[0x4:]))
	freeLo := uint64(binary.LittleEndian.Uint32(sb[0xc:]))
	var blocksHi, freeHi uint64
	if incompat&0x80 != 0 {
		blocksHi = uint64(binary.LittleEndian.Uint32(sb[0x150:]))
		freeHi = uint64(binary.LittleEndian.Uint32(sb[0x158:]))
	}
	// A superblock from a damaged or hostile image may claim more free
	// than total blocks, a block size beyond ext4's 64 KiB, or a count
	// that overflows: then the bytes in use are unknown (0), never
	// negative.
	var used int64
	total, free := blocksLo|blocksHi<<32, freeLo|freeHi<<32
	if shift := 10 + uint64(binary.LittleEndian.Uint32(sb[0x18:])); shift <= 16 && free <= total && total-free <= math.MaxInt64>>shift {
		used = int64(total-free) << shift
	}
	return FS{Type: typ, UUID: formatUUID(sb[0x68:0x78]), Label: cstr(sb[0x78:0x88]), Used: used}, true
}

func identifyFAT(b []byte) (FS, bool) {
	if len(b) < 512 || b[510] != 0x55 || b[511] != 0xaa {
		return FS{}, false
	}
	bytesPerSector := binary.LittleEndian.Uint16(b[11:])
	if bytesPerSector == 0 || bytesPerSector&(bytesPerSector-1) != 0 || b[13] == 0 {
		return FS{}, false
	}
	var id []byte
	var label string
	switch {
	case string(b[82:87]) == "FAT32":
		id, label = b[67:71], string(b[71:82])
	case string(b[54:59]) == "FAT16" || string(b[54:59]) == "FAT12" || string(b[54:57]) == "FAT":
		id, label = b[39:43], string(b[43:54])
	default:
		return FS{}, false
	}
	label = strings.TrimRight(label, " ")
	if label == "NO NAME" {
		label = ""
	}
	v := binary.LittleEndian.Uint32(id)
	return FS{Type: "vfat", UUID: fmt.Sprintf("%04X-%04X", v>>16, v&0xffff), Label: label}, true
}

// FATSerialOffset returns where a FAT boot sector keeps its volume serial
// number, so a restore can give the copy a new one.
func FATSerialOffset(bootSector []byte) (int64, error) {
	if _, ok := identifyFAT(bootSector); !ok {
		return 0, fmt.Errorf("not a FAT boot sector")
	}
	if string(bootSector[82:87]) == "FAT32" {
		return 67, nil
	}
	return 39, nil
}

func formatUUID(b []byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func cstr(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}
