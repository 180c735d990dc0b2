package treelist

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
)

// The extras file (<host>-backup.extras.list) carries, next to the listing,
// what the listing only holds as hashes: every symlink's target and every
// xattr with its raw value. A file server that keeps only the content of
// regular files (SFTP, SMB without unix extensions, NFSv3 without xattrs)
// can then serve an rsync set that still restores exactly: content from
// the server, everything else from the listing and this file. See
// docs/FORMAT.md §5a:
//
//	# pibackup tree extras v1
//	l home/pi/hostname-link /etc/hostname
//	x usr/bin/ping security.capability 0100000200200000000000000000000000000000
//	x home/pi/notes.txt user.empty -
//
// Lines of one path come together, the l line first, then x lines sorted
// by name; paths come in the listing's walk order. A path has lines only
// if it is a symlink or has xattrs. Paths, targets and xattr names are
// escaped as in the listing; values are lowercase hex, "-" when empty.

// ExtrasHeader is the first line of every extras file.
const ExtrasHeader = "# pibackup tree extras v1"

// Xattr is one extended attribute: its full name (with namespace) and raw
// value. ACLs are system.posix_acl_access/default, file capabilities
// security.capability.
type Xattr struct {
	Name  string
	Value []byte
}

// Extra is what the extras file holds for one path.
type Extra struct {
	Path   string
	Target string  // symlink target, "" for other types
	Xattrs []Xattr // sorted by name
}

func (x Extra) empty() bool { return x.Target == "" && len(x.Xattrs) == 0 }

// String formats x as its lines, each ending in a newline; "" if x holds
// nothing.
func (x Extra) String() string {
	var b strings.Builder
	p := Escape(x.Path)
	if x.Target != "" {
		fmt.Fprintf(&b, "l %s %s\n", p, Escape(x.Target))
	}
	for _, a := range x.Xattrs {
		v := None
		if len(a.Value) > 0 {
			v = hex.EncodeToString(a.Value)
		}
		fmt.Fprintf(&b, "x %s %s %s\n", p, Escape(a.Name), v)
	}
	return b.String()
}

// ExtrasReader reads an extras file path by path.
type ExtrasReader struct {
	sc      *bufio.Scanner
	line    int
	header  bool
	pending *extrasLine // read ahead: the first line of the next path
	prev    string      // path of the last Extra returned
	started bool
}

type extrasLine struct {
	kind  byte // 'l' or 'x'
	path  string
	name  string // x: xattr name; l: the target
	value []byte
	line  int
}

// NewExtrasReader returns a reader of the extras file in r.
func NewExtrasReader(r io.Reader) *ExtrasReader {
	sc := bufio.NewScanner(r)
	// An xattr value may be 64 KiB, twice that in hex.
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	return &ExtrasReader{sc: sc}
}

func (r *ExtrasReader) readLine() (*extrasLine, error) {
	for r.sc.Scan() {
		r.line++
		s := r.sc.Text()
		if !r.header {
			if s != ExtrasHeader {
				return nil, fmt.Errorf("extras line 1: want %q, got %q", ExtrasHeader, s)
			}
			r.header = true
			continue
		}
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		l, err := parseExtrasLine(s)
		if err != nil {
			return nil, fmt.Errorf("extras line %d: %w", r.line, err)
		}
		l.line = r.line
		return l, nil
	}
	if err := r.sc.Err(); err != nil {
		return nil, fmt.Errorf("read extras: %w", err)
	}
	if !r.header {
		return nil, errors.New("extras file is empty (no header)")
	}
	return nil, io.EOF
}

func parseExtrasLine(s string) (*extrasLine, error) {
	f := strings.Split(s, " ")
	bad := func() (*extrasLine, error) { return nil, fmt.Errorf("malformed line %q", s) }
	if len(f) < 3 || len(f[0]) != 1 {
		return bad()
	}
	for _, x := range f {
		if x == "" {
			return bad()
		}
	}
	l := &extrasLine{kind: f[0][0]}
	var err error
	if l.path, err = Unescape(f[1]); err != nil {
		return nil, fmt.Errorf("line %q: %w", s, err)
	}
	switch {
	case l.kind == 'l' && len(f) == 3:
		if l.name, err = Unescape(f[2]); err != nil {
			return nil, fmt.Errorf("line %q: %w", s, err)
		}
	case l.kind == 'x' && len(f) == 4:
		if l.name, err = Unescape(f[2]); err != nil {
			return nil, fmt.Errorf("line %q: %w", s, err)
		}
		if f[3] != None {
			if l.value, err = hex.DecodeString(f[3]); err != nil || len(l.value) == 0 {
				return nil, fmt.Errorf("line %q: bad hex value", s)
			}
		}
	default:
		return bad()
	}
	if l.name == "" || strings.IndexByte(l.name, 0) >= 0 {
		return bad()
	}
	return l, nil
}

