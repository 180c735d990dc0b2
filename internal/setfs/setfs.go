// Package setfs shows backup sets as a read-only filesystem (FUSE, with
// hanwen/go-fuse): `backupctl mount SET MOUNTPOINT` puts the backed-up
// root filesystem at MOUNTPOINT/root and the boot partition at
// MOUNTPOINT/boot, with owners, modes, times, xattrs, symlinks and
// hardlinks as they were; `backupctl mount HOSTDIR MOUNTPOINT` shows one
// folder per set, each opened when first looked into.
//
// Each set type is read where its data is:
//   - rsync: backupctl's sets through their listing and extras file
//     (attributes) and tree (content), as a restore reads them;
//     raspiBackup's, which have no listing, as a passthrough of the tree.
//   - tar, tgz, tar.zst: an index of the archive's members built once and
//     cached (see tar.go); a file is read at its offset.
//   - dd, ddz: the image's ext4 mounted read-only from a loop device and
//     passed through; a compressed image is decompressed once into the
//     cache, sparsely. The boot partition, in every type, is read with
//     go-diskfs: the kernel may have no vfat driver.
package setfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/compress"
	"github.com/pibackup/pibackup/internal/disklayout"
)

// ErrUnsupported means a set cannot be shown.
var ErrUnsupported = errors.New("this set cannot be mounted")

// ErrCompressed means a set would have to be decompressed into the cache
// to be shown, and Options.NoDecompress forbids it.
var ErrCompressed = errors.New("the set is compressed and would first be decompressed in full")

// Options tunes Mount.
type Options struct {
	// CacheDir keeps tar indexes and decompressed archives and images
	// between mounts; DefaultCacheDir when empty.
	CacheDir string
	Log      *slog.Logger
	// Out, if not nil, gets a line before each slow first-time step
	// (indexing an archive, decompressing an image), so a user waiting
	// at a Pi's console knows why.
	Out io.Writer
	// NoDecompress refuses (ErrCompressed) a compressed payload (tgz,
	// tar.zst, ddz) that is not already decompressed in CacheDir, instead
	// of decompressing it there: for a cache in RAM, as in the recovery,
	// a root filesystem's full size does not fit.
	NoDecompress bool
}

func (o Options) note(format string, args ...any) {
	if o.Out != nil {
		fmt.Fprintf(o.Out, format+"\n", args...)
	}
}

// DefaultCacheDir is /var/cache/backupctl for root (backupctl's usual
// user on a Pi), else the user's cache folder.
func DefaultCacheDir() string {
	if os.Geteuid() == 0 {
		return "/var/cache/backupctl"
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "backupctl")
	}
	return filepath.Join(os.TempDir(), "backupctl-cache")
}

// Server is a mounted view.
type Server struct {
	dir  string
	fuse *fuse.Server
	m    *mounter
}

// mounter holds what the mounted sets opened.
type mounter struct {
	opts  Options
	bases atomic.Uint64 // tree numbers (tree.base >> 40)
	inos  atomic.Uint64 // inode numbers of the folders above the trees
	// lazy is set when the view had to be detached lazily: its open
	// files still hold the image mounts until this process ends, so
	// they are released without waiting for them.
	lazy atomic.Bool

	mu       sync.Mutex
	releases []func()
}

func (m *mounter) newTree() *tree { return &tree{base: m.bases.Add(1) << 40} }

func (m *mounter) onRelease(f func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.releases = append(m.releases, f)
}

