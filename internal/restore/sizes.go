package restore

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"syscall"
)

const mib = 1 << 20

// ext4Journal is the journal mke2fs (1.47) gives a filesystem of size
// bytes with 4 KiB blocks (ext2fs_default_journal_size).
func ext4Journal(size int64) int64 {
	blocks := size / 4096
	switch {
	case blocks < 2048:
		return 0
	case blocks < 32768:
		return 4 * mib
	case blocks < 256*1024:
		return 16 * mib
	case blocks < 512*1024:
		return 32 * mib
	case blocks < 4096*1024:
		return 64 * mib
	case blocks < 8192*1024:
		return 128 * mib
	case blocks < 16384*1024:
		return 256 * mib
	case blocks < 32768*1024:
		return 512 * mib
	}
	return 1024 * mib
}

// ext4Overhead estimates what a fresh ext4 of size bytes (mkfs.ext4
// defaults: 4 KiB blocks, 256-byte inodes, one inode per 16 KiB) keeps for
// itself: the journal, inode tables (1/64 of the size), bitmaps, group
// descriptors and reserved GDT blocks (about 1/128), and a few MiB of
// fixed structures. Reserved blocks (5%) are not counted: the restore
// writes as root, which may use them.
func ext4Overhead(size int64) int64 {
	return ext4Journal(size) + size/64 + size/128 + 4*mib
}

// ext4Need returns the smallest partition size (whole MiB) whose fresh
// ext4 holds data bytes of files plus a 10% margin (block rounding of
// small files, directories, xattr blocks, and room to boot).
func ext4Need(data int64) int64 {
	want := data + data/10
	size := want
	for range 50 {
		next := want + ext4Overhead(size)
		if next <= size {
			break
		}
		size = next
	}
	return (size + mib - 1) / mib * mib
}

// treeUsage sums the space the files under root of fsys occupy: allocated
// blocks when the filesystem reports them (so sparse files count what they
// hold), hardlinked files once. skip reports top-level names to leave out
// (the set's own metadata files).
func treeUsage(ctx context.Context, fsys fs.FS, skip func(name string) bool) (bytes int64, entries int, err error) {
	seen := map[[2]uint64]bool{}
	err = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p != "." && skip != nil && !containsSlash(p) && skip(p) {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		entries++
		info, err := d.Info()
		if err != nil {
			return err
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			if st.Nlink > 1 && !d.IsDir() {
				k := [2]uint64{st.Dev, st.Ino}
				if seen[k] {
					return nil
				}
				seen[k] = true
			}
			bytes += st.Blocks * 512
			return nil
		}
		// No block counts (SFTP): round sizes up to 4 KiB blocks.
		bytes += (info.Size() + 4095) / 4096 * 4096
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("measure tree: %w", err)
	}
	return bytes, entries, nil
}

func containsSlash(p string) bool {
	for i := 0; i < len(p); i++ {
		if p[i] == '/' {
			return true
		}
	}
	return false
}

// countStream reads r to the end and returns how many bytes it held: the
// uncompressed size of a compressed tar, which no header records.
func countStream(ctx context.Context, r io.Reader) (int64, error) {
	buf := make([]byte, 1<<20)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		m, err := r.Read(buf)
		n += int64(m)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// human formats bytes for the plan.
