package restore

// The tree restore's writing half: every entry created below the target's
// root through descriptors that openat2 resolved with RESOLVE_BENEATH,
// and its metadata set with the *at calls (see tree.go for why the tree
// is rebuilt in Go). Linux only, as openat2 is.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/pibackup/pibackup/internal/progress"
	"github.com/pibackup/pibackup/internal/treelist"
)

// treeWorkers is how many files restoreTree copies at once. A network
// source answers each open and read after a round trip; a few files in
// flight hide that, and keep a USB disk and the target busy together.
const treeWorkers = 4

// restoreTree rebuilds g below dst, the root of a freshly made and
// mounted filesystem, and returns the bytes of content copied. Order:
// folders, files (in parallel), symlinks and special files in listing
// order; then hardlinks; then owner, xattrs, mode and mtime of every
// entry that is not a regular file (a file gets them right after its
// content), folders last and deepest first, so that nothing created
// later changes a time that was set.
func restoreTree(ctx context.Context, g *goTree, dst string, rep progress.Reporter) (int64, error) {
	rootfd, err := unix.Open(dst, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, &os.PathError{Op: "open", Path: dst, Err: err}
	}
	defer unix.Close(rootfd)
	b := &builder{g: g, dst: dst, rootfd: rootfd, pfd: -1, rep: rep}
	defer b.closeParent()

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	jobs := make(chan treelist.Entry, 64)
	done := make(chan int64, treeWorkers)
	for range treeWorkers {
		go func() {
			var n int64
			for e := range jobs {
				m, err := b.file(ctx, e)
				n += m
				if err != nil {
					cancel(err)
				}
			}
			done <- n
		}()
	}
	var links, later []treelist.Entry
	for _, e := range g.entries[1:] { // [0] is the root, which exists
		if ctx.Err() != nil {
			break
		}
		switch {
		case e.Link != treelist.None:
			links = append(links, e)
		case e.Type == 'f':
			select {
			case jobs <- e:
			case <-ctx.Done():
			}
		default:
			if err := b.create(e); err != nil {
				cancel(err)
			} else if e.Type != 'd' {
				later = append(later, e)
			}
		}
	}
	close(jobs)
	var total int64
	for range treeWorkers {
		total += <-done
	}
	if err := context.Cause(ctx); err != nil {
		return total, err // the first error, or the caller's cancellation
	}
	for _, e := range links {
		if err := b.link(e); err != nil {
			return total, err
		}
	}
	for _, e := range later {
		if err := b.metaAt(e); err != nil {
			return total, err
		}
	}
	for i := len(g.entries) - 1; i >= 0; i-- {
		if e := g.entries[i]; e.Type == 'd' {
			if err := b.metaDir(e); err != nil {
				return total, err
			}
		}
	}
	return total, nil
}

// builder creates the entries of one tree. Its parent cache is for the
// goroutine that walks the listing; file() is safe for concurrent use.
type builder struct {
	g      *goTree
	dst    string
	rootfd int
	rep    progress.Reporter

	pdir string // the folder pfd is open on
	pfd  int
}

// beneath resolves within the target's root, refusing ".." out of it and
// any symlink on the way: every folder on a path was made by us as a
// folder, so a symlink there means something is wrong.
const beneath = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV

func (b *builder) openBeneath(rel string, flags int, mode uint32) (int, error) {
	how := &unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Mode: uint64(mode), Resolve: beneath}
	for {
		fd, err := unix.Openat2(b.rootfd, rel, how)
		if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
			continue
		}
		if errors.Is(err, unix.ENOSYS) {
			return -1, fmt.Errorf("openat2 (Linux 5.6 or later) is needed to build the restored tree safely: %w", err)
		}
		switch {
		case errors.Is(err, unix.EXDEV):
			// The plan's Checker refuses such listings; this is the
			// restorer's own guard, so the message says what was refused.
			return -1, fmt.Errorf("%q leads out of the target (\"..\" or an absolute path); refused: %w", rel, ErrBadSet)
		case errors.Is(err, unix.ELOOP):
			return -1, fmt.Errorf("%q is a symlink or lies below one; refused, nothing is created through a symlink: %w", rel, ErrBadSet)
		case err != nil:
			return -1, &os.PathError{Op: "open", Path: rel, Err: err}
		}
		return fd, nil
	}
}