// Mount shows src, a set folder or a host folder holding sets, at
// mountpoint. A single set is opened before mounting, so a set that
// cannot be shown is an error here; a host folder's sets are opened when
// first looked into.
func Mount(ctx context.Context, src, mountpoint string, opts Options) (*Server, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.CacheDir == "" {
		opts.CacheDir = DefaultCacheDir()
	}
	fi, err := os.Stat(src)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a folder: give a set folder or a host folder holding sets", src)
	}
	if mi, err := os.Stat(mountpoint); err != nil || !mi.IsDir() {
		return nil, fmt.Errorf("mount point %s: not a folder (create it first)", mountpoint)
	}
	m := &mounter{opts: opts}
	m.inos.Store(1) // 1 is the mount's root
	var root fs.InodeEmbedder
	if _, err := backupset.Parse(filepath.Base(src)); err == nil {
		s := &setNode{m: m, dir: src, attr: dirAttr(fi)}
		if err := s.open(ctx); err != nil {
			m.release()
			return nil, err
		}
		root = s
	} else {
		h, err := m.hostNode(src, fi)
		if err != nil {
			return nil, err
		}
		root = h
	}
	long := time.Hour // nothing changes under a read-only view
	srv, err := fs.Mount(mountpoint, root, &fs.Options{
		EntryTimeout:    &long,
		AttrTimeout:     &long,
		NegativeTimeout: &long,
		// Mode 0 is a mode like any other (a key file of 0000), not
		// "unset".
		NullPermissions: true,
		MountOptions: fuse.MountOptions{
			// As root, mount(2) directly; else through fusermount.
			DirectMount: true,
			// Owners and modes are checked by the kernel as on the
			// original system; root (and, as root, every user) may
			// look.
			AllowOther: os.Geteuid() == 0,
			FsName:     "backupctl:" + filepath.Base(src),
			Name:       "backupctl",
			Options:    []string{"ro", "nodev", "nosuid", "default_permissions"},
		},
	})
	if err != nil {
		m.release()
		return nil, fmt.Errorf("mount on %s: %w", mountpoint, err)
	}
	return &Server{dir: mountpoint, fuse: srv, m: m}, nil
}

// Wait returns once the view is unmounted (umount MOUNTPOINT, or
// Unmount), after releasing what it held (loop devices, image mounts).
func (s *Server) Wait() {
	s.fuse.Wait()
	s.m.release()
}

// Unmount unmounts the view and releases what it held. A mount point
// still in use (a shell in it, an open file) is detached lazily: it
// disappears at once, and its last users see their files fail once this
// process ends.
func (s *Server) Unmount() error {
	if err := s.fuse.Unmount(); err != nil {
		if err2 := syscall.Unmount(s.dir, syscall.MNT_DETACH); err2 != nil {
			return fmt.Errorf("unmount %s: %w", s.dir, errors.Join(err, err2))
		}
		s.m.lazy.Store(true)
		s.m.opts.Log.Warn("the mount point was in use; detached it lazily", "mountpoint", s.dir)
	}
	s.m.release()
	return nil
}

func (m *mounter) release() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, f := range slices.Backward(m.releases) {
		f()
	}
	m.releases = nil
}

func dirAttr(fi os.FileInfo) fuse.Attr {
	var a fuse.Attr
	a.Mode = syscall.S_IFDIR | 0o555
	a.Nlink = 2
	mt := fi.ModTime()
	a.SetTimes(&mt, &mt, &mt)
	return a
}

// hostNode is a host folder: one setNode per set in it.
type hostNode struct {
	fs.Inode
	m    *mounter
	attr fuse.Attr
	sets map[string]*setNode
}

func (m *mounter) hostNode(dir string, fi os.FileInfo) (*hostNode, error) {
	es, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	h := &hostNode{m: m, attr: dirAttr(fi), sets: map[string]*setNode{}}
	for _, e := range es {
		if _, err := backupset.Parse(e.Name()); err != nil || !e.IsDir() {
			continue
		}
		si, err := e.Info()
		if err != nil {
			continue
		}
		h.sets[e.Name()] = &setNode{m: m, dir: filepath.Join(dir, e.Name()), attr: dirAttr(si)}
	}
	if len(h.sets) == 0 {
		return nil, fmt.Errorf("%s holds no backup set: give a set folder (HOST@...-backup-DATE) or the folder of a host that holds sets", dir)
	}
	return h, nil
}

var _ fs.NodeOnAdder = (*hostNode)(nil)

