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
type adviser struct{ f *os.File }

func newAdviser(src any) adviser {
	f, ok := src.(*os.File)
	if w, isWrapper := src.(FileReader); isWrapper {
		f, ok = w.File(), true
	}
	if !ok || f == nil {
		return adviser{}
	}
	_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_RANDOM)
	return adviser{f: f}
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
