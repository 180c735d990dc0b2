package restore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/i18n"
	"github.com/pibackup/pibackup/internal/imageio"
	"github.com/pibackup/pibackup/internal/progress"
	"github.com/pibackup/pibackup/internal/source"
	"github.com/pibackup/pibackup/internal/treelist"
)

// An rsync set made by backupctl is rebuilt by the Go tree restorer
// below, not by rsync, wherever it is read from. The set's listing
// (<host>-backup.tree.list) and extras file (<host>-backup.extras.list;
// pibackup-tree.list and pibackup-extras.list in sets made before) hold every
// entry's type, owner, mode, nanosecond mtime, device numbers, symlink
// target, xattrs (ACLs and file capabilities included) and hardlinks; only
// the content of regular files is read from the set. So:
//
//   - a set served by a file server that keeps nothing but content (SFTP,
//     SMB without unix extensions, NFSv3 without xattrs) restores exactly;
//   - every file's content is checked against its SHA-256 in the listing
//     while it is copied, and a mismatch fails the restore. rsync would
//     copy a bit-rotted file of a USB disk without a word;
//   - a set copied to a disk that lost metadata (exFAT, cp without -a)
//     still restores exactly.
//
// That is why it is used for local sets (USB, a folder, NFS) too: one
// path, checked end to end, for every source. rsync stays for sets
// without an extras file (raspiBackup's, older backupctl's), which only
// a local folder can serve.
//
// The listing is read and checked completely at plan time
// (treelist.Checker: every path clean and inside the tree, parents before
// children, hardlinks to earlier entries), so a damaged or hostile
// listing is refused before the target is touched. The restore then
// creates every entry below the target's root through file descriptors
// resolved with RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS: nothing it creates
// can lead outside the target.

// goTree is an rsync tree of a set, ready for restoreTree.
type goTree struct {
	root    string // "." or the partition folder in the set
	listing string // file names in the set, for messages
	extras  string
	entries []treelist.Entry
	xtra    map[string]treelist.Extra // by path: symlink targets, xattrs
	content *treelist.Content
	files   int   // regular files whose content is copied
	bytes   int64 // their bytes
	usage   int64 // estimated space on ext4 (4 KiB blocks)
}

// manifestTree returns the manifest's record of the tree at root, nil if
// there is none.
func (s *setInfo) manifestTree(root string) *backupset.Tree {
	if s.manifest == nil {
		return nil
	}
	for i := range s.manifest.Trees {
		if s.manifest.Trees[i].Root == root {
			return &s.manifest.Trees[i]
		}
	}
	return nil
}

