package usedblocks

import (
	"encoding/binary"
	"hash/crc32"
	"math/bits"
)

// ext2/3/4 on-disk constants, from the kernel's fs/ext4/ext4.h and
// e2fsprogs' lib/ext2fs/ext2_fs.h.
const (
	extSuperOff = 1024
	extMagic    = 0xEF53

	extStateValid  = 0x1 // s_state: cleanly unmounted
	extStateErrors = 0x2 // s_state: errors detected

	compatHasJournal   = 0x4
	compatSparseSuper2 = 0x200

	incompatCompression = 0x1
	incompatFiletype    = 0x2
	incompatRecover     = 0x4
	incompatJournalDev  = 0x8
	incompatMetaBG      = 0x10
	incompatExtents     = 0x40
	incompat64bit       = 0x80
	incompatMMP         = 0x100
	incompatFlexBG      = 0x200
	incompatEAInode     = 0x400
	incompatDirData     = 0x1000
	incompatCsumSeed    = 0x2000
	incompatLargeDir    = 0x4000
	incompatInlineData  = 0x8000
	incompatEncrypt     = 0x10000
	incompatCasefold    = 0x20000

	// incompatKnown are the incompat features whose meaning for the
	// allocation map we know: none but RECOVER, JOURNAL_DEV, META_BG and
	// 64BIT changes it, and those are handled. An unknown incompat bit
	// might, so it makes the map untrusted.
	incompatKnown = incompatFiletype | incompatRecover | incompatJournalDev | incompatMetaBG |
		incompatExtents | incompat64bit | incompatMMP | incompatFlexBG | incompatEAInode |
		incompatDirData | incompatCsumSeed | incompatLargeDir | incompatInlineData |
		incompatEncrypt | incompatCasefold

	roCompatSparseSuper  = 0x1
	roCompatGDTCsum      = 0x10
	roCompatBigalloc     = 0x200
	roCompatMetadataCsum = 0x400
	// roCompatKnown: sparse_super, large_file, btree_dir, huge_file,
	// gdt_csum, dir_nlink, extra_isize, quota, bigalloc (refused below),
	// metadata_csum, replica, readonly, project, shared_blocks, verity,
	// orphan_present. 0x80 (the old "has_snapshot" exclude bitmap) is
	// deliberately absent.
	roCompatKnown = 0x1 | 0x2 | 0x4 | 0x8 | 0x10 | 0x20 | 0x40 | 0x100 | 0x200 | 0x400 |
		0x800 | 0x1000 | 0x2000 | 0x4000 | 0x8000 | 0x10000

	bgBlockUninit = 0x2 // bg_flags: block bitmap not initialised
	bgChecksumOff = 0x1E
)

// extFS is the part of an ext superblock that locates the allocation map.
type extFS struct {
	d            *dev
	bs           uint64 // block size
	blocks       uint64 // s_blocks_count
	firstData    uint64 // s_first_data_block: 1 for 1 KiB blocks, else 0
	bpg          uint64 // blocks per group
	groups       uint64
	descSize     uint64
	descPerBlock uint64
	descBlocks   uint64 // blocks of the (non-meta_bg) descriptor table
	itBlocks     uint64 // inode table blocks per group
	compat       uint32
	incompat     uint32
	roCompat     uint32
	firstMetaBG  uint64
	reservedGDT  uint64
	backupBGs    [2]uint64 // sparse_super2 backup groups
	uuid         []byte
	csumSeed     uint32
}

func le16(b []byte) uint64 { return uint64(binary.LittleEndian.Uint16(b)) }
func le32(b []byte) uint64 { return uint64(binary.LittleEndian.Uint32(b)) }

// extExtents adds the allocated blocks of an ext2/3/4 filesystem to b and
// returns the block size.
func extExtents(d *dev, b *builder) (int64, error) {
	fs, err := readExtSuper(d, false)
	if err != nil {
		return 0, err
	}
	return int64(fs.bs), fs.groupExtents(0, fs.groups, b)
}

