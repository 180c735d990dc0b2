package testfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pibackup/pibackup/internal/xattr"
)

// Kind classifies a Diff.
type Kind string

// Kinds of difference reported by Compare.
const (
	KindMissing  Kind = "missing"  // in a, not in b
	KindExtra    Kind = "extra"    // in b, not in a
	KindType     Kind = "type"     // file vs directory vs symlink ...
	KindSize     Kind = "size"     // regular files only
	KindContent  Kind = "content"  // same size, different bytes
	KindMode     Kind = "mode"     // permission bits incl. setuid, setgid, sticky
	KindOwner    Kind = "owner"    // uid
	KindGroup    Kind = "group"    // gid
	KindMtime    Kind = "mtime"    // to the nanosecond
	KindAtime    Kind = "atime"    // only with CompareOptions.Atime
	KindSymlink  Kind = "symlink"  // symlink target
	KindDevice   Kind = "device"   // major:minor of char and block devices
	KindXattr    Kind = "xattr"    // one per xattr name, incl. ACLs and capabilities
	KindHardlink Kind = "hardlink" // which paths share an inode
	KindSparse   Kind = "sparse"   // data/hole layout, only with CompareOptions.Sparse
)

// Diff is one difference between tree a and tree b.
type Diff struct {
	Path string // relative to the roots, "." for the roots themselves
	Kind Kind
	Msg  string // human-readable, with the value in a and in b
}

func (d Diff) String() string { return fmt.Sprintf("%q: %s: %s", d.Path, d.Kind, d.Msg) }

// CompareOptions tunes Compare. The zero value compares everything except
// atimes and sparseness.
type CompareOptions struct {
	// Ignore lists path.Match globs matched against paths relative to the
	// roots, e.g. "lost+found" or "boot/firmware/*". A matching directory
	// is skipped with everything below it.
	Ignore []string
	// IgnoreXattrs lists path.Match globs of xattr names not to compare,
	// e.g. "security.selinux".
	IgnoreXattrs []string
	// Atime also compares access times. Off by default because reading a
	// tree (including by the backup under test) may update them.
	Atime bool
	// IgnoreDirMtime skips mtimes of directories (not of the other types).
	IgnoreDirMtime bool
	// Sparse also compares which ranges of regular files are holes
	// (SEEK_DATA/SEEK_HOLE). Only meaningful between file systems with the
	// same block size.
	Sparse bool
}

// Compare walks the trees a and b without following symlinks and returns
// every difference, sorted by path then kind: missing and extra entries
// (a missing or extra directory is reported once, not per entry below it),
// type, size and content of regular files, mode including setuid/setgid/
// sticky, uid, gid, mtime to the nanosecond (directories too), symlink
// target, device numbers, every xattr by name and raw value (so POSIX ACLs
// and file capabilities are compared byte for byte), and the hardlink
// structure: paths that share an inode in a must share one in b, and no
// others.
//
// An error means a tree could not be read; it is not a difference.
func Compare(a, b string, opts CompareOptions) ([]Diff, error) {
	for _, globs := range [][]string{opts.Ignore, opts.IgnoreXattrs} {
		for _, g := range globs {
			if _, err := path.Match(g, ""); err != nil {
				return nil, fmt.Errorf("compare: bad glob %q: %w", g, err)
			}
		}
	}
	ta, err := scan(a, opts)
	if err != nil {
		return nil, fmt.Errorf("compare: %w", err)
	}
	tb, err := scan(b, opts)
	if err != nil {
		return nil, fmt.Errorf("compare: %w", err)
	}

	var diffs []Diff
	add := func(p string, k Kind, format string, args ...any) {
		diffs = append(diffs, Diff{Path: p, Kind: k, Msg: fmt.Sprintf(format, args...)})
	}
	linksA := map[string]inode{}
	linksB := map[string]inode{}
	for _, p := range ta.order {
		ea := ta.entries[p]
		eb, ok := tb.entries[p]
		if !ok {
			if !tb.isDir(path.Dir(p)) {
				continue // reported at the parent, as missing or as a type change
			}
			add(p, KindMissing, "%s in a, missing in b%s", typeName(ea.mode), ta.below(p))
			continue
		}
		if err := compareEntry(add, p, a, b, ea, eb, opts); err != nil {
			return nil, fmt.Errorf("compare: %w", err)
		}
		if ea.mode&unix.S_IFMT != unix.S_IFDIR && eb.mode&unix.S_IFMT != unix.S_IFDIR {
			linksA[p] = ea.inode
			linksB[p] = eb.inode
		}
	}
	for _, p := range tb.order {
		if _, ok := ta.entries[p]; ok {
			continue
		}
		if !ta.isDir(path.Dir(p)) {
			continue // reported at the parent
		}
		add(p, KindExtra, "missing in a, %s in b%s", typeName(tb.entries[p].mode), tb.below(p))
	}
	diffs = append(diffs, hardlinkDiffs(linksA, linksB)...)
	slices.SortStableFunc(diffs, func(x, y Diff) int {
		if c := strings.Compare(x.Path, y.Path); c != 0 {
			return c
		}
		return strings.Compare(string(x.Kind), string(y.Kind))
	})
	return diffs, nil
}

