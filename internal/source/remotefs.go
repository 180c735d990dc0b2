package source

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"path"
	"sort"
	"strings"
	"syscall"

	"github.com/cloudsoda/go-smb2"
	"github.com/pkg/sftp"
)

// remote is what remoteFS needs from a network file client (pkg/sftp's
// Client, go-smb2's Share), in the client's own path syntax.
type remote interface {
	Stat(p string) (fs.FileInfo, error)
	ReadDir(p string) ([]fs.FileInfo, error)
	Open(p string) (remoteFile, error)
}

// linker is a remote that shows symlinks as symlinks (SFTP). SMB without
// unix extensions shows the file a symlink points to instead.
type linker interface {
	Lstat(p string) (fs.FileInfo, error)
	ReadLink(p string) (string, error)
}

// remoteFile is an open regular file of a remote.
type remoteFile interface {
	io.ReadSeekCloser
	io.ReaderAt
	io.WriterTo
	Stat() (fs.FileInfo, error)
}

// remoteFS is an io/fs view of a remote rooted at root. It does what
// fs.FS promises and the clients do not all do: valid-path checks, base
// names in FileInfo, sorted ReadDir, io.EOF from a short ReadAt, and the
// fs.ErrNotExist sentinel (the conformance suite checks each of these).
type remoteFS struct {
	r    remote
	root string
	sep  string // the client's path separator
	err  func(error) error
}

var (
	_ fs.ReadDirFS  = (*remoteFS)(nil)
	_ fs.StatFS     = (*remoteFS)(nil)
	_ fs.ReadLinkFS = (*remoteFS)(nil)
)

func newRemoteFS(r remote, root, sep string, mapErr func(error) error) *remoteFS {
	return &remoteFS{r: r, root: root, sep: sep, err: mapErr}
}