// parent returns a descriptor of rel's folder and rel's last name. The
// descriptor stays open until the next call with another folder.
func (b *builder) parent(rel string) (int, string, error) {
	dir, name := path.Dir(rel), path.Base(rel)
	if dir == "." {
		return b.rootfd, name, nil
	}
	if b.pfd >= 0 && b.pdir == dir {
		return b.pfd, name, nil
	}
	b.closeParent()
	fd, err := b.openBeneath(dir, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return -1, "", err
	}
	b.pdir, b.pfd = dir, fd
	return fd, name, nil
}

func (b *builder) closeParent() {
	if b.pfd >= 0 {
		unix.Close(b.pfd)
		b.pfd = -1
	}
}

// create makes a folder, symlink, device node, FIFO or socket.
func (b *builder) create(e treelist.Entry) error {
	pfd, name, err := b.parent(e.Path)
	if err != nil {
		return err
	}
	switch e.Type {
	case 'd':
		err = unix.Mkdirat(pfd, name, 0o700)
		if errors.Is(err, unix.EEXIST) {
			// A fresh ext4 has lost+found; anything else is not ours.
			var st unix.Stat_t
			if unix.Fstatat(pfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
				err = nil
			}
		}
	case 'l':
		err = unix.Symlinkat(b.g.xtra[e.Path].Target, pfd, name)
	case 'c', 'b':
		major, minor, perr := treelist.ParseRdev(e.Rdev)
		if perr != nil {
			return fmt.Errorf("BUG: %q: %w", e.Path, perr)
		}
		typ := uint32(unix.S_IFCHR)
		if e.Type == 'b' {
			typ = unix.S_IFBLK
		}
		err = unix.Mknodat(pfd, name, typ|0o600, int(unix.Mkdev(major, minor)))
	case 'p':
		err = unix.Mknodat(pfd, name, unix.S_IFIFO|0o600, 0)
	case 's':
		// rsync -a (--specials) recreates sockets, so the Go restorer does
		// too: a restored tree then lists as its listing says. (GNU tar
		// skips them; nothing can use a socket without its server anyway.)
		err = unix.Mknodat(pfd, name, unix.S_IFSOCK|0o600, 0)
	default:
		return fmt.Errorf("BUG: create %q of type %c", e.Path, e.Type)
	}
	if err != nil {
		return &os.PathError{Op: "create", Path: e.Path, Err: err}
	}
	return nil
}

// file creates the regular file e with its content from the set,
// checked against the listing, sparse where the content has all-zero
// 4 KiB blocks, then sets its owner, xattrs, mode and mtime.
func (b *builder) file(ctx context.Context, e treelist.Entry) (int64, error) {
	fd, err := b.openBeneath(e.Path, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return 0, err
	}
	f := os.NewFile(uintptr(fd), filepath.Join(b.dst, e.Path))
	defer f.Close()
	var n int64
	if e.Size > 0 {
		sw := &sparseWriter{f: f, rep: b.rep}
		// Copy's errors name the file.
		n, err = b.g.content.Copy(ctx, e, sw)
		if errors.Is(err, treelist.ErrContent) {
			return n, fmt.Errorf("%w: %w", err, ErrDamaged)
		}
		if err != nil {
			return n, err
		}
		if err := sw.finish(); err != nil {
			return n, fmt.Errorf("write %s: %w", e.Path, err)
		}
	} else if e.Hash != emptySHA256 && e.Hash != treelist.None {
		return 0, fmt.Errorf("%s: empty file whose listed SHA-256 is not that of no bytes: %w", e.Path, ErrDamaged)
	}
	// No read of an empty file: there is nothing to check, and a network
	// source would spend round trips on each of the thousands there are.
	if err := setMeta(int(f.Fd()), e, b.g.xtra[e.Path]); err != nil {
		return n, fmt.Errorf("%s: %w", e.Path, err)
	}
	return n, nil
}

var emptySHA256 = hex.EncodeToString(sha256.New().Sum(nil))

