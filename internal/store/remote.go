package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"

	"github.com/pibackup/pibackup/internal/source"
)

// remoteClient is a network file client (SFTP, SMB) in its own path
// syntax: what a remote store needs besides its fs.FS.
type remoteClient interface {
	MkdirAll(p string) error
	Lstat(p string) (fs.FileInfo, error)
	// Rename renames; it may replace an existing target.
	Rename(oldp, newp string) error
	// RemoveAll removes p and below; a missing p may be an error.
	RemoveAll(p string) error
	Remove(p string) error
	// Create makes a new file; it fails when p exists.
	Create(p string) (remoteWriter, error)
	// Close disconnects.
	Close() error
}

// remoteWriter is a file being uploaded.
type remoteWriter interface {
	io.Writer
	// Close ends the upload: what was written is on the server's disk
	// (as far as the server lets a client ask for that).
	Close() error
	// Abort ends the upload and drops what is not sent yet.
	Abort()
}

// remote is a Store on a network file server: the folder root of c.
type remote struct {
	url    string // without secrets
	c      remoteClient
	path   func(name string) string // a Store name as c's path below the folder
	mapErr func(error) error        // c's errors to the io/fs sentinels
	fsys   fs.FS
	closed bool
}

var _ Store = (*remote)(nil)

// err wraps err for op on name, with the io/fs sentinels and
// source.ErrConnectionLost where they apply.
func (r *remote) err(op, name string, err error) error {
	return &fs.PathError{Op: op, Path: r.url + "/" + name, Err: source.LostErr(r.mapErr(err))}
}

func (r *remote) exists(name string) bool {
	_, err := r.c.Lstat(r.path(name))
	return err == nil
}

// mkdirParent makes the folder holding name.
func (r *remote) mkdirParent(op, name string) error {
	if dir := path.Dir(name); dir != "." {
		if err := r.c.MkdirAll(r.path(dir)); err != nil {
			return r.err(op, name, err)
		}
	}
	return nil
}

// FS implements Store.
func (r *remote) FS() fs.FS { return r.fsys }

// Create implements Store.
func (r *remote) Create(_ context.Context, name string) (File, error) {
	if err := checkName("create", name); err != nil {
		return nil, err
	}
	if err := r.mkdirParent("create", name); err != nil {
		return nil, err
	}
	w, err := r.c.Create(r.path(name))
	if err != nil {
		// SFTP v3 has no "exists" status: OpenSSH says "failure".
		if r.exists(name) {
			err = fs.ErrExist
		}
		return nil, r.err("create", name, err)
	}
	return &remoteFile{r: r, name: name, w: w}, nil
}

type remoteFile struct {
	r       *remote
	name    string
	w       remoteWriter
	written int64
	ended   bool
}

func (f *remoteFile) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	f.written += int64(n)
	if err != nil {
		return n, f.r.err("write", f.name, err)
	}
	return n, nil
}

// Close implements File: the upload completes, and the server's size
// must be what was written.
func (f *remoteFile) Close() error {
	if f.ended {
		return nil
	}
	f.ended = true
	if err := f.w.Close(); err != nil {
		return f.r.err("complete", f.name, err)
	}
	fi, err := f.r.c.Lstat(f.r.path(f.name))
	if err != nil {
		return f.r.err("complete", f.name, err)
	}
	if fi.Size() != f.written {
		return fmt.Errorf("complete %s/%s: the server holds %d bytes, %d were written", f.r.url, f.name, fi.Size(), f.written)
	}
	return nil
}

// Abort implements File.
func (f *remoteFile) Abort() error {
	if !f.ended {
		f.ended = true
		f.w.Abort()
	}
	if err := f.r.c.Remove(f.r.path(f.name)); err != nil && !errors.Is(f.r.mapErr(err), fs.ErrNotExist) {
		return f.r.err("discard", f.name, err)
	}
	return nil
}

// MkdirAll implements Store.
func (r *remote) MkdirAll(_ context.Context, name string) error {
	if err := checkName("mkdir", name); err != nil {
		return err
	}
	if err := r.c.MkdirAll(r.path(name)); err != nil {
		return r.err("mkdir", name, err)
	}
	return nil
}

// CanRename implements Store.
func (r *remote) CanRename() bool { return true }

// Rename implements Store. The clients' renames replace some targets
// (go-smb2 asks for it; OpenSSH renames a folder over an empty one), so
// the target is checked first, as on a local disk.
func (r *remote) Rename(_ context.Context, oldname, newname string) error {
	for _, n := range []string{oldname, newname} {
		if err := checkName("rename", n); err != nil {
			return err
		}
	}
	if r.exists(newname) {
		return r.err("rename", newname, fs.ErrExist)
	}
	if err := r.mkdirParent("rename", newname); err != nil {
		return err
	}
	if err := r.c.Rename(r.path(oldname), r.path(newname)); err != nil {
		if r.exists(newname) {
			err = fs.ErrExist // made by someone else meanwhile
		}
		return r.err("rename", oldname, err)
	}
	return nil
}

// RemoveAll implements Store.
func (r *remote) RemoveAll(_ context.Context, name string) error {
	if err := checkName("remove", name); err != nil {
		return err
	}
	if err := r.c.RemoveAll(r.path(name)); err != nil && !errors.Is(r.mapErr(err), fs.ErrNotExist) {
		return r.err("remove", name, err)
	}
	return nil
}

// Local implements Store: a server read in user space has no local path.
func (r *remote) Local() string { return "" }

// String implements Store.
func (r *remote) String() string { return r.url }

// Close implements Store.
func (r *remote) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	return r.c.Close()
}