// full turns an io/fs name into the client's path.
func (f *remoteFS) full(op, name string) (string, error) {
	if !fs.ValidPath(name) {
		return "", &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	if f.sep != "/" && strings.Contains(name, f.sep) {
		// A "\\" in an io/fs name is part of a file name, but SMB would
		// take it as a separator: such a name cannot exist there.
		return "", &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
	}
	p := path.Join(f.root, name)
	if f.sep != "/" {
		p = strings.ReplaceAll(strings.TrimPrefix(p, "./"), "/", f.sep)
		if p == "." {
			p = ""
		}
	}
	return p, nil
}

func (f *remoteFS) mapErr(op, name string, err error) error {
	return &fs.PathError{Op: op, Path: name, Err: f.err(err)}
}

func (f *remoteFS) Open(name string) (fs.File, error) {
	p, err := f.full("open", name)
	if err != nil {
		return nil, err
	}
	fi, err := f.r.Stat(p)
	if err != nil {
		return nil, f.mapErr("open", name, err)
	}
	if fi.IsDir() {
		return &remoteDir{fs: f, name: name, info: renamed{fi, path.Base(name)}}, nil
	}
	file, err := f.r.Open(p)
	if err != nil {
		return nil, f.mapErr("open", name, err)
	}
	return &remoteFileFS{remoteFile: file, info: renamed{fi, path.Base(name)}}, nil
}

func (f *remoteFS) Stat(name string) (fs.FileInfo, error) {
	p, err := f.full("stat", name)
	if err != nil {
		return nil, err
	}
	fi, err := f.r.Stat(p)
	if err != nil {
		return nil, f.mapErr("stat", name, err)
	}
	return renamed{fi, path.Base(name)}, nil
}

// Lstat is Stat without following a final symlink, where the remote
// shows symlinks at all.
func (f *remoteFS) Lstat(name string) (fs.FileInfo, error) {
	l, ok := f.r.(linker)
	if !ok {
		return f.Stat(name)
	}
	p, err := f.full("lstat", name)
	if err != nil {
		return nil, err
	}
	fi, err := l.Lstat(p)
	if err != nil {
		return nil, f.mapErr("lstat", name, err)
	}
	return renamed{fi, path.Base(name)}, nil
}

// ReadLink returns a symlink's target; a remote that shows no symlinks
// has none to read (fs.ErrInvalid, as for a name that is no symlink).
func (f *remoteFS) ReadLink(name string) (string, error) {
	p, err := f.full("readlink", name)
	if err != nil {
		return "", err
	}
	l, ok := f.r.(linker)
	if !ok {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
	}
	target, err := l.ReadLink(p)
	if err != nil {
		return "", f.mapErr("readlink", name, err)
	}
	return target, nil
}

func (f *remoteFS) ReadDir(name string) ([]fs.DirEntry, error) {
	p, err := f.full("readdir", name)
	if err != nil {
		return nil, err
	}
	infos, err := f.r.ReadDir(p)
	if err != nil {
		return nil, f.mapErr("readdir", name, err)
	}
	out := make([]fs.DirEntry, 0, len(infos))
	for _, fi := range infos {
		if fi.Name() == "." || fi.Name() == ".." {
			continue
		}
		out = append(out, fs.FileInfoToDirEntry(fi))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out, nil
}

// renamed reports name as the file's name: fs.FS wants the base name of
// the path given to Open, "." for the root.
type renamed struct {
	fs.FileInfo
	name string
}

func (r renamed) Name() string { return r.name }

// remoteFileFS is a regular file. Embedding keeps the client's fast
// WriteTo (concurrent reads in pkg/sftp; io.Copy uses it).
type remoteFileFS struct {
	remoteFile
	info fs.FileInfo
}

func (f *remoteFileFS) Stat() (fs.FileInfo, error) { return f.info, nil }

// ReadAt returns io.EOF with a short read, as io.ReaderAt requires.
func (f *remoteFileFS) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.remoteFile.ReadAt(p, off)
	if n < len(p) && err == nil {
		err = io.EOF
	}
	return n, LostErr(err)
}

func (f *remoteFileFS) Read(p []byte) (int, error) {
	n, err := f.remoteFile.Read(p)
	return n, LostErr(err)
}

func (f *remoteFileFS) WriteTo(w io.Writer) (int64, error) {
	n, err := f.remoteFile.WriteTo(w)
	return n, LostErr(err)
}

// LostErr marks the errors of a dead connection (the keepalives of
// dialTCP fired, the server went away) with ErrConnectionLost, so the
// user reads what happened and what to do instead of "read: connection
// lost" or "i/o timeout". A bare io.EOF is a file's end; a wrapped one
// ("failed to send packet: EOF") is the server closing the connection.
// go-smb2's TransportError does not unwrap, so it is matched by type.
func LostErr(err error) error {
	if err == nil || err == io.EOF || errors.Is(err, ErrConnectionLost) {
		return err
	}
	var ne net.Error
	var te *smb2.TransportError
	if errors.As(err, &te) || errors.Is(err, sftp.ErrSSHFxConnectionLost) || errors.Is(err, syscall.ETIMEDOUT) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, net.ErrClosed) || (errors.As(err, &ne) && ne.Timeout()) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w (%w)", ErrConnectionLost, err)
	}
	return err
}

// remoteDir is an open directory; its entries are read on first ReadDir.
type remoteDir struct {
	fs      *remoteFS
	name    string
	info    fs.FileInfo
	entries []fs.DirEntry
	read    bool
	closed  bool
}

func (d *remoteDir) Stat() (fs.FileInfo, error) { return d.info, nil }

func (d *remoteDir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.name, Err: errors.New("is a directory")}
}

func (d *remoteDir) Close() error {
	if d.closed {
		return &fs.PathError{Op: "close", Path: d.name, Err: fs.ErrClosed}
	}
	d.closed = true
	return nil
}

func (d *remoteDir) ReadDir(n int) ([]fs.DirEntry, error) {
	if !d.read {
		e, err := d.fs.ReadDir(d.name)
		if err != nil {
			return nil, err
		}
		d.entries, d.read = e, true
	}
	if n <= 0 {
		out := d.entries
		d.entries = nil
		return out, nil
	}
	if len(d.entries) == 0 {
		return nil, io.EOF
	}
	n = min(n, len(d.entries))
	out := d.entries[:n]
	d.entries = d.entries[n:]
	return out, nil
}
