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
	"path/filepath"
	"slices"

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
		open = func(name string) (fs.File, error) { return openInRoot(dir, name, os.O_RDONLY) }
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
