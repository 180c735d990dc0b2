package restore

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/i18n"
	"github.com/pibackup/pibackup/internal/source"
	"github.com/pibackup/pibackup/internal/treelist"
)

// A raspiBackup rsync set has no listing and no extras file: the tree in
// the set is all there is. From a local folder rsync -aHAX copies it
// whole. Over SFTP or SMB a server gives less than the folder holds, so
// the tree is walked on the server and restored by the Go tree restorer
// with what the server reports, and the restore says, kind by kind, what
// it kept and what it could not (treeLoss):
//
//   - SFTP (version 3, OpenSSH): content, type, permission bits with
//     setuid/setgid/sticky, numeric owners and symlinks; mtimes in whole
//     seconds since 1970 in 32 bits; no xattrs (so no ACLs and no file
//     capabilities), no device numbers, no inode numbers (so no
//     hardlinks);
//   - SMB without unix extensions gives content and mtimes only (a
//     symlink shows as the file it points to): such a set is refused
//     before the walk (planTree), as a system with made-up owners and
//     modes does not work.
//
// Entries without a listing carry no SHA-256 (treelist.None): content is
// copied as the server gives it.

// treeLoss counts what a walked tree could not carry.
type treeLoss struct {
	entries int
	devices []string // device nodes not restored: no device numbers
}

// walkTree builds a goTree of the rsync tree at root of a set that has
// no listing, read from a source that is no local folder.
func walkTree(ctx context.Context, s *setInfo, root string) (*goTree, *treeLoss, error) {
	fsys := s.fsys
	if root != "." {
		var err error
		if fsys, err = fs.Sub(s.fsys, root); err != nil {
			return nil, nil, fmt.Errorf("set %s: %w", s.dirName, err)
		}
	}
	g := &goTree{root: root, listing: "(walked: the set has no listing)", xtra: map[string]treelist.Extra{}}
	loss := &treeLoss{}
	// Files of the set itself, not of the tree (raspiBackup's restore
	// leaves them out the same way: rsync --exclude=/<host>-backup.*).
	var own []string
	if root == "." {
		own = append(backupset.OwnFilePatterns(s.name.Host), "/*.logr", "/*.msgr", "/raspiBackup.log", "/raspiBackup.msg")
	}
	c := treelist.Checker{NoHashes: true}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !strings.Contains(p, "/") && p != "." {
			for _, pat := range own {
				if ok, _ := path.Match(strings.TrimPrefix(pat, "/"), p); ok {
					if d.IsDir() {
						return fs.SkipDir
					}
					return nil
				}
			}
		}
		var fi fs.FileInfo
		if p == "." {
			fi, err = fs.Stat(fsys, ".")
		} else {
			fi, err = d.Info()
		}
		if err != nil {
			return err
		}
		a := source.AttrsOf(fi)
		e := treelist.Entry{
			Mode: uint32(fi.Mode().Perm()), UID: a.UID, GID: a.GID, MtimeNS: fi.ModTime().UnixNano(),
			Hash: treelist.None, Rdev: treelist.None, XattrHash: treelist.None, Link: treelist.None, Path: p,
		}
		m := fi.Mode()
		if m&fs.ModeSetuid != 0 {
			e.Mode |= 0o4000
		}
		if m&fs.ModeSetgid != 0 {
			e.Mode |= 0o2000
		}
		if m&fs.ModeSticky != 0 {
			e.Mode |= 0o1000
		}
		switch {
		case m.IsDir():
			e.Type = 'd'
		case m.IsRegular():
			e.Type, e.Size = 'f', fi.Size()
		case m&fs.ModeSymlink != 0:
			target, err := fs.ReadLink(fsys, p)
			if err != nil {
				return err
			}
			e.Type, e.Size = 'l', int64(len(target))
			g.xtra[p] = treelist.Extra{Path: p, Target: target}
		case m&fs.ModeDevice != 0:
			if !a.HasRdev {
				loss.devices = append(loss.devices, p)
				return nil
			}
			e.Type = 'b'
			if m&fs.ModeCharDevice != 0 {
				e.Type = 'c'
			}
			e.Rdev = fmt.Sprintf("%d:%d", unix.Major(a.Rdev), unix.Minor(a.Rdev))
		case m&fs.ModeNamedPipe != 0:
			e.Type = 'p'
		case m&fs.ModeSocket != 0:
			e.Type = 's'
		default:
			return fmt.Errorf("%s: file type %s not supported", p, m.Type())
		}
		if !a.HasOwner {
			return fmt.Errorf("%s: the server reports no owner", p)
		}
		if err := c.Check(e); err != nil {
			return fmt.Errorf("%w: %w", err, ErrBadSet)
		}
		loss.entries++
		g.entries = append(g.entries, e)
		g.count(e, treelist.Extra{})
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("set %s: walk %s: %w", s.dirName, root, err)
	}
	g.content = treelist.NewContent(fsys, g.entries, nil)
	return g, loss, nil
}

// notes says what the restore keeps and what it cannot, one line a kind.
func (l *treeLoss) notes(root string) []i18n.Msg {
	var where any = i18n.M(i18n.PlanTheTree) // printed in the plan's language
	if root != "." {
		where = root
	}
	out := []i18n.Msg{
		i18n.M(i18n.NoteLossListing, where, l.entries),
		i18n.M(i18n.NoteLossOwners),
		i18n.M(i18n.NoteLossModes),
		i18n.M(i18n.NoteLossMtimes),
		i18n.M(i18n.NoteLossXattrs),
		i18n.M(i18n.NoteLossHardlinks),
	}
	if n := len(l.devices); n > 0 {
		shown, more := l.devices, ""
		if n > 5 {
			shown, more = shown[:5], ", ..."
		}
		out = append(out, i18n.M(i18n.NoteLossDevices, n, strings.Join(shown, ", "), more))
	}
	return out
}
