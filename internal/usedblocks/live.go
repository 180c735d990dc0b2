package usedblocks

import (
	"errors"
	"io"
)

// Live maps an ext2/3/4 filesystem that is mounted read-write on this
// machine while its blocks are copied, group by group, just before each
// group's blocks are read.
//
// A map read once before the copy goes stale as the system writes: a
// block allocated after the map was read but before the copy reached it
// would be a run of zeros in the image, and the restored file broken.
// Read group by group just in time, the map is at most a few megabytes
// of copying old, so the image holds every block that was in use when
// the copy reached it: what a full dd of the mounted partition holds,
// without reading its free space. (Like such a dd, the image is not a
// snapshot of one moment; stopping the services that write is what makes
// their files consistent, and the restore's e2fsck replays the journal.)
//
// The device must be read through its page cache (not O_DIRECT): the
// kernel keeps the bitmaps it is changing there, so a buffered read sees
// the current map even before the journal reaches the disk. That is also
// why the journal's "needs recovery" flag, which a mounted filesystem
// always carries, does not make the map untrusted here as it does for an
// image (Analyze).
//
// A FAT (the boot partition, mounted at /boot/firmware) is mapped the same
// way, its whole table read again for each window: a few hundred KiB for a
// boot partition.
type Live struct {
	d      *dev
	fs     *extFS // ext2/3/4; nil for FAT
	fsType string
}

// OpenLive reads the superblock of the filesystem of type fsType ("ext2",
// "ext3", "ext4", "vfat", or "" to detect it) in r, the partition's block
// device of size bytes. known is false, with the reason, when the map
// cannot be trusted (another filesystem, an unknown feature, bigalloc,
// errors); the caller then reads the whole partition. err is an I/O error
// only.
func OpenLive(r io.ReaderAt, size int64, fsType string) (l *Live, known bool, reason string, err error) {
	d := &dev{r: r, size: size}
	if fsType == "" {
		fsType = d.sniff()
	}
	switch fsType {
	case "vfat", "fat", "fat12", "fat16", "fat32", "msdos":
		res, err := Analyze(r, size, "vfat")
		if err != nil || !res.Known {
			return nil, false, res.Reason, err
		}
		return &Live{d: d, fsType: "vfat"}, true, "", nil
	case "ext2", "ext3", "ext4":
	default:
		return nil, false, "no allocation map reader for " + fsType, nil
	}
	fs, err := readExtSuper(d, true)
	var u *unsupportedError
	if errors.As(err, &u) {
		return nil, false, u.reason, nil
	}
	if err != nil {
		return nil, false, "", err
	}
	return &Live{d: d, fs: fs, fsType: "ext4"}, true, "", nil
}

// Window is the size of the range to map at a time: an ext block group
// (128 MiB with 4 KiB blocks), 64 MiB of a FAT.
func (l *Live) Window() int64 {
	if l.fs == nil {
		return 64 << 20
	}
	return int64(l.fs.bpg * l.fs.bs)
}

// Extents returns the allocated ranges within [from, to) of the partition
// as the map reads now: the descriptors and bitmaps of the groups that
// overlap it are read again on every call. known is false when what was
// read cannot be trusted (a descriptor pointing outside the filesystem);
// the caller then reads [from, to) whole.
func (l *Live) Extents(from, to int64) (ext []Extent, known bool, err error) {
	if l.fs == nil {
		res, err := Analyze(l.d.r, l.d.size, l.fsType)
		if err != nil || !res.Known {
			return nil, false, err
		}
		return clipExtents(res.Extents, from, to), true, nil
	}
	bs := int64(l.fs.bs)
	first := uint64(max(from/bs, int64(l.fs.firstData))-int64(l.fs.firstData)) / l.fs.bpg
	last := (uint64(max((to+bs-1)/bs, int64(l.fs.firstData+1))) - l.fs.firstData + l.fs.bpg - 1) / l.fs.bpg
	b := newBuilder(l.d.size)
	err = l.fs.groupExtents(first, last, b)
	var u *unsupportedError
	if errors.As(err, &u) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	// Clip to the window: a group's metadata may sit in another group
	// (flex_bg); the window that holds it reports it.
	return clipExtents(b.finish(), from, to), true, nil
}

// clipExtents cuts sorted extents to [from, to).
func clipExtents(in []Extent, from, to int64) []Extent {
	var out []Extent
	for _, e := range in {
		s, end := max(e.Off, from), min(e.End(), to)
		if end > s {
			out = append(out, Extent{Off: s, Len: end - s})
		}
	}
	return out
}
