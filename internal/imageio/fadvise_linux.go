package imageio

import (
	"os"

	"golang.org/x/sys/unix"
)

// adviser tells the kernel how a source file is read: in the extents
// asked for and nothing more (FADV_RANDOM turns readahead off: the reads
// are already large and aligned, up to BlockSize each, and readahead
// would go on past the end of every run of used blocks into free space;
// with a 4 MiB read_ahead_kb a used-blocks copy read 1.7 times the blocks
// in use), and not again (so what was read leaves the page cache instead
// of pushing out the running system's pages on a 512 MB Pi). Advice is
// only advice: errors are ignored, and a source that is not an *os.File
// gets none.
//
// FADV_RANDOM stops only the readahead of a read that finds its pages
// missing. A page that is cached already may carry the kernel's "start
// the next readahead here" mark from whoever read it before (backupctl's
// own look at the partition table and superblocks, through another open
// file), and a read that reaches a marked page starts a readahead window
// (read_ahead_kb, 8 MiB on the soak's virtio disk) whatever the advice:
// on the soak's fixture that read 14 MiB of a FAT with 4 MiB in use, and
// made a live dd read 1.28 times the used blocks instead of 1.1. So the
// source's clean cached pages are dropped before the copy; the few the
// copy needs it reads again, unmarked.
type adviser struct{ f *os.File }

func newAdviser(src any) adviser {
	f, ok := src.(*os.File)
	if w, isWrapper := src.(FileReader); isWrapper {
		f, ok = w.File(), true
	}
	if !ok || f == nil {
		return adviser{}
	}
	NoReadahead(f)
	_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
	return adviser{f: f}
}

// NoReadahead asks the kernel not to read ahead of what is read through
// f: for the small scattered reads of a partition table, superblock or
// allocation map, whose readahead would be free space read for nothing.
// The page cache is still used (a live map needs the kernel's current
// bitmaps, which live there).
func NoReadahead(f *os.File) {
	_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_RANDOM)
}

// done drops [off, off+n) from the page cache. On a block device that
// can include clean metadata buffers of a mounted filesystem; the kernel
// keeps the ones in use, and the rest are read again when needed.
func (a adviser) done(off, n int64) {
	if a.f != nil {
		_ = unix.Fadvise(int(a.f.Fd()), off, n, unix.FADV_DONTNEED)
	}
}

func (a adviser) close() {
	if a.f != nil {
		_ = unix.Fadvise(int(a.f.Fd()), 0, 0, unix.FADV_NORMAL)
	}
}