// groupExtents adds to b the metadata of every group (superblock copies,
// descriptor tables, bitmaps, inode tables: wherever flex_bg put them,
// which may be in another group) and the allocated blocks of groups
// [from, to), from their descriptors and bitmaps as they read now. Block
// 0 is always added.
func (fs *extFS) groupExtents(from, to uint64, b *builder) error {
	d := fs.d
	bs := int64(fs.bs)
	addBlocks := func(start, n uint64) { b.add(int64(start)*bs, int64(n)*bs) }

	// Block 0 holds the boot sector (and, with 4 KiB blocks, the
	// superblock). With 1 KiB blocks it is outside every group.
	b.add(0, max(bs*int64(fs.firstData+1), 2048))

	bitmap := make([]byte, fs.bs)
	desc := make([]byte, fs.descSize)
	var descBlock []byte
	descBlockNo := ^uint64(0)
	for g := range fs.groups {
		// Descriptors are read one table block at a time.
		i := g / fs.descPerBlock
		if i != descBlockNo {
			loc := fs.descBlockLoc(i)
			if loc >= fs.blocks {
				return unsupported("corrupt: descriptor block %d at block %d beyond the filesystem", i, loc)
			}
			if descBlock == nil {
				descBlock = make([]byte, fs.bs)
			}
			if err := d.readAt(descBlock, int64(loc)*bs); err != nil {
				return err
			}
			descBlockNo = i
		}
		copy(desc, descBlock[(g%fs.descPerBlock)*fs.descSize:])

		gStart := fs.firstData + g*fs.bpg
		gLen := min(fs.bpg, fs.blocks-gStart)

		// Superblock copy and descriptor tables, then the group's own
		// bitmaps and inode table wherever flex_bg put them. An initialised
		// bitmap marks all of them anyway; a BLOCK_UNINIT group's
		// bitmap does not exist, and these are exactly what the kernel
		// (ext4_init_block_bitmap) and e2fsprogs (mark_uninit_bg_group_blocks)
		// count as used in it.
		addBlocks(fs.superAndGDT(g))
		bbm, ibm, it := fs.descLocs(desc)
		for _, m := range [][2]uint64{{bbm, 1}, {ibm, 1}, {it, fs.itBlocks}} {
			if m[0] < fs.firstData || m[0] >= fs.blocks || m[1] > fs.blocks-m[0] {
				return unsupported("corrupt: group %d metadata at block %d beyond the filesystem", g, m[0])
			}
			addBlocks(m[0], m[1])
		}
		if g < from || g >= to {
			continue
		}

		flags := le16(desc[0x12:])
		if flags&bgBlockUninit != 0 && fs.hasGroupCsum() {
			if fs.descCsumOK(g, desc) {
				continue // only the metadata above is in use
			}
			// A flag we cannot verify may be garbage, and so may the
			// bitmap it says is absent: the whole group is used.
			addBlocks(gStart, gLen)
			continue
		}
		if err := d.readAt(bitmap, int64(bbm)*bs); err != nil {
			return err
		}
		addBitmap(bitmap, gStart, gLen, addBlocks)
	}
	return nil
}

// addBitmap reports the runs of set bits among the first n bits of bm as
// block ranges starting at block base.
func addBitmap(bm []byte, base, n uint64, add func(start, n uint64)) {
	var runStart, runLen uint64
	flush := func() {
		if runLen > 0 {
			add(base+runStart, runLen)
			runLen = 0
		}
	}
	for i := uint64(0); i < n; {
		// Whole 64-bit words of all-free or all-used are the common case.
		if i%64 == 0 && n-i >= 64 {
			w := binary.LittleEndian.Uint64(bm[i/8:])
			switch w {
			case 0:
				flush()
				i += 64
				continue
			case ^uint64(0):
				if runLen == 0 {
					runStart = i
				}
				runLen += 64
				i += 64
				continue
			}
			// Mixed word: walk its runs with bit tricks.
			for j := uint64(0); j < 64; {
				if w&(1<<j) == 0 {
					flush()
					j += uint64(bits.TrailingZeros64(w >> j))
					continue
				}
				ones := uint64(bits.TrailingZeros64(^(w >> j)))
				if j+ones > 64 {
					ones = 64 - j
				}
				if runLen == 0 {
					runStart = i + j
				}
				runLen += ones
				j += ones
			}
			i += 64
			continue
		}
		if bm[i/8]&(1<<(i%8)) != 0 {
			if runLen == 0 {
				runStart = i
			}
			runLen++
		} else {
			flush()
		}
		i++
	}
	flush()
}