// FormatDiffs renders at most max diffs (all if max <= 0), one per line,
// for a test failure message.
func FormatDiffs(diffs []Diff, max int) string {
	if len(diffs) == 0 {
		return "no differences"
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "%d difference(s):\n", len(diffs))
	for i, d := range diffs {
		if max > 0 && i == max {
			fmt.Fprintf(&sb, "  ... and %d more\n", len(diffs)-max)
			break
		}
		fmt.Fprintf(&sb, "  %s\n", d)
	}
	return sb.String()
}

type inode struct{ dev, ino uint64 }

type entry struct {
	mode         uint32 // st_mode, type and permission bits
	uid, gid     uint32
	size         int64
	atime, mtime unix.Timespec
	rdev         uint64
	inode        inode
	target       string            // symlinks
	xattrs       map[string][]byte // nil if none
}

type tree struct {
	entries map[string]*entry
	order   []string // lexical walk order, parents before children
}

func (t *tree) isDir(p string) bool {
	e, ok := t.entries[p]
	return ok && e.mode&unix.S_IFMT == unix.S_IFDIR
}

// below describes what a missing or extra directory held.
func (t *tree) below(p string) string {
	if !t.isDir(p) {
		return ""
	}
	n := 0
	for q := range t.entries {
		if strings.HasPrefix(q, p+"/") {
			n++
		}
	}
	return fmt.Sprintf(" (with %d entries below)", n)
}

func ignored(globs []string, name string) bool {
	for _, g := range globs {
		if ok, _ := path.Match(g, name); ok {
			return true
		}
	}
	return false
}

func scan(root string, opts CompareOptions) (*tree, error) {
	t := &tree{entries: map[string]*entry{}}
	err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		e, err := lstat(p, opts)
		if err != nil {
			return err
		}
		if rel != "." && ignored(opts.Ignore, rel) {
			if e.mode&unix.S_IFMT == unix.S_IFDIR {
				return filepath.SkipDir
			}
			return nil
		}
		t.entries[rel] = e
		t.order = append(t.order, rel)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

func lstat(p string, opts CompareOptions) (*entry, error) {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return nil, &fs.PathError{Op: "lstat", Path: p, Err: err}
	}
	e := &entry{
		mode:  st.Mode,
		uid:   st.Uid,
		gid:   st.Gid,
		size:  st.Size,
		atime: st.Atim,
		mtime: st.Mtim,
		rdev:  st.Rdev,
		inode: inode{dev: st.Dev, ino: st.Ino},
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		target, err := os.Readlink(p)
		if err != nil {
			return nil, err
		}
		e.target = target
	}
	xa, err := xattrs(p, opts.IgnoreXattrs)
	if err != nil {
		return nil, err
	}
	e.xattrs = xa
	return e, nil
}

// xattrs reads every xattr of p (not following symlinks) but the ignored
// ones.
func xattrs(p string, ignore []string) (map[string][]byte, error) {
	names, err := xattr.List(p)
	if err != nil {
		return nil, err
	}
	var m map[string][]byte
	for _, name := range names {
		if ignored(ignore, name) {
			continue
		}
		v, err := xattr.Get(p, name)
		if err != nil {
			return nil, err
		}
		if m == nil {
			m = map[string][]byte{}
		}
		m[name] = v
	}
	return m, nil
}

type addFunc func(p string, k Kind, format string, args ...any)

