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
	"github.com/pibackup/pibackup/internal/payload"
	"github.com/pibackup/pibackup/internal/size"
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
	// Keys open encrypted sets (age); nil for none.
	Keys *payload.Keys
	// ManifestLast: a set folder without a manifest is one being
	// written (S3 stores make a set visible by its manifest); a host
	// folder does not show it.
	ManifestLast bool
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
	fi, err := os.Stat(src)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a folder: give a set folder or a host folder holding sets", src)
	}
	return MountFS(ctx, os.DirFS(src), filepath.Base(src), src, mountpoint, opts)
}

// MountFS is Mount for a folder read through fsys (a set folder or a
// host folder; on a server, through store.Store's FS, whose files read
// at an offset), named name. local is its path when it is on this
// machine, else "". What is read in place stays where it is (an
// uncompressed tar, also an encrypted one: age decrypts at an offset);
// what needs a local file (a decompressed archive, an image for a loop
// device) is fetched into the cache folder once, with a line to
// Options.Out saying how much. rsync sets need local.
func MountFS(ctx context.Context, fsys iofs.FS, name, local, mountpoint string, opts Options) (*Server, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.CacheDir == "" {
		opts.CacheDir = DefaultCacheDir()
	}
	fi, err := iofs.Stat(fsys, ".")
	if err != nil {
		return nil, err
	}
	if mi, err := os.Stat(mountpoint); err != nil || !mi.IsDir() {
		return nil, fmt.Errorf("mount point %s: not a folder (create it first)", mountpoint)
	}
	m := &mounter{opts: opts}
	m.inos.Store(1) // 1 is the mount's root
	var root fs.InodeEmbedder
	if _, err := backupset.Parse(name); err == nil {
		s := &setNode{m: m, fsys: fsys, name: name, local: local, attr: dirAttr(fi)}
		if err := s.open(ctx); err != nil {
			m.release()
			return nil, err
		}
		root = s
	} else {
		h, err := m.hostNode(fsys, name, local, fi)
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
			FsName:     "backupctl:" + name,
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

func dirAttr(fi iofs.FileInfo) fuse.Attr {
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

func (m *mounter) hostNode(fsys iofs.FS, name, local string, fi iofs.FileInfo) (*hostNode, error) {
	es, err := iofs.ReadDir(fsys, ".")
	if err != nil {
		return nil, err
	}
	h := &hostNode{m: m, attr: dirAttr(fi), sets: map[string]*setNode{}}
	for _, e := range es {
		n, err := backupset.Parse(e.Name())
		if err != nil || !e.IsDir() {
			continue
		}
		if _, err := backupset.FindManifest(fsys, e.Name(), n.Host); err != nil && m.opts.ManifestLast {
			continue
		}
		si, err := e.Info()
		if err != nil {
			continue
		}
		sub, err := iofs.Sub(fsys, e.Name())
		if err != nil {
			continue
		}
		s := &setNode{m: m, fsys: sub, name: e.Name(), attr: dirAttr(si)}
		if local != "" {
			s.local = filepath.Join(local, e.Name())
		}
		h.sets[e.Name()] = s
	}
	if len(h.sets) == 0 {
		return nil, fmt.Errorf("%s holds no backup set: give a set folder (HOST@...-backup-DATE) or the folder of a host that holds sets", name)
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
	m     *mounter
	fsys  iofs.FS // the set folder as stored
	name  string
	local string // its path on this machine, or ""
	attr  fuse.Attr

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
	s.once.Do(func() { s.parts, s.err = s.m.openSet(ctx, s.fsys, s.name, s.local) })
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
		s.logged.Do(func() { s.m.opts.Log.Error("cannot show the set", "set", s.name, "err", err) })
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

// openSet opens the root and boot filesystems of the set in fsys,
// named base, whose local path is local ("" on a server).
func (m *mounter) openSet(ctx context.Context, stored iofs.FS, base, local string) (map[string]part, error) {
	name, err := backupset.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("%s is not a backup set folder: %w", base, err)
	}
	if _, err := iofs.Stat(stored, backupset.MetaFile(name.Host, backupset.SuffixBlkid)); err == nil {
		return nil, fmt.Errorf("%w: %s is partition-oriented (one payload per partition); restore it, or extract from a normal-mode set",
			ErrUnsupported, base)
	}
	fsys, err := payload.SetFS(stored, name.Host, m.opts.Keys)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", base, err)
	}
	src := setSource{fsys: fsys, local: local, encrypted: fsys != stored}
	parts := map[string]part{}
	switch name.Type {
	case backupset.TypeRsync:
		if local == "" {
			return nil, fmt.Errorf("%w: %s is an rsync set, which is read from a local folder (rsync sets are never on a server)", ErrUnsupported, base)
		}
		root, err := m.rsyncRoot(local, name.Host)
		if err != nil {
			return nil, err
		}
		parts["root"] = root
	case backupset.TypeTar, backupset.TypeTGZ:
		payload := ""
		es, err := iofs.ReadDir(fsys, ".")
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			if b, _, ok := backupset.TarPayloadBase(e.Name()); ok && b == base {
				payload = e.Name()
			}
		}
		if payload == "" {
			return nil, fmt.Errorf("%w: no %s.tar* payload in %s", ErrUnsupported, base, base)
		}
		root, err := m.tarPart(src, payload)
		if err != nil {
			return nil, err
		}
		parts["root"] = root
	case backupset.TypeDD, backupset.TypeDDZ:
		return m.imageParts(ctx, src, base)
	default:
		return nil, fmt.Errorf("%w: type %s", ErrUnsupported, name.Type)
	}
	boot, err := m.bootFile(src, base, name.Host)
	if err != nil {
		return nil, err
	}
	parts["boot"] = boot
	return parts, nil
}

// setSource is where a set's files are read: fsys with encrypted
// payloads decrypted; local is the set folder's path on this machine
// ("" on a server).
type setSource struct {
	fsys      iofs.FS
	local     string
	encrypted bool
}

// path is the local path of the file name when it can be read in place
// with local tools (a local folder, not encrypted), else "".
func (s setSource) path(name string) string {
	if s.local == "" || backupset.IsEncrypted(name) {
		return ""
	}
	p := filepath.Join(s.local, name)
	if !fileExists(p) {
		return "" // encrypted: stored as name.age
	}
	return p
}

// openAt opens name for reading at offsets: in place when local, else
// through fsys (ranged reads on a server; age decrypts at an offset).
func (s setSource) openAt(name string) (readerAtCloser, int64, error) {
	f, err := s.fsys.Open(name)
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	ra, ok := f.(readerAtCloser)
	if !ok {
		f.Close()
		return nil, 0, fmt.Errorf("%s: this store reads no file at an offset", name)
	}
	return ra, fi.Size(), nil
}

type readerAtCloser interface {
	io.ReaderAt
	io.Closer
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

func (m *mounter) tarPart(src setSource, payload string) (part, error) {
	f, idx, err := openTar(src, payload, m.opts)
	if err != nil {
		return part{}, err
	}
	m.onRelease(func() { f.Close() })
	return part{mem: tarTree(m.newTree(), f, idx)}, nil
}

// bootFile shows the boot partition a tar or rsync set keeps beside its
// root: a FAT image (<host>-backup.img) or a tar of it (<host>-backup.tmg).
func (m *mounter) bootFile(src setSource, base, host string) (part, error) {
	img := backupset.MetaFile(host, backupset.SuffixBootImage)
	if f, err := src.fsys.Open(img); err == nil {
		m.onRelease(func() { f.Close() })
		fi, err := f.Stat()
		if err != nil {
			return part{}, err
		}
		root, err := fatTree(m.newTree(), f, 0, fi.Size())
		if err != nil {
			return part{}, fmt.Errorf("%s: %w", img, err)
		}
		return part{mem: root}, nil
	}
	tmg := backupset.MetaFile(host, backupset.SuffixBootTar)
	if _, err := iofs.Stat(src.fsys, tmg); err == nil {
		return m.tarPart(src, tmg)
	}
	m.opts.Log.Warn("the set has no boot partition image; boot/ is empty", "set", base)
	return part{mem: m.newTree().newEntry(syscall.S_IFDIR | 0o755)}, nil
}

// imageParts shows the ext4 root and FAT boot partition of a dd or ddz
// set's image.
func (m *mounter) imageParts(ctx context.Context, src setSource, base string) (map[string]part, error) {
	var stored string
	for _, ext := range []string{".img", ".img.gz", ".img.zst"} {
		if _, err := iofs.Stat(src.fsys, base+ext); err == nil {
			stored = base + ext
			break
		}
	}
	if stored == "" {
		return nil, fmt.Errorf("%w: no %s.img* in %s", ErrUnsupported, base, base)
	}
	// A loop device needs a local file: an image that is compressed,
	// encrypted or on a server is fetched into the cache once.
	img := src.path(stored)
	if img == "" || backupset.CompressionOf(stored) != backupset.CompressNone {
		var err error
		if img, err = m.decompressedImage(src, stored); err != nil {
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

// decompressedImage returns the image stored (compressed, encrypted or
// on a server) as a local file in the cache, made once and kept for
// later mounts. Runs of zeros are left as holes, so the cache takes
// about the space of the data in the image, not its full size. gzip
// cannot be entered in the middle, and the zstd writer makes a single
// frame: a loop device needs random access.
func (m *mounter) decompressedImage(src setSource, stored string) (string, error) {
	key, n, err := cacheKey(src.fsys, stored)
	if err != nil {
		return "", err
	}
	out := filepath.Join(m.opts.CacheDir, key+".img")
	if fileExists(out) {
		return out, nil
	}
	compressed := backupset.CompressionOf(stored) != backupset.CompressNone
	if compressed && m.opts.NoDecompress {
		return "", fmt.Errorf("%w: %s", ErrCompressed, stored)
	}
	if err := os.MkdirAll(m.opts.CacheDir, 0o700); err != nil {
		return "", fmt.Errorf("cache folder: %w", err)
	}
	verb := "decompressing"
	if !compressed {
		verb = "copying"
	}
	m.opts.note("%s %s (%s to read%s) into %s (once; later mounts reuse it)", verb, stored, size.Format(n), src.where(), m.opts.CacheDir)
	f, err := src.fsys.Open(stored)
	if err != nil {
		return "", err
	}
	defer f.Close()
	zr, err := compress.NewReader(f, backupset.CompressionOf(stored))
	if err != nil {
		return "", fmt.Errorf("%s: %w", stored, err)
	}
	defer zr.Close()
	tmp, err := os.CreateTemp(m.opts.CacheDir, key+".img.tmp-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	if _, err := copySparse(tmp, zr); err != nil {
		tmp.Close()
		return "", fmt.Errorf("%s %s into the cache (it needs up to the image's full size): %w", verb, stored, err)
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	return out, os.Rename(tmp.Name(), out)
}

// where says, for the cache's note, that a set is read from a server.
func (s setSource) where() string {
	if s.local == "" {
		return " from the server"
	}
	return ""
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
