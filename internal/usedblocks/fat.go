package usedblocks

import "encoding/binary"

// fatChunk is how many bytes of each FAT are read at a time: a 32 GiB
// FAT32 with 4 KiB clusters has 32 MiB FATs, too much to hold at once on a
// Pi Zero.
const fatChunk = 1 << 20

// looksFAT tells a FAT boot sector by its BPB, the way the kernel's msdos
// driver does, rather than by the optional "FAT32   " string.
func looksFAT(bs []byte) bool {
	if len(bs) < 512 || bs[0] != 0xEB && bs[0] != 0xE9 {
		return false
	}
	_, err := parseBPB(bs, 1<<62)
	return err == nil
}

// bpb is the geometry of a FAT filesystem (Microsoft's FAT specification,
// "FAT Type Determination").
type bpb struct {
	bps      uint64 // bytes per sector
	spc      uint64 // sectors per cluster
	meta     uint64 // sectors before the first cluster: reserved, FATs, root dir
	fatStart uint64 // first sector of FAT 0
	fatSz    uint64 // sectors per FAT
	nFATs    uint64
	clusters uint64 // data clusters, numbered 2..clusters+1
	bits     int    // 12, 16 or 32
}

func parseBPB(bs []byte, size int64) (*bpb, error) {
	p := &bpb{
		bps:      le16(bs[0x0B:]),
		spc:      uint64(bs[0x0D]),
		fatStart: le16(bs[0x0E:]),
		nFATs:    uint64(bs[0x10]),
	}
	rootEnt := le16(bs[0x11:])
	tot := le16(bs[0x13:])
	if tot == 0 {
		tot = le32(bs[0x20:])
	}
	p.fatSz = le16(bs[0x16:])
	if p.fatSz == 0 {
		p.fatSz = le32(bs[0x24:])
	}
	switch {
	case p.bps < 512 || p.bps > 4096 || p.bps&(p.bps-1) != 0:
		return nil, unsupported("not FAT: %d bytes per sector", p.bps)
	case p.spc == 0 || p.spc&(p.spc-1) != 0:
		return nil, unsupported("not FAT: %d sectors per cluster", p.spc)
	case p.fatStart == 0 || p.nFATs == 0 || p.fatSz == 0 || tot == 0:
		return nil, unsupported("not FAT: reserved %d, %d FATs of %d sectors, %d sectors", p.fatStart, p.nFATs, p.fatSz, tot)
	case tot > uint64(size)/p.bps:
		return nil, unsupported("FAT filesystem (%d sectors of %d) larger than its %d-byte partition", tot, p.bps, size)
	}
	rootSectors := (rootEnt*32 + p.bps - 1) / p.bps
	p.meta = p.fatStart + p.nFATs*p.fatSz + rootSectors
	if p.meta >= tot {
		return nil, unsupported("corrupt FAT: no room for data (%d of %d sectors are metadata)", p.meta, tot)
	}
	p.clusters = (tot - p.meta) / p.spc
	switch {
	case p.clusters < 4085:
		p.bits = 12
	case p.clusters < 65525:
		p.bits = 16
	default:
		p.bits = 32
	}
	if need := (p.clusters + 2) * uint64(p.bits) / 8; need > p.fatSz*p.bps {
		return nil, unsupported("corrupt FAT: %d clusters need %d FAT bytes, FAT has %d", p.clusters, need, p.fatSz*p.bps)
	}
	return p, nil
}

// fatExtents adds the boot area, the FATs, the FAT12/16 root directory and
// every cluster that any copy of the FAT marks non-free, and returns the
// cluster size. Reading all copies costs one more FAT read and means a
// cluster both copies do not agree on is kept.
func fatExtents(d *dev, b *builder) (int64, error) {
	bs := make([]byte, 512)
	if err := d.readAt(bs, 0); err != nil {
		return 0, err
	}
	p, err := parseBPB(bs, d.size)
	if err != nil {
		return 0, err
	}
	b.add(0, int64(p.meta*p.bps))

	clusterBytes := int64(p.spc * p.bps)
	dataStart := int64(p.meta * p.bps)
	// Chunks start at whole entries; FAT12 packs two entries in three
	// bytes, so its chunks start at even entries.
	entriesPerChunk := uint64(fatChunk) * 8 / uint64(p.bits) &^ 1
	fatBytes := func(first, n uint64) (off, length uint64) {
		return first * uint64(p.bits) / 8, (n*uint64(p.bits) + 7) / 8
	}
	used := make([]bool, 0, entriesPerChunk)
	buf := make([]byte, fatChunk+2)
	total := p.clusters + 2 // entries 0 and 1 are reserved
	for first := uint64(0); first < total; first += entriesPerChunk {
		n := min(entriesPerChunk, total-first)
		used = used[:n]
		clear(used)
		off, length := fatBytes(first, n)
		chunk := buf[:length]
		for f := range p.nFATs {
			fatOff := int64((p.fatStart+f*p.fatSz)*p.bps) + int64(off)
			if err := d.readAt(chunk, fatOff); err != nil {
				return 0, err
			}
			for i := range n {
				if fatEntry(chunk, i, p.bits) != 0 {
					used[i] = true
				}
			}
		}
		for i := range n {
			c := first + i
			if c >= 2 && used[i] {
				b.add(dataStart+int64(c-2)*clusterBytes, clusterBytes)
			}
		}
	}
	return clusterBytes, nil
}

// fatEntry returns entry i of a chunk of FAT that starts at an even entry.
func fatEntry(chunk []byte, i uint64, bits int) uint32 {
	switch bits {
	case 12:
		o := i * 3 / 2
		v := binary.LittleEndian.Uint16(chunk[o:])
		if i%2 == 0 {
			return uint32(v & 0xFFF)
		}
		return uint32(v >> 4)
	case 16:
		return uint32(binary.LittleEndian.Uint16(chunk[i*2:]))
	default:
		return binary.LittleEndian.Uint32(chunk[i*4:]) & 0x0FFFFFFF
	}
}