// loadTree reads and checks the listing and extras file of t. Both must
// have the size and SHA-256 the manifest records. localDir is the set's
// local folder ("" for a remote set): content is then opened with
// openInRoot, which never opens a FIFO or device a set may hold where the
// listing says "file".
func loadTree(s *setInfo, t *backupset.Tree, localDir string) (*goTree, error) {
	g := &goTree{root: t.Root, listing: t.Listing, extras: t.Extras, xtra: map[string]treelist.Extra{}}
	err := s.readRecorded(t.Listing, func(r io.Reader) error {
		var c treelist.Checker
		lr := treelist.NewReader(r)
		for {
			e, err := lr.Next()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			if err := c.Check(e); err != nil {
				return err
			}
			g.entries = append(g.entries, e)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("set %s: %s: %w: %w", s.dirName, t.Listing, err, ErrBadSet)
	}
	err = s.readRecorded(t.Extras, func(r io.Reader) error {
		xr := treelist.NewExtrasReader(r)
		for {
			x, err := xr.Next()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			g.xtra[x.Path] = x
		}
	})
	if err != nil {
		return nil, fmt.Errorf("set %s: %s: %w: %w", s.dirName, t.Extras, err, ErrBadSet)
	}
	matched := 0
	for _, e := range g.entries {
		x, ok := g.xtra[e.Path]
		if ok {
			matched++
		}
		if err := treelist.CheckExtra(e, x); err != nil {
			return nil, fmt.Errorf("set %s: %s: %w: %w", s.dirName, t.Extras, err, ErrBadSet)
		}
		g.count(e, x)
	}
	if matched != len(g.xtra) {
		return nil, fmt.Errorf("set %s: %s names paths the listing does not have: %w", s.dirName, t.Extras, ErrBadSet)
	}

	fsys := s.fsys
	if t.Root != "." {
		if fsys, err = fs.Sub(s.fsys, t.Root); err != nil {
			return nil, fmt.Errorf("set %s: %w", s.dirName, err)
		}
	}
	var open func(string) (fs.File, error)
	if localDir != "" {
		dir := filepath.Join(localDir, filepath.FromSlash(t.Root))
		open = func(name string) (fs.File, error) { return openInRoot(dir, name, unix.O_RDONLY) }
	}
	g.content = treelist.NewContent(fsys, g.entries, open)
	return g, nil
}

// count adds e to the tree's totals: bytes to copy and the space the
// entry takes on ext4 with 4 KiB blocks and 256-byte inodes (a folder's
// block, a symlink target too long for the inode, xattrs beyond the
// inode's room). Sparse files count in full: the listing does not say
// where the holes are.
func (g *goTree) count(e treelist.Entry, x treelist.Extra) {
	const blk = 4096
	switch {
	case e.Type == 'd':
		g.usage += blk
	case e.Link != treelist.None:
		return
	case e.Type == 'f':
		g.files++
		g.bytes += e.Size
		g.usage += (e.Size + blk - 1) / blk * blk
	case e.Type == 'l' && e.Size > 59:
		g.usage += blk
	}
	var xb int
	for _, a := range x.Xattrs {
		xb += len(a.Name) + len(a.Value) + 16
	}
	if xb > 96 {
		g.usage += int64((xb + blk - 1) / blk * blk)
	}
}

// readRecorded streams the small set file name to read and checks, once
// read whole, that it has the size and SHA-256 the manifest records.
func (s *setInfo) readRecorded(name string, read func(io.Reader) error) error {
	want := s.manifestFile(name)
	if want == nil {
		return errors.New("not in the manifest's file list")
	}
	f, err := s.fsys.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	hc := &hashCounter{r: f, h: sha256.New()}
	if err := read(hc); err != nil {
		return err
	}
	if _, err := io.Copy(io.Discard, hc); err != nil {
		return err
	}
	if hc.n != want.Size || hex.EncodeToString(hc.h.Sum(nil)) != want.SHA256 {
		return errors.New("does not match its size and SHA-256 in the manifest")
	}
	return nil
}

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

// sparseWriter writes a file's content, leaving every all-zero 4 KiB
// block (aligned to the file offset, so holes line up with the target's
// blocks) as a hole, as rsync --sparse does: imageio.WriteNonZero, which
// image restores use, on a new file. finish sets the size, so a file
// that ends in zeros ends in a hole.
type sparseWriter struct {
	f   *os.File
	off int64
	rep progress.Reporter
}

func (w *sparseWriter) Write(p []byte) (int, error) {
	if _, err := imageio.WriteNonZero(w.f, p, w.off); err != nil {
		return 0, err
	}
	w.off += int64(len(p))
	w.rep.Add(int64(len(p)))
	return len(p), nil
}

// finish sets the file's size.
func (w *sparseWriter) finish() error { return w.f.Truncate(w.off) }

// ErrNeedsLocal is wrapped by NewPlan's error for an rsync set without an
// extras file (raspiBackup's, or an older backupctl's) on a source that
// is not a local folder: only rsync can restore such a set, from a folder
// that kept every owner, mode and xattr.
var ErrNeedsLocal = errors.New("an rsync set without an extras file (<host>-backup.extras.list) can only be restored from a local folder or SFTP")

const needsLocalAdvice = "raspiBackup or an older backupctl made it, and rsync, which restores such a set, " +
	"takes owners, modes, xattrs and ACLs from the folder it copies; an SMB server reports none of them " +
	"(an SFTP server reports owners and modes, and such a set restores from it without xattrs and ACLs). " +
	"Copy the set to a USB disk on the server (rsync -aHAX SET /media/usb/) and restore from the USB disk, " +
	"or run backupctl restore on a machine that has the set on a Linux filesystem"

// planTree decides how the rsync tree at root ("." or a partition folder
// of a -P set) is restored: by the Go tree restorer when the set has an
// extras file, whatever the source; else by rsync from the local folder;
// else (SFTP) by the Go tree restorer from a walk of the tree on the
// server, with notes on what the server could not give (walk.go). SMB,
// which reports no owners or modes, is refused.
func (p *Plan) planTree(ctx context.Context, root string) (*goTree, error) {
	s := p.set
	if t := s.manifestTree(root); t != nil && t.Extras != "" {
		return loadTree(s, t, p.o.LocalDir)
	}
	if p.o.LocalDir == "" {
		// SMB without unix extensions reports no owners: every owner and
		// mode would be made up, and a system restored so does not work.
		if fi, err := fs.Stat(s.fsys, root); err != nil || !source.AttrsOf(fi).HasOwner {
			return nil, fmt.Errorf("set %s: %w: %s", s.dirName, ErrNeedsLocal, needsLocalAdvice)
		}
		p.rep.Phase("read the tree's folders on the server", 0)
		g, loss, err := walkTree(ctx, s, root)
		if err != nil {
			return nil, err
		}
		for _, n := range loss.notes(root) {
			p.notes = append(p.notes, n)
			p.lossNotes = append(p.lossNotes, i18n.New(i18n.English).Msg(n))
		}
		return g, nil
	}
	if fsKind := networkFS(p.o.LocalDir); fsKind != "" {
		if !slices.ContainsFunc(p.notes, func(m i18n.Msg) bool { return m.ID == i18n.NoteNetworkFS }) {
			p.notes = append(p.notes, i18n.M(i18n.NoteNetworkFS, fsKind))
		}
	}
	return nil, nil
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

// readSmall returns the content of the regular file name of the tree
// (at most 1 MiB), checked against the listing.
func (g *goTree) readSmall(ctx context.Context, name string) ([]byte, error) {
	for _, e := range g.entries {
		if e.Path != name {
			continue
		}
		if e.Type != 'f' || e.Size > 1<<20 {
			return nil, &fs.PathError{Op: "read", Path: name, Err: ErrNotRegular}
		}
		var b bytes.Buffer
		if _, err := g.content.Copy(ctx, e, &b); err != nil {
			return nil, err
		}
		return b.Bytes(), nil
	}
	return nil, &fs.PathError{Op: "read", Path: name, Err: fs.ErrNotExist}
}
