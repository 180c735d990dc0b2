package treelist

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sync"
)

// ErrContent is wrapped by every error about a file whose content is not
// the one the listing records (size or SHA-256), or that is missing.
var ErrContent = errors.New("content does not match the tree listing")

// Content reads the content of a listed tree's regular files from an
// fs.FS (a local folder, or a remote one over SFTP or SMB) and checks
// each against its size and SHA-256 in the listing while it is read.
//
// Some servers cannot present every name a Linux tree holds: Samba shows
// a name with a control character, a backslash, a colon or another
// character Windows forbids under a mangled 8.3 name ("TI9D65~K") and
// refuses the real one. Perl's man pages ("File::Spec.3perl.gz") and
// systemd's escaped unit names ("dev-disk-by\x2duuid-….swap") are such
// names on every Raspberry Pi OS. When a name cannot be opened, Content
// looks in its folder for a name the listing does not have, of the same
// size, and takes the one whose content has the listed SHA-256; a folder
// is found the same way, by the names inside it. The content is checked
// either way, so a wrong pick can only fail, never restore wrong bytes.
//
// Content is safe for concurrent use.
type Content struct {
	fsys fs.FS
	open func(name string) (fs.File, error)
	all  []Entry

	mu       sync.Mutex
	renamed  int                        // files found under another name
	children map[string]map[string]bool // listing folder -> names in it (built on first need)
	dirs     map[string]string          // listing folder -> its name in fsys, once resolved
	cands    map[string]*candidates     // folder in fsys -> names the listing lacks
}

type candidates struct {
	files  map[int64][]string // size -> names (in fsys)
	dirs   []string
	hashes map[string]string // name -> SHA-256, once computed
}

// NewContent returns a Content reading fsys, rooted at the tree's root.
// entries is the whole listing (the names it holds tell the names a
// server presents differently). open, if not nil, opens a name of fsys
// and must refuse anything but a regular file; nil uses fsys.Open after
// an fs.Stat that it is a regular file (so a FIFO on the server is never
// opened).
func NewContent(fsys fs.FS, entries []Entry, open func(name string) (fs.File, error)) *Content {
	c := &Content{fsys: fsys, open: open, all: entries}
	if c.open == nil {
		c.open = c.openRegular
	}
	return c
}

func (c *Content) openRegular(name string) (fs.File, error) {
	fi, err := fs.Stat(c.fsys, name)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fmt.Errorf("not a regular file (%s)", fi.Mode().Type())}
	}
	return c.fsys.Open(name)
}

// Copy writes the content of the regular file e to w and checks its size
// and SHA-256 against e. A mismatch, and a file that cannot be found,
// wrap ErrContent. It returns the bytes written to w.
func (c *Content) Copy(ctx context.Context, e Entry, w io.Writer) (int64, error) {
	if e.Type != 'f' {
		return 0, fmt.Errorf("BUG: Content.Copy of %q of type %c", e.Path, e.Type)
	}
	f, err := c.Open(e)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	h := sha256.New()
	cw := &ctxWriter{ctx: ctx, w: w}
	// io.Copy uses the file's WriteTo when it has one: pkg/sftp reads a
	// file with many requests in flight that way.
	n, err := io.Copy(io.MultiWriter(h, cw), f)
	switch {
	case err != nil && ctx.Err() != nil:
		return n, ctx.Err()
	case err != nil && cw.err != nil:
		return n, fmt.Errorf("write %s: %w", e.Path, cw.err)
	case err != nil:
		return n, fmt.Errorf("read %s: %w", e.Path, err)
	}
	if n != e.Size {
		return n, fmt.Errorf("%s: %d bytes, the listing records %d: %w", e.Path, n, e.Size, ErrContent)
	}
	// None: the entry was made by walking a set that has no listing (a
	// raspiBackup rsync set): there is nothing to check against.
	if got := hex.EncodeToString(h.Sum(nil)); got != e.Hash && e.Hash != None {
		return n, fmt.Errorf("%s: SHA-256 %s, the listing records %s: %w", e.Path, got, e.Hash, ErrContent)
	}
	return n, nil
}

// Open opens the regular file e, by its name or, if the server presents
// that name differently, by its content (see Content). The size is
// checked here; the content only by Copy.
func (c *Content) Open(e Entry) (fs.File, error) {
	f, err := c.open(e.Path)
	if err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return nil, fmt.Errorf("%w (every file of the set must be readable for the user the source logs in as)", err)
		}
		alt, ok := c.find(e)
		if !ok {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("%s is missing from the set (%w): %w", e.Path, err, ErrContent)
			}
			return nil, err
		}
		if f, err = c.open(alt); err != nil {
			return nil, err
		}
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat %s: %w", e.Path, err)
	}
	if fi.Size() != e.Size {
		f.Close()
		return nil, fmt.Errorf("%s: %d bytes, the listing records %d: %w", e.Path, fi.Size(), e.Size, ErrContent)
	}
	return f, nil
}