// link makes e a hardlink of the entry it names.
func (b *builder) link(e treelist.Entry) error {
	ofd, err := b.openBeneath(path.Dir(e.Link), unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	defer unix.Close(ofd)
	pfd, name, err := b.parent(e.Path)
	if err != nil {
		return err
	}
	// flags 0: a hardlink of a symlink links the symlink itself.
	if err := unix.Linkat(ofd, path.Base(e.Link), pfd, name, 0); err != nil {
		return &os.PathError{Op: "link " + e.Link + " to", Path: e.Path, Err: err}
	}
	return nil
}

// setMeta sets owner, xattrs, mode and mtime of the open file or folder
// fd. chown first: it clears setuid/setgid and file capabilities, which
// come after it. Mode after the xattrs: a POSIX ACL sets the group bits
// from its mask, and the listing's mode is the one to end with (the two
// agree, as the kernel kept them in step on the source).
func setMeta(fd int, e treelist.Entry, x treelist.Extra) error {
	if err := unix.Fchown(fd, int(e.UID), int(e.GID)); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	for _, a := range x.Xattrs {
		if err := unix.Fsetxattr(fd, a.Name, a.Value, 0); err != nil {
			return fmt.Errorf("set xattr %s: %w", a.Name, err)
		}
	}
	if err := unix.Fchmod(fd, e.Mode); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	ts := mtimeOnly(e)
	// futimens(fd): utimensat with a NULL path works on the descriptor.
	if _, _, errno := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0); errno != 0 {
		return fmt.Errorf("set times: %w", errno)
	}
	return nil
}

// mtimeOnly is the times argument that sets the listing's mtime and
// leaves the atime (the listing has none).
func mtimeOnly(e treelist.Entry) [2]unix.Timespec {
	return [2]unix.Timespec{{Nsec: unix.UTIME_OMIT}, unix.NsecToTimespec(e.MtimeNS)}
}

// metaAt sets owner, xattrs, mode and mtime of a symlink, device node,
// FIFO or socket without opening it (opening a device or FIFO must never
// happen; a symlink cannot be opened).
func (b *builder) metaAt(e treelist.Entry) error {
	pfd, name, err := b.parent(e.Path)
	if err != nil {
		return err
	}
	wrap := func(op string, err error) error { return &os.PathError{Op: op, Path: e.Path, Err: err} }
	if err := unix.Fchownat(pfd, name, int(e.UID), int(e.GID), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return wrap("chown", err)
	}
	if x := b.g.xtra[e.Path]; len(x.Xattrs) > 0 {
		// No *at form of lsetxattr before Linux 6.13. Every folder on the
		// path was made by us (checked above by openBeneath), so the path
		// from the root leads here and nowhere else.
		p := filepath.Join(b.dst, filepath.FromSlash(e.Path))
		for _, a := range x.Xattrs {
			if err := unix.Lsetxattr(p, a.Name, a.Value, 0); err != nil {
				return wrap("set xattr "+a.Name, err)
			}
		}
	}
	if e.Type != 'l' { // a symlink's mode is always 0777 on Linux
		// flags 0 follows a symlink, but name is the node made above.
		if err := unix.Fchmodat(pfd, name, e.Mode, 0); err != nil {
			return wrap("chmod", err)
		}
	}
	ts := mtimeOnly(e)
	if err := unix.UtimesNanoAt(pfd, name, ts[:], unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return wrap("set times", err)
	}
	return nil
}

// metaDir sets owner, xattrs, mode and mtime of a folder.
func (b *builder) metaDir(e treelist.Entry) error {
	fd, err := b.openBeneath(e.Path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := setMeta(fd, e, b.g.xtra[e.Path]); err != nil {
		return fmt.Errorf("%s: %w", e.Path, err)
	}
	return nil
}

// networkFS names the network filesystem dir is on ("NFS", "SMB",
// "FUSE"), or "" for a local one.
func networkFS(dir string) string {
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) != nil {
		return ""
	}
	switch uint32(st.Type) {
	case unix.NFS_SUPER_MAGIC:
		return "NFS"
	case unix.CIFS_SUPER_MAGIC, unix.SMB2_SUPER_MAGIC, unix.SMB_SUPER_MAGIC:
		return "SMB"
	case unix.FUSE_SUPER_MAGIC:
		return "FUSE"
	}
	return ""
}