func (h *hostNode) OnAdd(ctx context.Context) {
	for name, s := range h.sets {
		s.attr.Ino = h.m.inos.Add(1)
		h.AddChild(name, h.NewPersistentInode(ctx, s, fs.StableAttr{Mode: syscall.S_IFDIR, Ino: s.attr.Ino}), false)
	}
}

func (h *hostNode) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Attr = h.attr
	return 0
}

// setNode is one set: root/ and boot/, opened once, when first needed.
type setNode struct {
	fs.Inode
	m    *mounter
	dir  string
	attr fuse.Attr

	once   sync.Once
	err    error
	logged sync.Once
	parts  map[string]part
	added  bool
}

// part is a filesystem of a set: an in-memory tree or a passthrough.
type part struct {
	mem  *entry
	node fs.InodeEmbedder
	attr fs.StableAttr
}

var (
	_ fs.NodeOnAdder   = (*setNode)(nil)
	_ fs.NodeLookuper  = (*setNode)(nil)
	_ fs.NodeReaddirer = (*setNode)(nil)
	_ fs.NodeGetattrer = (*setNode)(nil)
)

func (s *setNode) open(ctx context.Context) error {
	s.once.Do(func() { s.parts, s.err = s.m.openSet(ctx, s.dir) })
	return s.err
}

func (s *setNode) OnAdd(ctx context.Context) {
	if s.parts != nil {
		s.addParts(ctx)
	}
}

// addParts makes root/ and boot/ children of the set's folder.
func (s *setNode) addParts(ctx context.Context) {
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	if s.added {
		return
	}
	s.added = true
	for name, p := range s.parts {
		var ch *fs.Inode
		if p.mem != nil {
			ch = s.NewPersistentInode(ctx, &memNode{e: p.mem}, fs.StableAttr{Mode: syscall.S_IFDIR, Ino: p.mem.ino})
		} else {
			ch = s.NewPersistentInode(ctx, p.node, p.attr)
		}
		s.AddChild(name, ch, false)
	}
}

func (s *setNode) ready(ctx context.Context) syscall.Errno {
	if err := s.open(context.WithoutCancel(ctx)); err != nil {
		// A set of a host folder, opened on first look: the log is
		// the only place to say why it shows as an I/O error.
		s.logged.Do(func() { s.m.opts.Log.Error("cannot show the set", "set", filepath.Base(s.dir), "err", err) })
		return syscall.EIO
	}
	s.addParts(ctx)
	return 0
}

func (s *setNode) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Attr = s.attr
	return 0
}

func (s *setNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if errno := s.ready(ctx); errno != 0 {
		return nil, errno
	}
	ch := s.GetChild(name)
	if ch == nil {
		return nil, syscall.ENOENT
	}
	if g, ok := ch.Operations().(fs.NodeGetattrer); ok {
		var a fuse.AttrOut
		if errno := g.Getattr(ctx, nil, &a); errno != 0 {
			return nil, errno
		}
		out.Attr = a.Attr
	}
	return ch, 0
}

func (s *setNode) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	if errno := s.ready(ctx); errno != 0 {
		return nil, errno
	}
	var list []fuse.DirEntry
	for _, name := range []string{"boot", "root"} {
		if ch := s.GetChild(name); ch != nil {
			list = append(list, fuse.DirEntry{Name: name, Mode: syscall.S_IFDIR, Ino: ch.StableAttr().Ino})
		}
	}
	return fs.NewListDirStream(list), 0
}

