package backup

import (
	"encoding/binary"
	"io"
	"os"
	"slices"
)

// A FAT that Linux has mounted read-write carries the "dirty" flag in
// its boot sector (bit 0 of the state byte, BS_Reserved1): the kernel
// sets it at mount and clears it at a clean unmount. An image of the
// running Pi's /boot/firmware therefore always has it set, fsck.vfat
// rejects such an image ("Dirty bit is set. Fs was not properly
// unmounted") and a restored card would be "repaired" at its first
// boot. The flag says nothing about the data: the image is read after a
// sync, like every other backup of a live system. So the image gets the
// boot sector of a cleanly unmounted FAT.

// fatStateOffset returns the offset of the state byte in the boot sector
// bs of a FAT filesystem, or -1 when bs is not one.
func fatStateOffset(bs []byte) int64 {
	if len(bs) < 512 || bs[510] != 0x55 || bs[511] != 0xaa {
		return -1
	}
	bytesPerSector := binary.LittleEndian.Uint16(bs[11:])
	if bytesPerSector < 512 || bs[13] == 0 {
		return -1
	}
	// FAT32 has no root directory entries and a 32-bit FAT size.
	if binary.LittleEndian.Uint16(bs[17:]) == 0 && binary.LittleEndian.Uint16(bs[22:]) == 0 {
		return 0x41
	}
	return 0x25
}

// cleanFATReader reads like its ReaderAt but with the dirty bit cleared
// in the state byte at each of at (absolute offsets).
type cleanFATReader struct {
	io.ReaderAt
	at []int64
}

func (c cleanFATReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.ReaderAt.ReadAt(p, off)
	for _, a := range c.at {
		if a >= off && a < off+int64(n) {
			p[a-off] &^= 0x01
		}
	}
	return n, err
}

// cleanMountedFATs wraps src, the source disk, so that the FAT
// partitions mounted read-write (mountedRW) read as cleanly unmounted.
func (r *runner) cleanMountedFATs(src io.ReaderAt) io.ReaderAt {
	rw := r.mountedRW()
	var at []int64
	for _, p := range r.src.disk.Partitions {
		if !slices.Contains(rw, r.src.partName(p.Number)) {
			continue
		}
		bs := make([]byte, 512)
		if _, err := src.ReadAt(bs, p.Start); err != nil {
			continue
		}
		if o := fatStateOffset(bs); o >= 0 && bs[o]&0x01 != 0 {
			at = append(at, p.Start+o)
			r.log.Info("boot sector of a mounted FAT saved as cleanly unmounted", "partition", r.src.partName(p.Number))
		}
	}
	if len(at) == 0 {
		return src
	}
	return cleanFATReader{ReaderAt: src, at: at}
}

// File is the disk the reader wraps, for imageio's read advice.
func (c cleanFATReader) File() *os.File {
	f, _ := c.ReaderAt.(*os.File)
	return f
}