func compareEntry(add addFunc, p, rootA, rootB string, ea, eb *entry, opts CompareOptions) error {
	ta, tb := ea.mode&unix.S_IFMT, eb.mode&unix.S_IFMT
	if ta != tb {
		add(p, KindType, "%s in a, %s in b", typeName(ea.mode), typeName(eb.mode))
		return nil // nothing else is comparable
	}
	if pa, pb := ea.mode&0o7777, eb.mode&0o7777; pa != pb && ta != unix.S_IFLNK {
		add(p, KindMode, "%#o in a, %#o in b", pa, pb)
	}
	if ea.uid != eb.uid {
		add(p, KindOwner, "uid %d in a, %d in b", ea.uid, eb.uid)
	}
	if ea.gid != eb.gid {
		add(p, KindGroup, "gid %d in a, %d in b", ea.gid, eb.gid)
	}
	if ea.mtime != eb.mtime && !(ta == unix.S_IFDIR && opts.IgnoreDirMtime) {
		add(p, KindMtime, "%s in a, %s in b", fmtTime(ea.mtime), fmtTime(eb.mtime))
	}
	if opts.Atime && ea.atime != eb.atime {
		add(p, KindAtime, "%s in a, %s in b", fmtTime(ea.atime), fmtTime(eb.atime))
	}
	compareXattrs(add, p, ea.xattrs, eb.xattrs)
	switch ta {
	case unix.S_IFLNK:
		if ea.target != eb.target {
			add(p, KindSymlink, "-> %q in a, -> %q in b", ea.target, eb.target)
		}
	case unix.S_IFCHR, unix.S_IFBLK:
		if ea.rdev != eb.rdev {
			add(p, KindDevice, "%d:%d in a, %d:%d in b",
				unix.Major(ea.rdev), unix.Minor(ea.rdev), unix.Major(eb.rdev), unix.Minor(eb.rdev))
		}
	case unix.S_IFREG:
		if ea.size != eb.size {
			add(p, KindSize, "%d bytes in a, %d bytes in b", ea.size, eb.size)
			return nil
		}
		off, err := firstDifference(filepath.Join(rootA, p), filepath.Join(rootB, p))
		if err != nil {
			return err
		}
		if off >= 0 {
			add(p, KindContent, "bytes differ from offset %d (size %d)", off, ea.size)
		}
		if opts.Sparse {
			la, err := dataRanges(filepath.Join(rootA, p), ea.size)
			if err != nil {
				return err
			}
			lb, err := dataRanges(filepath.Join(rootB, p), eb.size)
			if err != nil {
				return err
			}
			if !slices.Equal(la, lb) {
				add(p, KindSparse, "data ranges %s in a, %s in b", fmtRanges(la), fmtRanges(lb))
			}
		}
	}
	return nil
}

func compareXattrs(add addFunc, p string, xa, xb map[string][]byte) {
	var names []string
	for n := range xa {
		names = append(names, n)
	}
	for n := range xb {
		if _, ok := xa[n]; !ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		va, inA := xa[n]
		vb, inB := xb[n]
		switch {
		case !inB:
			add(p, KindXattr, "%s = %s in a, missing in b", n, fmtXattr(n, va))
		case !inA:
			add(p, KindXattr, "%s missing in a, = %s in b", n, fmtXattr(n, vb))
		case !bytes.Equal(va, vb):
			add(p, KindXattr, "%s = %s in a, = %s in b", n, fmtXattr(n, va), fmtXattr(n, vb))
		}
	}
}

// firstDifference returns the offset of the first differing byte of two
// files of equal size, or -1 if they are equal.
func firstDifference(a, b string) (int64, error) {
	fa, err := openNoatime(a)
	if err != nil {
		return 0, err
	}
	defer fa.Close()
	fb, err := openNoatime(b)
	if err != nil {
		return 0, err
	}
	defer fb.Close()
	const chunk = 1 << 20
	ba, bb := make([]byte, chunk), make([]byte, chunk)
	var off int64
	for {
		na, errA := io.ReadFull(fa, ba)
		nb, errB := io.ReadFull(fb, bb)
		if na != nb {
			return off + int64(min(na, nb)), nil // file changed size under us
		}
		if !bytes.Equal(ba[:na], bb[:nb]) {
			for i := range na {
				if ba[i] != bb[i] {
					return off + int64(i), nil
				}
			}
		}
		off += int64(na)
		done := errors.Is(errA, io.EOF) || errors.Is(errA, io.ErrUnexpectedEOF)
		if errA != nil && !done {
			return 0, errA
		}
		if errB != nil && !errors.Is(errB, io.EOF) && !errors.Is(errB, io.ErrUnexpectedEOF) {
			return 0, errB
		}
		if done {
			return -1, nil
		}
	}
}