// openSet opens the root and boot filesystems of the set in dir.
func (m *mounter) openSet(ctx context.Context, dir string) (map[string]part, error) {
	name, err := backupset.Parse(filepath.Base(dir))
	if err != nil {
		return nil, fmt.Errorf("%s is not a backup set folder: %w", dir, err)
	}
	if _, err := os.Stat(filepath.Join(dir, backupset.MetaFile(name.Host, backupset.SuffixBlkid))); err == nil {
		return nil, fmt.Errorf("%w: %s is partition-oriented (one payload per partition); restore it, or extract from a normal-mode set",
			ErrUnsupported, filepath.Base(dir))
	}
	base := filepath.Base(dir)
	parts := map[string]part{}
	switch name.Type {
	case backupset.TypeRsync:
		root, err := m.rsyncRoot(dir, name.Host)
		if err != nil {
			return nil, err
		}
		parts["root"] = root
	case backupset.TypeTar, backupset.TypeTGZ:
		payload := ""
		es, err := os.ReadDir(dir)
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			if b, _, ok := backupset.TarPayloadBase(e.Name()); ok && b == base {
				payload = filepath.Join(dir, e.Name())
			}
		}
		if payload == "" {
			return nil, fmt.Errorf("%w: no %s.tar* payload in %s", ErrUnsupported, base, dir)
		}
		root, err := m.tarPart(payload)
		if err != nil {
			return nil, err
		}
		parts["root"] = root
	case backupset.TypeDD, backupset.TypeDDZ:
		return m.imageParts(ctx, dir, base)
	default:
		return nil, fmt.Errorf("%w: type %s", ErrUnsupported, name.Type)
	}
	boot, err := m.bootFile(dir, name.Host)
	if err != nil {
		return nil, err
	}
	parts["boot"] = boot
	return parts, nil
}

// rsyncRoot shows an rsync set's tree.
func (m *mounter) rsyncRoot(dir, host string) (part, error) {
	t := m.newTree()
	mf, _, err := backupset.ReadManifestIn(os.DirFS(dir), ".", host)
	if err != nil && !errors.Is(err, iofs.ErrNotExist) {
		return part{}, fmt.Errorf("%s: %w", filepath.Base(dir), err)
	}
	if err == nil {
		for _, tr := range mf.Trees {
			if tr.Root == "." && tr.Listing != "" && tr.Extras != "" {
				root, err := listedTree(t, dir, mf, tr.Root, tr.Listing, tr.Extras)
				if err != nil {
					return part{}, fmt.Errorf("%s: %w", filepath.Base(dir), err)
				}
				return part{mem: root}, nil
			}
		}
	}
	// raspiBackup's sets (and older backupctl's without an extras file)
	// keep every attribute in the tree itself.
	node, attr, err := passthrough(dir, t.base, func(name string) bool { return backupset.IsOwnFile(host, name) })
	if err != nil {
		return part{}, err
	}
	return part{node: node, attr: attr}, nil
}

func (m *mounter) tarPart(payload string) (part, error) {
	f, idx, err := openTar(payload, m.opts)
	if err != nil {
		return part{}, err
	}
	m.onRelease(func() { f.Close() })
	return part{mem: tarTree(m.newTree(), f, idx)}, nil
}

// bootFile shows the boot partition a tar or rsync set keeps beside its
// root: a FAT image (<host>-backup.img) or a tar of it (<host>-backup.tmg).
func (m *mounter) bootFile(dir, host string) (part, error) {
	img := filepath.Join(dir, backupset.MetaFile(host, backupset.SuffixBootImage))
	if f, err := os.Open(img); err == nil {
		m.onRelease(func() { f.Close() })
		fi, err := f.Stat()
		if err != nil {
			return part{}, err
		}
		root, err := fatTree(m.newTree(), f, 0, fi.Size())
		if err != nil {
			return part{}, fmt.Errorf("%s: %w", filepath.Base(img), err)
		}
		return part{mem: root}, nil
	}
	tmg := filepath.Join(dir, backupset.MetaFile(host, backupset.SuffixBootTar))
	if _, err := os.Stat(tmg); err == nil {
		return m.tarPart(tmg)
	}
	m.opts.Log.Warn("the set has no boot partition image; boot/ is empty", "set", filepath.Base(dir))
	return part{mem: m.newTree().newEntry(syscall.S_IFDIR | 0o755)}, nil
}

