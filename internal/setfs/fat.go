package setfs

import (
	"fmt"
	"io"
	"io/fs"
	"sync"
	"syscall"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem"

	"github.com/pibackup/pibackup/internal/disklayout"
)

// fatTree builds the tree of the FAT filesystem at [start, start+size)
// of f, read with go-diskfs: the kernel may have no vfat driver (the
// recovery, our test hosts). FAT keeps no owners or modes; they show as
// the kernel's vfat shows them by default to root: root-owned, 0755.
func fatTree(t *tree, f fs.File, start, size int64) (*entry, error) {
	fsys, err := disklayout.OpenFAT(file.New(f, true), start, size)
	if err != nil {
		return nil, err
	}
	fat := &fatFS{fsys: fsys}
	root := t.newEntry(syscall.S_IFDIR | 0o755)
	err = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == "." {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		mode := uint32(syscall.S_IFREG | 0o755)
		if d.IsDir() {
			mode = syscall.S_IFDIR | 0o755
		}
		e := t.newEntry(mode)
		e.mtime, e.atime = fi.ModTime(), fi.ModTime()
		if !d.IsDir() {
			e.size = fi.Size()
			e.content = &fatFile{fat: fat, name: p}
		}
		t.put(root, p, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the FAT filesystem: %w", err)
	}
	return root, nil
}

// fatFS serialises access to go-diskfs, which is not safe for concurrent
// use.
type fatFS struct {
	mu   sync.Mutex
	fsys filesystem.FileSystem
}

type fatFile struct {
	fat  *fatFS
	name string
}

// open reads the whole file: boot files are small (the largest, a
// kernel, is some MiB) and go-diskfs reads FAT files sequentially.
func (ff *fatFile) open() (reader, error) {
	ff.fat.mu.Lock()
	defer ff.fat.mu.Unlock()
	f, err := ff.fat.fsys.Open(ff.name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("read %s from the FAT filesystem: %w", ff.name, err)
	}
	return bytesReader{b}, nil
}

type bytesReader struct{ b []byte }

func (r bytesReader) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(r.b)) {
		return 0, io.EOF
	}
	n := copy(p, r.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (bytesReader) Close() error { return nil }
