package disklayout

// The fix-ups a FAT filesystem made by go-diskfs needs before fsck.vfat
// and the Pi firmware accept it. They live here, once, for every writer
// of FAT partitions (imagebuild's recovery image, a restore's boot
// partition, partition-oriented restores). TestFixGoDiskfsFAT shows
// fsck.vfat's complaints before and none after; when go-diskfs writes
// valid filesystems itself, the test says so and this file can go.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// FixGoDiskfsFAT finishes the boot sector of a FAT filesystem made by
// go-diskfs (called after it is filled, so go-diskfs writes no boot
// sector after us):
//   - BPB_HiddSec (at 28) gets the partition's start in sectors, as
//     mkfs.vfat -h writes it and the Pi firmware wants it (go-diskfs
//     writes 0);
//   - FAT32: ".." of a folder in the root names cluster 0, as the FAT
//     spec and fsck.vfat want (go-diskfs writes the root's cluster);
//   - FAT16: cluster 2 is freed (go-diskfs marks it used for a root
//     folder that FAT16 keeps outside the clusters);
//   - FAT32: the FSInfo sector gets the free cluster count (go-diskfs
//     leaves it "unknown", which fsck.vfat reports);
//   - the total sector count is lowered, when needed, until every cluster
//     has a FAT entry: go-diskfs (v1.9.4) sizes the FAT without the two
//     reserved entries, and fsck.vfat then reports "Filesystem has N
//     clusters but only space for N-2 FAT entries". go-diskfs itself
//     never allocates beyond its FAT, so no data is lost; the partition
//     keeps a few unused sectors at its end.
//
// The FAT32 backup boot sector gets the same changes.
func FixGoDiskfsFAT(f io.ReaderAt, w io.WriterAt, start int64) error {
	bs := make([]byte, 512)
	if _, err := f.ReadAt(bs, start); err != nil {
		return fmt.Errorf("read boot sector: %w", err)
	}
	le16 := func(off int) int64 { return int64(binary.LittleEndian.Uint16(bs[off:])) }
	bps, spc, reserved, fats := le16(11), int64(bs[13]), le16(14), int64(bs[16])
	if bps == 0 || spc == 0 || bs[510] != 0x55 || bs[511] != 0xaa {
		return errors.New("BUG: no FAT boot sector after creating one")
	}
	rootDirSectors := (le16(17)*32 + bps - 1) / bps
	fatSize, entryBits := le16(22), int64(16)
	if fatSize == 0 { // FAT32
		fatSize, entryBits = int64(binary.LittleEndian.Uint32(bs[36:])), 32
	}
	total := le16(19)
	if total == 0 {
		total = int64(binary.LittleEndian.Uint32(bs[32:]))
	}
	meta := reserved + fats*fatSize + rootDirSectors
	maxClusters := fatSize*bps*8/entryBits - 2
	if (total-meta)/spc > maxClusters {
		total = meta + maxClusters*spc
		if le16(19) != 0 {
			binary.LittleEndian.PutUint16(bs[19:], uint16(total))
		} else {
			binary.LittleEndian.PutUint32(bs[32:], uint32(total))
		}
	}
	binary.LittleEndian.PutUint32(bs[28:], uint32(start/512))
	g := fatGeometry{start: start, bps: bps, spc: spc, reserved: reserved, fats: fats, fatSize: fatSize, dataStart: meta}
	if entryBits == 32 {
		if err := g.fixDotDot(f, w, int64(binary.LittleEndian.Uint32(bs[44:]))); err != nil {
			return err
		}
		clusters := (total - meta) / spc
		if err := fixFSInfo(f, w, start, bs, bps, reserved, fatSize, clusters); err != nil {
			return err
		}
	} else if err := g.freeCluster2(f, w); err != nil {
		return err
	}
	offs := []int64{0}
	if entryBits == 32 {
		if bk := le16(50); bk > 0 && bk < reserved {
			offs = append(offs, bk*bps)
		}
	}
	for _, off := range offs {
		// Only the BPB fields changed: hidden (28..31), totals (19..20, 32..35).
		for _, r := range [][2]int{{19, 21}, {28, 36}} {
			if _, err := w.WriteAt(bs[r[0]:r[1]], start+off+int64(r[0])); err != nil {
				return fmt.Errorf("write FAT boot sector: %w", err)
			}
		}
	}
	return nil
}

// fixFSInfo writes the free cluster count and the next free cluster hint
// into the FAT32 FSInfo sector (and its backup), counted from the FAT.
func fixFSInfo(f io.ReaderAt, w io.WriterAt, start int64, bs []byte, bps, reserved, fatSize, clusters int64) error {
	info := int64(binary.LittleEndian.Uint16(bs[48:]))
	if info == 0 || info == 0xffff || info >= reserved {
		return nil
	}
	fat := make([]byte, fatSize*bps)
	if _, err := f.ReadAt(fat, start+reserved*bps); err != nil {
		return fmt.Errorf("read FAT: %w", err)
	}
	var free, next uint32 = 0, 0xffffffff
	for c := int64(2); c < clusters+2 && c*4+4 <= int64(len(fat)); c++ {
		if binary.LittleEndian.Uint32(fat[c*4:])&0x0fffffff == 0 {
			free++
			if next == 0xffffffff {
				next = uint32(c)
			}
		}
	}
	var v [8]byte
	binary.LittleEndian.PutUint32(v[0:], free)
	binary.LittleEndian.PutUint32(v[4:], next)
	offs := []int64{info * bps}
	if bk := int64(binary.LittleEndian.Uint16(bs[50:])); bk > 0 && bk+info < reserved {
		offs = append(offs, (bk+info)*bps)
	}
	for _, off := range offs {
		sig := make([]byte, 4)
		if _, err := f.ReadAt(sig, start+off); err != nil || string(sig) != "RRaA" {
			continue // no FSInfo there
		}
		if _, err := w.WriteAt(v[:], start+off+488); err != nil {
			return fmt.Errorf("write FSInfo: %w", err)
		}
	}
	return nil
}

