// Package treelist writes, reads and compares a listing of a directory
// tree: one line per entry with everything a file-level backup must keep
// (type, permission bits, owner, nanosecond mtime, size, a SHA-256 of the
// content or link target, device numbers, a hash of all xattrs including
// ACLs and capabilities, and which paths are hardlinks of each other).
//
// An rsync set carries the listing of its tree (<host>-backup.tree.list); the
// verifier regenerates it from the set and compares the two, so a set can
// be checked file by file without the source. The format is documented in
// docs/FORMAT.md; a summary:
//
//	# pibackup tree listing v1
//	d 0755 0 0 1700000000123456789 0 - - - - .
//	f 0644 0 0 1700000000123456789 12 <sha256> - - - etc/hostname
//	l 0777 1000 1000 1700000000123456789 13 <sha256 of target> - - - home/pi/link
//	c 0644 0 0 1700000000123456789 0 - 1:3 - - dev/null
//
// Fields: type, mode (octal, 07777 bits), uid, gid, mtime in ns since the
// epoch, size (regular files and symlinks; 0 otherwise), hash, rdev
// (major:minor, devices only), xattr hash, link (the first path of this
// tree sharing the inode, for hardlinks) and the path. "-" stands for
// "none". Paths and links are relative and escaped: every byte outside
// 0x21..0x7e and the backslash is written as \xNN, so fields never hold a
// space and the file is ASCII. Entries come in walk order: a directory's
// entries, sorted by name, follow it directly (Less).
package treelist

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/pibackup/pibackup/internal/xattr"
)

// Header is the first line of every listing.
const Header = "# pibackup tree listing v1"

// None is written for an empty field.
const None = "-"

// Entry is one line of a listing.
type Entry struct {
	Type      byte   // 'd' dir, 'f' file, 'l' symlink, 'c' char dev, 'b' block dev, 'p' fifo, 's' socket
	Mode      uint32 // permission bits including setuid, setgid and sticky
	UID, GID  uint32
	MtimeNS   int64  // modification time, ns since the epoch (negative before 1970)
	Size      int64  // regular files: bytes; symlinks: length of the target; others 0
	Hash      string // hex SHA-256 of the content (files) or target (symlinks), else None
	Rdev      string // "major:minor" for devices, else None
	XattrHash string // hex SHA-256 over all xattrs (see XattrHash), None if there are none
	Link      string // first path in this listing with the same inode, else None
	Path      string // relative, "/"-separated, "." for the root; unescaped
}

// String formats e as one listing line without the newline.
func (e Entry) String() string {
	link := e.Link
	if link != None {
		link = Escape(link)
	}
	return fmt.Sprintf("%c %04o %d %d %d %d %s %s %s %s %s", e.Type, e.Mode, e.UID, e.GID,
		e.MtimeNS, e.Size, e.Hash, e.Rdev, e.XattrHash, link, Escape(e.Path))
}

// ParseLine parses one listing line.
func ParseLine(s string) (Entry, error) {
	f := strings.Split(s, " ")
	if len(f) != 11 || len(f[0]) != 1 || !strings.Contains("dflcbps", f[0]) || slices.Contains(f, "") {
		return Entry{}, fmt.Errorf("malformed listing line %q", s)
	}
	var e Entry
	var err error
	e.Type = f[0][0]
	mode, err1 := strconv.ParseUint(f[1], 8, 32)
	uid, err2 := strconv.ParseUint(f[2], 10, 32)
	gid, err3 := strconv.ParseUint(f[3], 10, 32)
	e.MtimeNS, err = strconv.ParseInt(f[4], 10, 64)
	size, err4 := strconv.ParseInt(f[5], 10, 64)
	if err = errors.Join(err, err1, err2, err3, err4); err != nil {
		return Entry{}, fmt.Errorf("listing line %q: %w", s, err)
	}
	e.Mode, e.UID, e.GID, e.Size = uint32(mode), uint32(uid), uint32(gid), size
	e.Hash, e.Rdev, e.XattrHash, e.Link = f[6], f[7], f[8], f[9]
	if e.Link != None {
		if e.Link, err = Unescape(e.Link); err != nil {
			return Entry{}, fmt.Errorf("listing line %q: %w", s, err)
		}
	}
	if e.Path, err = Unescape(f[10]); err != nil {
		return Entry{}, fmt.Errorf("listing line %q: %w", s, err)
	}
	return e, nil
}

