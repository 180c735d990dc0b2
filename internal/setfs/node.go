package setfs

import (
	"context"
	"io"
	"maps"
	"path"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// entry is one file of a tree held in memory: a tar archive's member, an
// rsync listing's line, a FAT file. Hardlinks are one entry under
// several names, so every name shows the same inode.
type entry struct {
	ino        uint64
	mode       uint32 // st_mode: type and permission bits
	uid, gid   uint32
	size       int64
	mtime      time.Time
	atime      time.Time
	rdev       uint32
	nlink      uint32
	target     string            // symlink target
	xattrs     map[string][]byte // raw values, ACLs and capabilities included
	children   map[string]*entry // directories
	content    content           // regular files
	fileBlocks int64             // 512-byte blocks, 0: computed from size
}

// content opens a regular file's data for reading.
type content interface {
	open() (reader, error)
}

// reader reads one open file. A FUSE read may come from several threads
// at once; implementations are safe for concurrent use.
type reader interface {
	io.ReaderAt
	io.Closer
}

// tree allocates inode numbers for the entries of one filesystem shown
// (a set's root or boot): base is unique per tree, so two sets of a host
// folder never share a number.
type tree struct {
	base uint64
	next uint64
}

func (t *tree) newEntry(mode uint32) *entry {
	t.next++
	e := &entry{ino: t.base | t.next, mode: mode, nlink: 1}
	if mode&syscall.S_IFMT == syscall.S_IFDIR {
		e.children = map[string]*entry{}
		e.nlink = 2
	}
	return e
}

// memNode serves an entry.
type memNode struct {
	fs.Inode
	e *entry
}

var (
	_ fs.NodeGetattrer   = (*memNode)(nil)
	_ fs.NodeLookuper    = (*memNode)(nil)
	_ fs.NodeReaddirer   = (*memNode)(nil)
	_ fs.NodeReadlinker  = (*memNode)(nil)
	_ fs.NodeGetxattrer  = (*memNode)(nil)
	_ fs.NodeListxattrer = (*memNode)(nil)
	_ fs.NodeOpener      = (*memNode)(nil)
)

func (e *entry) fill(out *fuse.Attr) {
	out.Ino = e.ino
	out.Mode = e.mode
	out.Uid, out.Gid = e.uid, e.gid
	out.Size = uint64(e.size)
	out.Blocks = uint64(e.fileBlocks)
	if out.Blocks == 0 {
		out.Blocks = (uint64(e.size) + 511) / 512
	}
	out.Blksize = 4096
	out.Nlink = e.nlink
	out.Rdev = e.rdev
	out.SetTimes(&e.atime, &e.mtime, &e.mtime)
}

func (n *memNode) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.e.fill(&out.Attr)
	return 0
}

func (n *memNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	c, ok := n.e.children[name]
	if !ok {
		return nil, syscall.ENOENT
	}
	c.fill(&out.Attr)
	// NewInode returns the inode already known under c.ino (another
	// name of a hardlink) instead of a second one.
	return n.NewInode(ctx, &memNode{e: c}, fs.StableAttr{Mode: c.mode & syscall.S_IFMT, Ino: c.ino}), 0
}

func (n *memNode) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	names := make([]string, 0, len(n.e.children))
	for name := range n.e.children {
		names = append(names, name)
	}
	slices.Sort(names)
	list := make([]fuse.DirEntry, 0, len(names))
	for _, name := range names {
		c := n.e.children[name]
		list = append(list, fuse.DirEntry{Name: name, Mode: c.mode & syscall.S_IFMT, Ino: c.ino})
	}
	return fs.NewListDirStream(list), 0
}

func (n *memNode) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	if n.e.mode&syscall.S_IFMT != syscall.S_IFLNK {
		return nil, syscall.EINVAL
	}
	return []byte(n.e.target), 0
}

func (n *memNode) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	v, ok := n.e.xattrs[attr]
	if !ok {
		return 0, syscall.ENODATA
	}
	if len(dest) < len(v) {
		return uint32(len(v)), syscall.ERANGE
	}
	return uint32(copy(dest, v)), 0
}

func (n *memNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	var list []byte
	for _, name := range slices.Sorted(maps.Keys(n.e.xattrs)) {
		list = append(append(list, name...), 0)
	}
	if len(dest) < len(list) {
		return uint32(len(list)), syscall.ERANGE
	}
	return uint32(copy(dest, list)), 0
}

func (n *memNode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if flags&(syscall.O_WRONLY|syscall.O_RDWR) != 0 {
		return nil, 0, syscall.EROFS
	}
	if n.e.content == nil {
		return nil, 0, syscall.EINVAL
	}
	r, err := n.e.content.open()
	if err != nil {
		return nil, 0, fs.ToErrno(err)
	}
	// The content never changes: the kernel may keep it cached.
	return &handle{r: r, size: n.e.size}, fuse.FOPEN_KEEP_CACHE, 0
}

// handle is an open regular file.
type handle struct {
	r    reader
	size int64
	once sync.Once
}

var (
	_ fs.FileReader   = (*handle)(nil)
	_ fs.FileReleaser = (*handle)(nil)
)

func (h *handle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if off >= h.size {
		return fuse.ReadResultData(nil), 0
	}
	if rest := h.size - off; int64(len(dest)) > rest {
		dest = dest[:rest]
	}
	n, err := h.r.ReadAt(dest, off)
	if err != nil && err != io.EOF {
		return nil, fs.ToErrno(err)
	}
	return fuse.ReadResultData(dest[:n]), 0
}

func (h *handle) Release(ctx context.Context) syscall.Errno {
	h.once.Do(func() { h.r.Close() })
	return 0
}

// mkdirs returns the directory entry at rel (slash-separated, "" the
// root) below root, making missing directories with mode 0755 as GNU tar
// does for members whose folder the archive lacks.
func (t *tree) mkdirs(root *entry, rel string, mtime time.Time) *entry {
	d := root
	if rel == "" || rel == "." {
		return d
	}
	for _, name := range splitPath(rel) {
		c, ok := d.children[name]
		if !ok || c.children == nil {
			c = t.newEntry(syscall.S_IFDIR | 0o755)
			c.mtime, c.atime = mtime, mtime
			d.children[name] = c
			d.nlink++
		}
		d = c
	}
	return d
}

// put places e at rel below root. A directory already made for an
// earlier member below it keeps its children and takes e's attributes.
func (t *tree) put(root *entry, rel string, e *entry) {
	if rel == "" || rel == "." {
		root.takeAttrs(e)
		return
	}
	dir, name := path.Split(rel)
	d := t.mkdirs(root, strings.TrimSuffix(dir, "/"), e.mtime)
	if old, ok := d.children[name]; ok && old.children != nil {
		if e.children != nil {
			old.takeAttrs(e)
			return
		}
		d.nlink--
	}
	if e.children != nil {
		d.nlink++
	}
	d.children[name] = e
}

func (e *entry) takeAttrs(f *entry) {
	e.mode, e.uid, e.gid, e.mtime, e.atime, e.xattrs = f.mode, f.uid, f.gid, f.mtime, f.atime, f.xattrs
}

func splitPath(rel string) []string {
	return strings.Split(strings.Trim(rel, "/"), "/")
}
