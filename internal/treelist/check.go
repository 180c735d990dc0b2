package treelist

import (
	"encoding/hex"
	"fmt"
	"path"
	"strconv"
	"strings"
)

// Checker checks that a listing describes a tree that can be built from
// it line by line, and nothing outside it: a program that creates the
// entries in listing order (the restore) relies on every check below, so
// a listing that is damaged or made to attack (a "../" path, an absolute
// link, a file below a symlink) is refused before anything is created.
//
//   - the first entry is the root ".", a folder;
//   - every other path is relative and clean (no "", "." or ".."
//     component, no NUL) and comes after the one before in walk order, so
//     each path appears once;
//   - the parent of every path is a folder listed before it, so no entry
//     lies below a symlink or a file;
//   - a hardlink names a path listed before it, of the same type, that is
//     not itself a hardlink or a folder;
//   - fields fit the type: a hash for files and symlinks, major:minor for
//     devices, no size for the others.
//
// The zero Checker is ready to use.
type Checker struct {
	// NoHashes accepts files and symlinks without a SHA-256 (None): the
	// entries of a tree walked where it has no listing.
	NoHashes bool

	n     int
	prev  string
	dirs  map[string]bool
	first map[string]byte // non-folders that are no hardlink: path -> type
}

// Check checks the next entry of the listing.
func (c *Checker) Check(e Entry) error {
	if c.dirs == nil {
		c.dirs, c.first = map[string]bool{}, map[string]byte{}
	}
	c.n++
	if c.n == 1 {
		if e.Path != "." || e.Type != 'd' {
			return fmt.Errorf("listing starts with %q (type %c), not the root folder \".\"", e.Path, e.Type)
		}
		c.dirs["."], c.prev = true, "."
		return nil
	}
	if !ValidPath(e.Path) {
		return fmt.Errorf("%q: not a clean path inside the tree", e.Path)
	}
	if comparePaths(c.prev, e.Path) >= 0 {
		return fmt.Errorf("%q: out of order or repeated (after %q)", e.Path, c.prev)
	}
	c.prev = e.Path
	if !c.dirs[path.Dir(e.Path)] {
		return fmt.Errorf("%q: its parent is not a folder listed before it", e.Path)
	}
	if e.Mode&^0o7777 != 0 {
		return fmt.Errorf("%q: mode %o has bits beyond 07777", e.Path, e.Mode)
	}
	switch e.Type {
	case 'f', 'l':
		if c.NoHashes && e.Hash == None && e.Size >= 0 {
			break
		}
		if len(e.Hash) != 64 || !isHex(e.Hash) || e.Size < 0 {
			return fmt.Errorf("%q: %c without a SHA-256 or with a negative size", e.Path, e.Type)
		}
	default:
		if e.Hash != None || e.Size != 0 {
			return fmt.Errorf("%q: type %c with a size or hash", e.Path, e.Type)
		}
	}
	if e.Type == 'c' || e.Type == 'b' {
		if _, _, err := ParseRdev(e.Rdev); err != nil {
			return fmt.Errorf("%q: %w", e.Path, err)
		}
	} else if e.Rdev != None {
		return fmt.Errorf("%q: type %c with device numbers", e.Path, e.Type)
	}
	if e.XattrHash != None && (len(e.XattrHash) != 64 || !isHex(e.XattrHash)) {
		return fmt.Errorf("%q: bad xattr hash %q", e.Path, e.XattrHash)
	}
	switch {
	case e.Type == 'd':
		if e.Link != None {
			return fmt.Errorf("%q: a folder cannot be a hardlink", e.Path)
		}
		c.dirs[e.Path] = true
	case e.Link != None:
		t, ok := c.first[e.Link]
		if !ok {
			return fmt.Errorf("%q: hardlink to %q, which is not a file listed before it", e.Path, e.Link)
		}
		if t != e.Type {
			return fmt.Errorf("%q: hardlink of type %c to %q of type %c", e.Path, e.Type, e.Link, t)
		}
	default:
		c.first[e.Path] = e.Type
	}
	return nil
}

// ValidPath reports whether p is a relative, clean, slash-separated path
// with no ".", ".." or empty component and no NUL byte. The root "." is
// not a ValidPath.
func ValidPath(p string) bool {
	if p == "" || p[0] == '/' || strings.IndexByte(p, 0) >= 0 {
		return false
	}
	for el := range strings.SplitSeq(p, "/") {
		if el == "" || el == "." || el == ".." {
			return false
		}
	}
	return true
}

// ParseRdev parses a listing's "major:minor".
func ParseRdev(s string) (major, minor uint32, err error) {
	a, b, ok := strings.Cut(s, ":")
	maj, err1 := strconv.ParseUint(a, 10, 32)
	min, err2 := strconv.ParseUint(b, 10, 32)
	if !ok || err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("bad device numbers %q", s)
	}
	return uint32(maj), uint32(min), nil
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
}