// fatGeometry locates the FATs and clusters of a FAT filesystem at start
// (all in sectors, except start in bytes).
type fatGeometry struct {
	start, bps, spc, reserved, fats, fatSize, dataStart int64
}

func (g fatGeometry) clusterOff(c int64) int64 {
	return g.start + (g.dataStart+(c-2)*g.spc)*g.bps
}

// fat32Next returns the FAT32 entry of cluster c.
func (g fatGeometry) fat32Next(f io.ReaderAt, c int64) (int64, error) {
	var b [4]byte
	if _, err := f.ReadAt(b[:], g.start+g.reserved*g.bps+c*4); err != nil {
		return 0, fmt.Errorf("read FAT: %w", err)
	}
	return int64(binary.LittleEndian.Uint32(b[:]) & 0x0fffffff), nil
}

// fixDotDot sets ".." of every folder in the FAT32 root folder (cluster
// root) to cluster 0.
func (g fatGeometry) fixDotDot(f io.ReaderAt, w io.WriterAt, root int64) error {
	clusterBytes := g.spc * g.bps
	buf := make([]byte, clusterBytes)
	for c, n := root, 0; c >= 2 && c < 0x0ffffff8; n++ {
		if n > 1<<20 {
			return errors.New("FAT32 root folder: cluster chain loops")
		}
		if _, err := f.ReadAt(buf, g.clusterOff(c)); err != nil {
			return fmt.Errorf("read FAT32 root folder: %w", err)
		}
		for off := int64(0); off+32 <= clusterBytes; off += 32 {
			e := buf[off : off+32]
			if e[0] == 0 {
				return nil // end of the folder
			}
			if e[0] == 0xe5 || e[11] == 0x0f || e[11]&0x10 == 0 || e[0] == '.' {
				continue // deleted, long name part, not a folder, "." or ".."
			}
			sub := int64(binary.LittleEndian.Uint16(e[20:]))<<16 | int64(binary.LittleEndian.Uint16(e[26:]))
			if sub < 2 {
				continue
			}
			dd := make([]byte, 32)
			at := g.clusterOff(sub) + 32 // ".." is the second entry
			if _, err := f.ReadAt(dd, at); err != nil {
				return fmt.Errorf("read FAT32 folder: %w", err)
			}
			if string(dd[:11]) != "..         " {
				continue
			}
			parent := int64(binary.LittleEndian.Uint16(dd[20:]))<<16 | int64(binary.LittleEndian.Uint16(dd[26:]))
			if parent == root {
				zero := make([]byte, 2)
				if _, err := w.WriteAt(zero, at+20); err != nil {
					return fmt.Errorf("write FAT32 folder: %w", err)
				}
				if _, err := w.WriteAt(zero, at+26); err != nil {
					return fmt.Errorf("write FAT32 folder: %w", err)
				}
			}
		}
		next, err := g.fat32Next(f, c)
		if err != nil {
			return err
		}
		c = next
	}
	return nil
}

// freeCluster2 frees cluster 2 of a FAT16 filesystem when it is marked
// as the end of a chain and no file or folder of the root starts there.
func (g fatGeometry) freeCluster2(f io.ReaderAt, w io.WriterAt) error {
	var b [2]byte
	fat0 := g.start + g.reserved*g.bps
	if _, err := f.ReadAt(b[:], fat0+4); err != nil {
		return fmt.Errorf("read FAT: %w", err)
	}
	if binary.LittleEndian.Uint16(b[:]) < 0xfff8 {
		return nil
	}
	// The FAT16 root folder lies between the FATs and the data.
	rootStart := g.start + (g.reserved+g.fats*g.fatSize)*g.bps
	root := make([]byte, g.start+g.dataStart*g.bps-rootStart)
	if _, err := f.ReadAt(root, rootStart); err != nil {
		return fmt.Errorf("read FAT16 root folder: %w", err)
	}
	for off := 0; off+32 <= len(root); off += 32 {
		e := root[off : off+32]
		if e[0] == 0 {
			break
		}
		if e[0] != 0xe5 && e[11] != 0x0f && binary.LittleEndian.Uint16(e[26:]) == 2 {
			return nil // in use
		}
	}
	for i := int64(0); i < g.fats; i++ {
		if _, err := w.WriteAt([]byte{0, 0}, fat0+i*g.fatSize*g.bps+4); err != nil {
			return fmt.Errorf("write FAT: %w", err)
		}
	}
	return nil
}