// readExtSuper reads the superblock. live is for a filesystem mounted on
// this machine and read through its block device's page cache (see
// Live): its journal always "needs recovery", but the bitmaps the kernel
// keeps in that cache are current, so the flag does not make them stale.
func readExtSuper(d *dev, live bool) (*extFS, error) {
	sb := make([]byte, 1024)
	if err := d.readAt(sb, extSuperOff); err != nil {
		return nil, err
	}
	if le16(sb[0x38:]) != extMagic {
		return nil, unsupported("no ext2/3/4 superblock")
	}
	fs := &extFS{
		d:           d,
		compat:      uint32(le32(sb[0x5C:])),
		incompat:    uint32(le32(sb[0x60:])),
		roCompat:    uint32(le32(sb[0x64:])),
		firstData:   le32(sb[0x14:]),
		bpg:         le32(sb[0x20:]),
		firstMetaBG: le32(sb[0x104:]),
		reservedGDT: le16(sb[0xCE:]),
		backupBGs:   [2]uint64{le32(sb[0x24C:]), le32(sb[0x250:])},
		uuid:        sb[0x68:0x78],
	}
	logBS := le32(sb[0x18:])
	if logBS > 6 { // 64 KiB is the largest ext4 block
		return nil, unsupported("corrupt: block size 1024<<%d", logBS)
	}
	fs.bs = 1024 << logBS
	fs.blocks = le32(sb[0x4:])
	if fs.incompat&incompat64bit != 0 {
		fs.blocks |= le32(sb[0x150:]) << 32
	}

	// Refuse what changes the meaning of the map or makes it stale.
	switch {
	case fs.incompat&^incompatKnown != 0:
		return nil, unsupported("unknown ext4 incompat features %#x", fs.incompat&^incompatKnown)
	case fs.roCompat&^roCompatKnown != 0:
		return nil, unsupported("unknown ext4 ro_compat features %#x", fs.roCompat&^roCompatKnown)
	case fs.roCompat&roCompatBigalloc != 0:
		return nil, unsupported("ext4 bigalloc is not supported")
	case fs.incompat&incompatJournalDev != 0:
		return nil, unsupported("external journal device, not a filesystem")
	case fs.incompat&incompatRecover != 0 && !live:
		// Blocks allocated by transactions still in the journal are free
		// in the on-disk bitmaps until replay; skipping them would lose
		// their data. A mounted filesystem always has this flag.
		return nil, unsupported("journal needs recovery (mounted, or not cleanly unmounted): on-disk bitmaps may miss recent allocations")
	}
	state := le16(sb[0x3A:])
	if state&extStateErrors != 0 {
		return nil, unsupported("filesystem has errors; run e2fsck")
	}
	if fs.compat&compatHasJournal == 0 && state&extStateValid == 0 && !live {
		return nil, unsupported("filesystem without journal not cleanly unmounted (or mounted); run e2fsck")
	}

	if fs.bs == 1024 && fs.firstData != 1 || fs.bs > 1024 && fs.firstData != 0 {
		return nil, unsupported("corrupt: first data block %d with %d-byte blocks", fs.firstData, fs.bs)
	}
	if fs.blocks <= fs.firstData {
		return nil, unsupported("corrupt: %d blocks", fs.blocks)
	}
	if fs.blocks > uint64(d.size)/fs.bs {
		return nil, unsupported("filesystem (%d blocks of %d) larger than its %d-byte partition", fs.blocks, fs.bs, d.size)
	}
	if fs.bpg < 8 || fs.bpg > 8*fs.bs || fs.bpg%8 != 0 {
		return nil, unsupported("corrupt: %d blocks per group", fs.bpg)
	}
	fs.descSize = 32
	if fs.incompat&incompat64bit != 0 {
		fs.descSize = le16(sb[0xFE:])
		if fs.descSize < 64 || fs.descSize > 1024 || fs.descSize&(fs.descSize-1) != 0 {
			return nil, unsupported("corrupt: descriptor size %d", fs.descSize)
		}
	}
	fs.descPerBlock = fs.bs / fs.descSize
	fs.groups = (fs.blocks - fs.firstData + fs.bpg - 1) / fs.bpg
	fs.descBlocks = (fs.groups + fs.descPerBlock - 1) / fs.descPerBlock

	inodeSize := uint64(128)
	if le32(sb[0x4C:]) >= 1 { // s_rev_level: dynamic inode sizes
		inodeSize = le16(sb[0x58:])
	}
	ipg := le32(sb[0x28:])
	if inodeSize < 128 || inodeSize > fs.bs || inodeSize&(inodeSize-1) != 0 || ipg == 0 || ipg > 8*fs.bs {
		return nil, unsupported("corrupt: %d inodes of %d bytes per group", ipg, inodeSize)
	}
	fs.itBlocks = (ipg*inodeSize + fs.bs - 1) / fs.bs

	switch {
	case fs.incompat&incompatCsumSeed != 0:
		fs.csumSeed = uint32(le32(sb[0x270:]))
	case fs.roCompat&roCompatMetadataCsum != 0:
		fs.csumSeed = crc32cRaw(^uint32(0), fs.uuid)
	}
	return fs, nil
}

// hasSuper tells whether group g holds a superblock copy
// (ext2fs_bg_has_super).
func (fs *extFS) hasSuper(g uint64) bool {
	if g == 0 {
		return true
	}
	if fs.compat&compatSparseSuper2 != 0 {
		return g == fs.backupBGs[0] || g == fs.backupBGs[1]
	}
	if g <= 1 || fs.roCompat&roCompatSparseSuper == 0 {
		return true
	}
	if g%2 == 0 {
		return false
	}
	return isPower(g, 3) || isPower(g, 5) || isPower(g, 7)
}