// Next returns the extras of the next path, or io.EOF after the last. It
// checks the file's own order and paths: clean paths inside the tree
// (ValidPath) in walk order, each once, its l line first, xattr names
// sorted and unique.
func (r *ExtrasReader) Next() (Extra, error) {
	first := r.pending
	r.pending = nil
	if first == nil {
		var err error
		if first, err = r.readLine(); err != nil {
			return Extra{}, err
		}
	}
	// Checked here too, not only by matching the listing: a hostile path
	// is then named as such, and no caller can take one from us.
	if first.path != "." && !ValidPath(first.path) {
		return Extra{}, fmt.Errorf("extras line %d: %q: not a clean path inside the tree", first.line, first.path)
	}
	if r.started && comparePaths(r.prev, first.path) >= 0 {
		return Extra{}, fmt.Errorf("extras line %d: path %q out of order (after %q)", first.line, first.path, r.prev)
	}
	x := Extra{Path: first.path}
	for l := first; ; {
		switch l.kind {
		case 'l':
			if x.Target != "" || len(x.Xattrs) > 0 {
				return Extra{}, fmt.Errorf("extras line %d: %q: a second symlink target, or one after its xattrs", l.line, l.path)
			}
			x.Target = l.name
		case 'x':
			if n := len(x.Xattrs); n > 0 && x.Xattrs[n-1].Name >= l.name {
				return Extra{}, fmt.Errorf("extras line %d: %q: xattr %q out of order or repeated", l.line, l.path, l.name)
			}
			x.Xattrs = append(x.Xattrs, Xattr{Name: l.name, Value: l.value})
		}
		next, err := r.readLine()
		if err == io.EOF {
			break
		}
		if err != nil {
			return Extra{}, err
		}
		if next.path != x.Path {
			r.pending = next
			break
		}
		l = next
	}
	r.prev, r.started = x.Path, true
	return x, nil
}

// CheckExtra checks the extras x of the listing entry e against the
// hashes the listing holds: a symlink's target must have its SHA-256 and
// length, the xattrs its xattr hash. x is the zero Extra (with any path)
// when the extras file holds nothing for e.
func CheckExtra(e Entry, x Extra) error {
	if e.Type == 'l' {
		if x.Target == "" {
			return fmt.Errorf("%q: symlink without a target in the extras file", e.Path)
		}
		sum := sha256.Sum256([]byte(x.Target))
		if int64(len(x.Target)) != e.Size || hex.EncodeToString(sum[:]) != e.Hash {
			return fmt.Errorf("%q: symlink target in the extras file does not match the listing's hash", e.Path)
		}
	} else if x.Target != "" {
		return fmt.Errorf("%q: the extras file has a symlink target for a non-symlink (type %c)", e.Path, e.Type)
	}
	if got := XattrHash(x.Xattrs); got != e.XattrHash {
		return fmt.Errorf("%q: xattrs in the extras file do not match the listing's xattr hash (%s vs %s)", e.Path, got, e.XattrHash)
	}
	return nil
}

// CheckExtras reads a listing and its extras file side by side and
// returns the first disagreement: an extras path the listing lacks, a
// symlink without its target, a target or xattrs that do not have the
// listing's hash. nil means the extras file holds exactly what the
// listing's hashes describe.
func CheckExtras(listing, extras io.Reader) error {
	lr, xr := NewReader(listing), NewExtrasReader(extras)
	x, xerr := xr.Next()
	for {
		e, err := lr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("listing: %w", err)
		}
		if xerr != nil && xerr != io.EOF {
			return xerr
		}
		var cur Extra
		if xerr == nil {
			switch c := comparePaths(x.Path, e.Path); {
			case c < 0:
				return fmt.Errorf("%q: in the extras file but not in the listing", x.Path)
			case c == 0:
				cur = x
				x, xerr = xr.Next()
			}
		}
		if err := CheckExtra(e, cur); err != nil {
			return err
		}
	}
	switch {
	case xerr == nil:
		return fmt.Errorf("%q: in the extras file but not in the listing", x.Path)
	case xerr != io.EOF:
		return xerr
	}
	return nil
}
