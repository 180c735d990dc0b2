package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
)

// Dir is a local folder, or a remote one the system has mounted.
type Dir struct {
	root string
	fsys fs.FS
}

var _ Store = (*Dir)(nil)

// OpenDir opens the folder at root, which must exist.
func OpenDir(root string) (*Dir, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("backup folder %s: %w", root, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("backup folder: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("backup folder %s: not a folder", abs)
	}
	return &Dir{root: abs, fsys: os.DirFS(abs)}, nil
}

func (d *Dir) path(name string) string { return filepath.Join(d.root, filepath.FromSlash(name)) }

// FS implements Store. os.DirFS's files are *os.File: ReaderAt, Seeker.
func (d *Dir) FS() fs.FS { return d.fsys }

// Create implements Store.
func (d *Dir) Create(_ context.Context, name string) (File, error) {
	if err := checkName("create", name); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(d.path(name)), 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", name, err)
	}
	// Private until told otherwise (OSFile): a set holds every file of
	// a system, /etc/shadow included.
	f, err := os.OpenFile(d.path(name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", name, err)
	}
	return &dirFile{f: f, name: name}, nil
}

type dirFile struct {
	f      *os.File
	name   string
	closed bool
}

// OSFile is the file being written. The backup engine uses it where a
// local file can do more than a stream: leave holes in a raw image, let
// GNU tar write into it directly, set its mode.
func (f *dirFile) OSFile() *os.File { return f.f }

func (f *dirFile) Write(p []byte) (int, error) {
	n, err := f.f.Write(p)
	if err != nil {
		err = fmt.Errorf("write %s: %w", f.name, err)
	}
	return n, err
}

// Close syncs the file and its folder entry, so a completed file
// survives a power cut.
func (f *dirFile) Close() error {
	if f.closed {
		return nil
	}
	f.closed = true
	err := f.f.Sync()
	if cerr := f.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = syncDir(filepath.Dir(f.f.Name()))
	}
	if err != nil {
		return fmt.Errorf("complete %s: %w", f.name, err)
	}
	return nil
}

func (f *dirFile) Abort() error {
	if !f.closed {
		f.closed = true
		f.f.Close()
	}
	if err := os.Remove(f.f.Name()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("discard %s: %w", f.name, err)
	}
	return nil
}

func syncDir(p string) error {
	d, err := os.Open(p)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// MkdirAll implements Store.
func (d *Dir) MkdirAll(_ context.Context, name string) error {
	if err := checkName("mkdir", name); err != nil {
		return err
	}
	return os.MkdirAll(d.path(name), 0o755)
}

// CanRename implements Store.
func (d *Dir) CanRename() bool { return true }

// Rename implements Store. rename(2) replaces an empty folder and any
// file silently, so the new name is checked first; the folder holding it
// is synced so the rename survives a power cut.
func (d *Dir) Rename(_ context.Context, oldname, newname string) error {
	if err := checkName("rename", oldname); err != nil {
		return err
	}
	if err := checkName("rename", newname); err != nil {
		return err
	}
	if _, err := os.Lstat(d.path(newname)); err == nil {
		return &fs.PathError{Op: "rename", Path: newname, Err: fs.ErrExist}
	}
	if err := os.MkdirAll(filepath.Dir(d.path(newname)), 0o755); err != nil {
		return fmt.Errorf("rename %s: %w", oldname, err)
	}
	if err := os.Rename(d.path(oldname), d.path(newname)); err != nil {
		return err
	}
	return syncDir(filepath.Dir(d.path(newname)))
}

// RemoveAll implements Store.
func (d *Dir) RemoveAll(_ context.Context, name string) error {
	if err := checkName("remove", name); err != nil {
		return err
	}
	return os.RemoveAll(d.path(path.Clean(name)))
}

// Local implements Store.
func (d *Dir) Local() string { return d.root }

// String implements Store.
func (d *Dir) String() string { return d.root }

// Close implements Store.
func (d *Dir) Close() error { return nil }