func isPower(g, base uint64) bool {
	n := uint64(1)
	for n < g {
		n *= base
	}
	return n == g
}

func (fs *extFS) groupStart(g uint64) uint64 { return fs.firstData + g*fs.bpg }

// descBlockLoc is where descriptor table block i lives
// (ext2fs_descriptor_block_loc2 for the primary copy): right after the
// superblock, or, past s_first_meta_bg, in the first group of its meta
// block group.
func (fs *extFS) descBlockLoc(i uint64) uint64 {
	if fs.incompat&incompatMetaBG == 0 || i < fs.firstMetaBG {
		return fs.firstData + i + 1
	}
	g := i * fs.descPerBlock
	loc := fs.groupStart(g)
	if fs.hasSuper(g) {
		loc++
	}
	return loc
}

// superAndGDT returns the run of blocks at the start of group g that holds
// its superblock copy and descriptor blocks (ext2fs_super_and_bgd_loc2).
// Reserved GDT blocks are counted in the meta_bg case too: if there are
// none the run is merely longer than needed.
func (fs *extFS) superAndGDT(g uint64) (start, n uint64) {
	start = fs.groupStart(g)
	has := fs.hasSuper(g)
	if has {
		n = 1
	}
	if fs.incompat&incompatMetaBG == 0 {
		if has {
			n += fs.descBlocks + fs.reservedGDT
		}
	} else if mbg := g / fs.descPerBlock; mbg < fs.firstMetaBG {
		if has {
			n += fs.firstMetaBG + fs.reservedGDT
		}
	} else if r := g % fs.descPerBlock; r == 0 || r == 1 || r == fs.descPerBlock-1 {
		n++
	}
	// The last group can be short; never run past the filesystem.
	n = min(n, fs.blocks-start)
	return start, n
}

// descLocs returns the block bitmap, inode bitmap and inode table of a
// group descriptor.
func (fs *extFS) descLocs(desc []byte) (bbm, ibm, it uint64) {
	bbm, ibm, it = le32(desc[0x0:]), le32(desc[0x4:]), le32(desc[0x8:])
	if fs.incompat&incompat64bit != 0 {
		bbm |= le32(desc[0x20:]) << 32
		ibm |= le32(desc[0x24:]) << 32
		it |= le32(desc[0x28:]) << 32
	}
	return bbm, ibm, it
}

// hasGroupCsum: bg_flags are only meaningful with descriptor checksums
// (ext4_has_group_desc_csum); without them the kernel reads every bitmap.
func (fs *extFS) hasGroupCsum() bool {
	return fs.roCompat&(roCompatGDTCsum|roCompatMetadataCsum) != 0
}

// descCsumOK verifies a group descriptor's checksum
// (ext2fs_group_desc_csum): crc32c with metadata_csum, crc16 with gdt_csum.
func (fs *extFS) descCsumOK(g uint64, desc []byte) bool {
	want := le16(desc[bgChecksumOff:])
	var grp [4]byte
	binary.LittleEndian.PutUint32(grp[:], uint32(g))
	if fs.roCompat&roCompatMetadataCsum != 0 {
		c := make([]byte, len(desc))
		copy(c, desc)
		c[bgChecksumOff], c[bgChecksumOff+1] = 0, 0
		crc := crc32cRaw(fs.csumSeed, grp[:])
		crc = crc32cRaw(crc, c)
		return uint64(crc&0xFFFF) == want
	}
	crc := crc16(0xFFFF, fs.uuid)
	crc = crc16(crc, grp[:])
	crc = crc16(crc, desc[:bgChecksumOff])
	if fs.incompat&incompat64bit != 0 && len(desc) > bgChecksumOff+2 {
		crc = crc16(crc, desc[bgChecksumOff+2:])
	}
	return uint64(crc) == want
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crc32cRaw is e2fsprogs' ext2fs_crc32c_le: crc32c without the pre- and
// post-inversion that hash/crc32 applies.
func crc32cRaw(crc uint32, p []byte) uint32 {
	return ^crc32.Update(^crc, castagnoli, p)
}

// crc16 is e2fsprogs' ext2fs_crc16: CRC-16/ARC (reflected 0x8005) with a
// caller-chosen start value.
func crc16(crc uint16, p []byte) uint16 {
	for _, b := range p {
		crc ^= uint16(b)
		for range 8 {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0xA001
			} else {
				crc >>= 1
			}
		}
	}
	return crc
}