// Renamed returns how many files were found under a name other than
// their own (see Content).
func (c *Content) Renamed() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.renamed
}

// find looks for the file e under another name (see Content). It holds
// the lock throughout: it is rare, and it reads folders once for all.
func (c *Content) find(e Entry) (p string, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	defer func() {
		if ok {
			c.renamed++
		}
	}()
	dir, ok := c.sourceDir(path.Dir(e.Path))
	if !ok {
		return "", false
	}
	if dir != path.Dir(e.Path) {
		// The folder had another name; the file itself may not.
		p := path.Join(dir, path.Base(e.Path))
		if fi, err := fs.Stat(c.fsys, p); err == nil && fi.Mode().IsRegular() && fi.Size() == e.Size {
			return p, true
		}
	}
	cs := c.candidatesIn(path.Dir(e.Path), dir)
	names := cs.files[e.Size]
	if len(names) == 1 {
		return path.Join(dir, names[0]), true // Copy checks the content
	}
	for _, n := range names {
		p := path.Join(dir, n)
		h, ok := cs.hashes[n]
		if !ok {
			h = c.hash(p)
			cs.hashes[n] = h
		}
		if h == e.Hash {
			return p, true
		}
	}
	return "", false
}

// sourceDir returns the name in fsys of the listing folder dir.
func (c *Content) sourceDir(dir string) (string, bool) {
	if dir == "." {
		return ".", true
	}
	if c.dirs == nil {
		c.dirs = map[string]string{}
	}
	if d, ok := c.dirs[dir]; ok {
		return d, d != ""
	}
	c.dirs[dir] = "" // not found, unless found below
	parent, ok := c.sourceDir(path.Dir(dir))
	if !ok {
		return "", false
	}
	p := path.Join(parent, path.Base(dir))
	if fi, err := fs.Stat(c.fsys, p); err == nil && fi.IsDir() {
		c.dirs[dir] = p
		return p, true
	}
	cs := c.candidatesIn(path.Dir(dir), parent)
	want := c.childNames()[dir]
	best, bestScore, tie := "", -1, false
	for _, d := range cs.dirs {
		score := 0
		if ents, err := fs.ReadDir(c.fsys, path.Join(parent, d)); err == nil {
			for _, e := range ents {
				if want[e.Name()] {
					score++
				}
			}
		}
		switch {
		case score > bestScore:
			best, bestScore, tie = d, score, false
		case score == bestScore:
			tie = true
		}
	}
	if best == "" || tie {
		return "", false
	}
	c.dirs[dir] = path.Join(parent, best)
	return c.dirs[dir], true
}

// candidatesIn lists the names in the fsys folder dir (the listing's
// folder ldir) that the listing does not have there.
func (c *Content) candidatesIn(ldir, dir string) *candidates {
	if c.cands == nil {
		c.cands = map[string]*candidates{}
	}
	if cs, ok := c.cands[dir]; ok {
		return cs
	}
	cs := &candidates{files: map[int64][]string{}, hashes: map[string]string{}}
	c.cands[dir] = cs
	listed := c.childNames()[ldir]
	ents, err := fs.ReadDir(c.fsys, dir)
	if err != nil {
		return cs
	}
	for _, e := range ents {
		if listed[e.Name()] {
			continue
		}
		switch {
		case e.IsDir():
			cs.dirs = append(cs.dirs, e.Name())
		case e.Type().IsRegular():
			if fi, err := e.Info(); err == nil {
				cs.files[fi.Size()] = append(cs.files[fi.Size()], e.Name())
			}
		}
	}
	return cs
}

func (c *Content) childNames() map[string]map[string]bool {
	if c.children == nil {
		c.children = map[string]map[string]bool{}
		for _, e := range c.all {
			if e.Path == "." {
				continue
			}
			d := path.Dir(e.Path)
			if c.children[d] == nil {
				c.children[d] = map[string]bool{}
			}
			c.children[d][path.Base(e.Path)] = true
		}
	}
	return c.children
}

func (c *Content) hash(p string) string {
	f, err := c.open(p)
	if err != nil {
		return ""
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return ""
	}
	return hex.EncodeToString(h.Sum(nil))
}

// ctxWriter stops a long copy when ctx is done, and keeps the writer's
// error apart from the reader's.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
	err error
}

func (w *ctxWriter) Write(p []byte) (int, error) {
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := w.w.Write(p)
	if err != nil {
		w.err = err
	}
	return n, err
}