// Escape writes every byte outside 0x21..0x7e, and the backslash, as \xNN.
func Escape(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c <= 0x20 || c >= 0x7f || c == '\\' {
			fmt.Fprintf(&b, `\x%02x`, c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// Unescape reverses Escape.
func Unescape(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+3 >= len(s) || s[i+1] != 'x' {
			return "", fmt.Errorf("bad escape in %q", s)
		}
		v, err := strconv.ParseUint(s[i+2:i+4], 16, 8)
		if err != nil {
			return "", fmt.Errorf("bad escape in %q", s)
		}
		b.WriteByte(byte(v))
		i += 3
	}
	return b.String(), nil
}

// Less orders paths as a listing does: component by component, so that a
// directory's entries follow it directly ("a", "a/b", "a-c"). It is the
// order filepath.WalkDir visits a tree in.
func Less(a, b string) bool { return comparePaths(a, b) < 0 }

func comparePaths(a, b string) int {
	if a == b {
		return 0
	}
	if a == "." {
		return -1
	}
	if b == "." {
		return 1
	}
	for {
		ca, ra, _ := strings.Cut(a, "/")
		cb, rb, _ := strings.Cut(b, "/")
		if c := strings.Compare(ca, cb); c != 0 {
			return c
		}
		if ra == "" || rb == "" {
			return strings.Compare(ra, rb) // the shorter path is the parent
		}
		a, b = ra, rb
	}
}

// Options tunes WriteOptions.
type Options struct {
	// Exclude reports whether the entry at rel (relative, "/"-separated)
	// is left out; an excluded directory is left out with all below it.
	// The root "." is never passed. nil excludes nothing.
	Exclude func(rel string) bool
	// Reuse, if set, supplies the content hash of regular files that are
	// known to be unchanged, so that a tree made with rsync --link-dest
	// need not be read again in full (see NewReuse).
	Reuse *Reuse
	// Extras, if set, receives the extras file of the tree (see
	// extras.go), written in the same walk: every symlink target and
	// every xattr, which the listing only holds as hashes.
	Extras io.Writer
}

// Stats summarises a written listing.
type Stats struct {
	Entries int   // lines written, the root included
	Bytes   int64 // sum of the sizes of regular files
	Hashed  int64 // bytes actually read to hash (Bytes minus reused hashes)
}

// Write lists the tree at root into w. exclude may be nil. It returns the
// number of entries and the sum of regular file sizes.
func Write(w io.Writer, root string, exclude func(rel string) bool) (entries int, bytes int64, err error) {
	st, err := WriteOptions(context.Background(), w, root, Options{Exclude: exclude})
	return st.Entries, st.Bytes, err
}

// WriteOptions lists the tree at root into w, stopping when ctx is done.
func WriteOptions(ctx context.Context, w io.Writer, root string, opts Options) (Stats, error) {
	var st Stats
	bw := bufio.NewWriterSize(w, 256<<10)
	if _, err := bw.WriteString(Header + "\n"); err != nil {
		return st, fmt.Errorf("write listing: %w", err)
	}
	var xw *bufio.Writer
	if opts.Extras != nil {
		xw = bufio.NewWriterSize(opts.Extras, 64<<10)
		if _, err := xw.WriteString(ExtrasHeader + "\n"); err != nil {
			return st, fmt.Errorf("write extras: %w", err)
		}
	}
	links := map[[2]uint64]string{} // inode -> first path, for nlink > 1
	buf := make([]byte, 1<<20)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if rel != "." && opts.Exclude != nil && opts.Exclude(rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		e, x, err := stat(p, rel, links, opts.Reuse, buf, &st)
		if err != nil {
			return err
		}
		st.Entries++
		if e.Type == 'f' {
			st.Bytes += e.Size
		}
		if _, err = bw.WriteString(e.String() + "\n"); err != nil {
			return err
		}
		if xw != nil && !x.empty() {
			if _, err := xw.WriteString(x.String()); err != nil {
				return fmt.Errorf("write extras: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("list %s: %w", root, err)
	}
	if err := bw.Flush(); err != nil {
		return st, fmt.Errorf("write listing: %w", err)
	}
	if xw != nil {
		if err := xw.Flush(); err != nil {
			return st, fmt.Errorf("write extras: %w", err)
		}
	}
	return st, nil
}

// stat lists the entry at p (rel in the tree) and returns, with it, what
// the extras file keeps of it: the symlink target and the xattrs.
func stat(p, rel string, links map[[2]uint64]string, reuse *Reuse, buf []byte, st *Stats) (Entry, Extra, error) {
	x := Extra{Path: rel}
	var s unix.Stat_t
	if err := unix.Lstat(p, &s); err != nil {
		return Entry{}, x, &fs.PathError{Op: "lstat", Path: p, Err: err}
	}
	e := Entry{Mode: uint32(s.Mode) & 0o7777, UID: s.Uid, GID: s.Gid, MtimeNS: s.Mtim.Nano(),
		Hash: None, Rdev: None, XattrHash: None, Link: None, Path: rel}
	switch s.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		e.Type = 'd'
	case unix.S_IFREG:
		e.Type, e.Size = 'f', s.Size
		if h, ok := reuse.lookup(rel, &s); ok {
			e.Hash = h
			break
		}
		h, err := hashFile(p, buf)
		if err != nil {
			return Entry{}, x, err
		}
		e.Hash = h
		st.Hashed += s.Size
	case unix.S_IFLNK:
		target, err := os.Readlink(p)
		if err != nil {
			return Entry{}, x, err
		}
		sum := sha256.Sum256([]byte(target))
		e.Type, e.Size, e.Hash = 'l', int64(len(target)), hex.EncodeToString(sum[:])
		x.Target = target
	case unix.S_IFCHR, unix.S_IFBLK:
		e.Type = 'c'
		if s.Mode&unix.S_IFMT == unix.S_IFBLK {
			e.Type = 'b'
		}
		e.Rdev = fmt.Sprintf("%d:%d", unix.Major(s.Rdev), unix.Minor(s.Rdev))
	case unix.S_IFIFO:
		e.Type = 'p'
	case unix.S_IFSOCK:
		e.Type = 's'
	default:
		return Entry{}, x, fmt.Errorf("%s: unknown file type %o", p, s.Mode&unix.S_IFMT)
	}
	if e.Type != 'd' && s.Nlink > 1 {
		key := [2]uint64{s.Dev, s.Ino}
		if first, ok := links[key]; ok {
			e.Link = first
		} else {
			links[key] = rel
		}
	}
	xs, err := readXattrs(p)
	if err != nil {
		return Entry{}, x, err
	}
	x.Xattrs = xs
	e.XattrHash = XattrHash(xs)
	return e, x, nil
}

func hashFile(p string, buf []byte) (string, error) {
	// O_NOATIME: listing a set must not rewrite the atime of every file
	// (it is not allowed for files we do not own; root owns them all).
	f, err := os.OpenFile(p, os.O_RDONLY|oNoAtime, 0)
	if err != nil {
		f, err = os.Open(p)
		if err != nil {
			return "", err
		}
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyBuffer(h, f, buf); err != nil {
		return "", fmt.Errorf("read %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// readXattrs reads every xattr of p (not following a symlink), sorted by
// name.
func readXattrs(p string) ([]Xattr, error) {
	names, err := xattr.List(p)
	if err != nil || len(names) == 0 {
		return nil, err
	}
	slices.Sort(names)
	out := make([]Xattr, 0, len(names))
	for _, n := range names {
		v, err := xattr.Get(p, n)
		if err != nil {
			return nil, err
		}
		out = append(out, Xattr{Name: n, Value: v})
	}
	return out, nil
}

// XattrHash is the listing's xattr hash of xs: SHA-256 over every xattr,
// names sorted, each as name, NUL, value length (uint32 big endian),
// value. No xattrs give None.
func XattrHash(xs []Xattr) string {
	if len(xs) == 0 {
		return None
	}
	sorted := slices.SortedFunc(slices.Values(xs), func(a, b Xattr) int { return strings.Compare(a.Name, b.Name) })
	h := sha256.New()
	for _, x := range sorted {
		h.Write([]byte(x.Name))
		h.Write([]byte{0})
		var l [4]byte
		binary.BigEndian.PutUint32(l[:], uint32(len(x.Value)))
		h.Write(l[:])
		h.Write(x.Value)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Reuse carries the content hashes of a previous tree, for files that are
// the very same inode there (which is what rsync --link-dest makes of an
// unchanged file): same inode means same content, so there is nothing to
// read.
type Reuse struct {
	root   string
	hashes map[string]string
	// hashed, if set, are files of the listed tree itself hashed earlier
	// (NewReuseHashed); root and hashes are then unused.
	hashed map[string]Hashed
	// named, if set, is every path rsync named (--out-format) in the run
	// that made the listed tree with --link-dest: the files it wrote.
	// WithPrevious then takes a previous listing's hash for any other
	// file without looking at the previous tree (prev).
	named map[string]bool
	prev  map[string]prevFile
}

// prevFile is what a previous listing says of a regular file.
type prevFile struct {
	hash     string
	size     int64
	mtimeNS  int64
	mode     uint32
	uid, gid uint32
}

// Hashed is a regular file of the listed tree whose content was hashed
// before the listing (while rsync copied it), with the identity the file
// had when it was hashed.
type Hashed struct {
	Dev, Ino     uint64
	Size         int64
	Mtime, Ctime unix.Timespec
	Sum          string // hex SHA-256 of the content
}

// NewReuseHashed returns a Reuse of hashes taken earlier in the very tree
// being listed, by relative path. A hash is used only when the listing's
// own lstat of the file shows the identity it had when it was hashed
// (same inode, size, mtime and ctime: any write or rename since changes
// the ctime), so the listing's one walk checks it, and no second stat of
// each file is needed before the listing, nor in it.
func NewReuseHashed(files map[string]Hashed) *Reuse {
	return &Reuse{hashed: files}
}

// NewReuseNamed is NewReuseHashed for a tree rsync made with --link-dest,
// with named the complete set of the paths rsync named while it made the
// tree (relative, unescaped, folders without a trailing slash): every
// file it copied, or created because the previous one differed in
// content or metadata. Every other regular file in the tree is a
// hardlink rsync made of the link-dest tree's file at the same path, so
// WithPrevious can take that file's hash from the previous listing
// without an lstat of the previous tree.
func NewReuseNamed(files map[string]Hashed, named map[string]bool) *Reuse {
	if files == nil {
		files = map[string]Hashed{}
	}
	if named == nil {
		named = map[string]bool{}
	}
	return &Reuse{hashed: files, named: named}
}

// WithPrevious adds the hashes of the previous listing of the link-dest
// tree at root. Made by NewReuseNamed, the result takes a previous hash
// for a file rsync did not name whose lstat in the listing's walk agrees
// with the previous listing (a hardlink, same size, mtime, mode and
// owner): no look at the previous tree. Otherwise (r nil or without the
// names) it is NewReuse: a hash is taken for a file that is the same
// inode in the previous tree, checked with an lstat there.
func (r *Reuse) WithPrevious(root string, listing io.Reader) (*Reuse, error) {
	if r == nil || r.named == nil {
		return NewReuse(root, listing)
	}
	prev := map[string]prevFile{}
	rd := NewReader(listing)
	for {
		e, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if e.Type == 'f' {
			prev[e.Path] = prevFile{hash: e.Hash, size: e.Size, mtimeNS: e.MtimeNS, mode: e.Mode, uid: e.UID, gid: e.GID}
		}
	}
	out := *r
	out.prev = prev
	return &out, nil
}

// NewReuse reads the listing of the tree at root (a previous set made with
// the same tool) for use as Options.Reuse.
func NewReuse(root string, listing io.Reader) (*Reuse, error) {
	r := &Reuse{root: root, hashes: map[string]string{}}
	rd := NewReader(listing)
	for {
		e, err := rd.Next()
		if err == io.EOF {
			return r, nil
		}
		if err != nil {
			return nil, err
		}
		if e.Type == 'f' {
			r.hashes[e.Path] = e.Hash
		}
	}
}

// Previous returns the hash the previous listing gives the regular file
// rel of the tree at newRoot, when the file is that listing's very inode
// (NewReuse: an lstat of both tells): rsync did not write it in this run.
func (r *Reuse) Previous(newRoot, rel string) (string, bool) {
	var s unix.Stat_t
	if r == nil || unix.Lstat(filepath.Join(newRoot, filepath.FromSlash(rel)), &s) != nil || s.Mode&unix.S_IFMT != unix.S_IFREG {
		return "", false
	}
	return r.lookup(rel, &s)
}

func (r *Reuse) lookup(rel string, s *unix.Stat_t) (string, bool) {
	if r == nil {
		return "", false
	}
	if r.hashed != nil {
		h, ok := r.hashed[rel]
		if ok && uint64(s.Dev) == h.Dev && s.Ino == h.Ino && s.Size == h.Size && s.Mtim == h.Mtime && s.Ctim == h.Ctime {
			return h.Sum, true
		}
		if r.prev == nil || r.named[rel] || s.Nlink < 2 {
			return "", false
		}
		// Not written by rsync in this run: a hardlink of the link-dest
		// tree's file, which the previous listing describes.
		p, ok := r.prev[rel]
		if !ok || s.Size != p.size || s.Mtim.Nano() != p.mtimeNS || uint32(s.Mode)&0o7777 != p.mode || s.Uid != p.uid || s.Gid != p.gid {
			return "", false
		}
		return p.hash, true
	}
	h, ok := r.hashes[rel]
	if !ok {
		return "", false
	}
	var ps unix.Stat_t
	if err := unix.Lstat(filepath.Join(r.root, rel), &ps); err != nil {
		return "", false
	}
	if ps.Dev != s.Dev || ps.Ino != s.Ino || ps.Size != s.Size || ps.Mtim != s.Mtim {
		return "", false
	}
	return h, true
}

// Reader reads a listing line by line.
type Reader struct {
	sc     *bufio.Scanner
	line   int
	header bool
}

// NewReader returns a Reader of the listing in r.
func NewReader(r io.Reader) *Reader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	return &Reader{sc: sc}
}

// Next returns the next entry, or io.EOF after the last.
func (r *Reader) Next() (Entry, error) {
	for r.sc.Scan() {
		r.line++
		s := r.sc.Text()
		if !r.header {
			if s != Header {
				return Entry{}, fmt.Errorf("listing line 1: want %q, got %q", Header, s)
			}
			r.header = true
			continue
		}
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		e, err := ParseLine(s)
		if err != nil {
			return Entry{}, fmt.Errorf("line %d: %w", r.line, err)
		}
		return e, nil
	}
	if err := r.sc.Err(); err != nil {
		return Entry{}, fmt.Errorf("read listing: %w", err)
	}
	if !r.header {
		return Entry{}, errors.New("listing is empty (no header)")
	}
	return Entry{}, io.EOF
}

// Diff compares two listings and describes the first difference, in walk
// order, as `path: what (a vs b)`; "" means the listings describe the same
// tree. err is for listings that cannot be read.
func Diff(a, b io.Reader) (firstDifference string, err error) {
	ra, rb := NewReader(a), NewReader(b)
	ea, errA := ra.Next()
	eb, errB := rb.Next()
	for {
		if errA != nil && errA != io.EOF {
			return "", fmt.Errorf("listing a: %w", errA)
		}
		if errB != nil && errB != io.EOF {
			return "", fmt.Errorf("listing b: %w", errB)
		}
		switch {
		case errA == io.EOF && errB == io.EOF:
			return "", nil
		case errA == io.EOF:
			return fmt.Sprintf("%q: only in b", eb.Path), nil
		case errB == io.EOF:
			return fmt.Sprintf("%q: only in a", ea.Path), nil
		}
		switch c := comparePaths(ea.Path, eb.Path); {
		case c < 0:
			return fmt.Sprintf("%q: only in a", ea.Path), nil
		case c > 0:
			return fmt.Sprintf("%q: only in b", eb.Path), nil
		}
		if d := entryDiff(ea, eb); d != "" {
			return fmt.Sprintf("%q: %s", ea.Path, d), nil
		}
		ea, errA = ra.Next()
		eb, errB = rb.Next()
	}
}

func entryDiff(a, b Entry) string {
	type field struct {
		name string
		a, b string
	}
	for _, f := range []field{
		{"type", string(a.Type), string(b.Type)},
		{"mode", fmt.Sprintf("%04o", a.Mode), fmt.Sprintf("%04o", b.Mode)},
		{"uid", fmt.Sprint(a.UID), fmt.Sprint(b.UID)},
		{"gid", fmt.Sprint(a.GID), fmt.Sprint(b.GID)},
		{"size", fmt.Sprint(a.Size), fmt.Sprint(b.Size)},
		{"content", a.Hash, b.Hash},
		{"mtime", fmt.Sprint(a.MtimeNS), fmt.Sprint(b.MtimeNS)},
		{"device", a.Rdev, b.Rdev},
		{"xattrs", a.XattrHash, b.XattrHash},
		{"hardlink", a.Link, b.Link},
	} {
		if f.a != f.b {
			return fmt.Sprintf("%s differs (%s vs %s)", f.name, f.a, f.b)
		}
	}
	return ""
}