// imageParts shows the ext4 root and FAT boot partition of a dd or ddz
// set's image.
func (m *mounter) imageParts(ctx context.Context, dir, base string) (map[string]part, error) {
	var img string
	for _, ext := range []string{".img", ".img.gz", ".img.zst"} {
		if p := filepath.Join(dir, base+ext); fileExists(p) {
			img = p
			break
		}
	}
	if img == "" {
		return nil, fmt.Errorf("%w: no %s.img* in %s", ErrUnsupported, base, dir)
	}
	if backupset.CompressionOf(img) != backupset.CompressNone {
		var err error
		if img, err = m.decompressedImage(img); err != nil {
			return nil, err
		}
	}
	d, err := disklayout.ReadFile(img)
	if err != nil {
		return nil, err
	}
	parts := map[string]part{}
	for _, p := range d.Partitions {
		switch {
		case p.FSType == "vfat" && parts["boot"].mem == nil:
			f, err := os.Open(img)
			if err != nil {
				return nil, err
			}
			m.onRelease(func() { f.Close() })
			root, err := fatTree(m.newTree(), f, p.Start, p.Size)
			if err != nil {
				return nil, fmt.Errorf("boot partition: %w", err)
			}
			parts["boot"] = part{mem: root}
		case (p.FSType == "ext4" || p.FSType == "ext3" || p.FSType == "ext2") && parts["root"].node == nil:
			mnt, release, err := mountExt4(ctx, img, p.Start, p.Size)
			if err != nil {
				return nil, err
			}
			m.onRelease(func() { release(m.lazy.Load()) })
			node, attr, err := passthrough(mnt, m.newTree().base, nil)
			if err != nil {
				return nil, err
			}
			parts["root"] = part{node: node, attr: attr}
		}
	}
	if parts["root"].node == nil {
		return nil, fmt.Errorf("%w: no ext2/3/4 root filesystem in %s", ErrUnsupported, filepath.Base(img))
	}
	if parts["boot"].mem == nil {
		parts["boot"] = part{mem: m.newTree().newEntry(syscall.S_IFDIR | 0o755)}
	}
	return parts, nil
}

// decompressedImage returns a compressed image decompressed into the
// cache (once; kept for later mounts). Runs of zeros are left as holes,
// so the cache takes about the space of the data in the image, not its
// full size. gzip cannot be entered in the middle, and the zstd writer
// makes a single frame: a loop device needs random access.
func (m *mounter) decompressedImage(img string) (string, error) {
	key, err := cacheKey(img)
	if err != nil {
		return "", err
	}
	out := filepath.Join(m.opts.CacheDir, key+".img")
	if fileExists(out) {
		return out, nil
	}
	if m.opts.NoDecompress {
		return "", fmt.Errorf("%w: %s", ErrCompressed, filepath.Base(img))
	}
	if err := os.MkdirAll(m.opts.CacheDir, 0o700); err != nil {
		return "", fmt.Errorf("cache folder: %w", err)
	}
	m.opts.note("decompressing %s into %s (once; later mounts reuse it)", filepath.Base(img), m.opts.CacheDir)
	zr, err := compress.OpenFile(img)
	if err != nil {
		return "", err
	}
	defer zr.Close()
	tmp, err := os.CreateTemp(m.opts.CacheDir, key+".img.tmp-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	if _, err := copySparse(tmp, zr); err != nil {
		tmp.Close()
		return "", fmt.Errorf("decompress %s into the cache (it needs up to the image's full size): %w", filepath.Base(img), err)
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	return out, os.Rename(tmp.Name(), out)
}

// copySparse copies r to f, seeking over blocks of zeros.
func copySparse(f *os.File, r io.Reader) (int64, error) {
	buf := make([]byte, 1<<20)
	var n int64
	for {
		k, err := io.ReadFull(r, buf)
		if k > 0 {
			if isZero(buf[:k]) {
				if _, err := f.Seek(int64(k), io.SeekCurrent); err != nil {
					return n, err
				}
			} else if _, err := f.Write(buf[:k]); err != nil {
				return n, err
			}
			n += int64(k)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return n, f.Truncate(n)
		}
		if err != nil {
			return n, err
		}
	}
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