// openNoatime opens p for reading without updating its atime where the
// kernel allows it (owner or CAP_FOWNER), so that comparing does not change
// what a later comparison with Atime sees.
func openNoatime(p string) (*os.File, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOATIME, 0)
	if errors.Is(err, fs.ErrPermission) {
		f, err = os.Open(p)
	}
	return f, err
}

// dataRanges lists the [start, end) ranges of p that hold data according to
// SEEK_DATA/SEEK_HOLE.
func dataRanges(p string, size int64) ([][2]int64, error) {
	f, err := openNoatime(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r [][2]int64
	for off := int64(0); off < size; {
		start, err := f.Seek(off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // only a hole is left
		}
		if err != nil {
			return nil, fmt.Errorf("seek data %s: %w", p, err)
		}
		end, err := f.Seek(start, unix.SEEK_HOLE)
		if err != nil {
			return nil, fmt.Errorf("seek hole %s: %w", p, err)
		}
		r = append(r, [2]int64{start, end})
		off = end
	}
	return r, nil
}

func fmtRanges(r [][2]int64) string {
	parts := make([]string, len(r))
	for i, x := range r {
		parts[i] = fmt.Sprintf("%d-%d", x[0], x[1])
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func fmtTime(ts unix.Timespec) string {
	return time.Unix(ts.Sec, ts.Nsec).UTC().Format(time.RFC3339Nano)
}

func typeName(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return "regular file"
	case unix.S_IFDIR:
		return "directory"
	case unix.S_IFLNK:
		return "symlink"
	case unix.S_IFCHR:
		return "char device"
	case unix.S_IFBLK:
		return "block device"
	case unix.S_IFIFO:
		return "fifo"
	case unix.S_IFSOCK:
		return "socket"
	}
	return fmt.Sprintf("type %#o", mode&unix.S_IFMT)
}

// hardlinkDiffs compares the hardlink structure of two trees, given the
// inode of every non-directory path present in both. Paths that share an
// inode in a form a group; each group must map onto exactly one inode in b
// that no other path shares. One Diff is reported per group of a that
// breaks this, at the group's first path; a link that b adds between
// separate files of a is reported at each of them.
func hardlinkDiffs(a, b map[string]inode) []Diff {
	groupsA := groupByInode(a)
	groupsB := groupByInode(b)
	var diffs []Diff
	for _, ga := range sortedGroups(groupsA) {
		// What the members of ga are linked with in b.
		seen := map[inode]bool{}
		var inB [][]string
		for _, p := range ga {
			ino := b[p]
			if !seen[ino] {
				seen[ino] = true
				inB = append(inB, groupsB[ino])
			}
		}
		if len(inB) == 1 && slices.Equal(inB[0], ga) {
			continue
		}
		diffs = append(diffs, Diff{
			Path: ga[0],
			Kind: KindHardlink,
			Msg:  fmt.Sprintf("linked as %s in a, as %s in b", fmtGroups([][]string{ga}), fmtGroups(inB)),
		})
	}
	return diffs
}

func groupByInode(m map[string]inode) map[inode][]string {
	g := map[inode][]string{}
	for p, ino := range m {
		g[ino] = append(g[ino], p)
	}
	for _, ps := range g {
		slices.Sort(ps)
	}
	return g
}

func sortedGroups(g map[inode][]string) [][]string {
	out := make([][]string, 0, len(g))
	for _, ps := range g {
		out = append(out, ps)
	}
	slices.SortFunc(out, func(x, y []string) int { return strings.Compare(x[0], y[0]) })
	return out
}

func fmtGroups(gs [][]string) string {
	parts := make([]string, len(gs))
	for i, g := range gs {
		q := make([]string, len(g))
		for j, p := range g {
			q[j] = fmt.Sprintf("%q", p)
		}
		parts[i] = "{" + strings.Join(q, " ") + "}"
	}
	return strings.Join(parts, " ")
}
