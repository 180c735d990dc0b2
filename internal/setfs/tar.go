package setfs

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/compress"
	"github.com/pibackup/pibackup/internal/size"
)

// A tar payload is read once, when it is first mounted, into an index:
// every member's header and the offset of its data in the uncompressed
// archive. Opening a file then reads its bytes at that offset, not the
// archive from the start.
//
// gzip and zstd streams as our writers make them cannot be entered in the
// middle (pgzip chains its blocks through the deflate window; the zstd
// writer makes one frame), so a compressed payload is decompressed once
// into the cache next to its index and read from there: the cache costs
// the archive's uncompressed size on disk, and the first mount the time
// of one full read. An uncompressed .tar is read in place.

// indexVersion changes whenever member's fields change meaning, so an old
// cache is rebuilt instead of misread.
const indexVersion = 1

type tarIndex struct {
	Version int      `json:"version"`
	Members []member `json:"members"`
}

// member is one archive member as the index keeps it.
type member struct {
	Name    string            `json:"name"` // cleaned, relative, "." the root
	Type    byte              `json:"type"`
	Mode    int64             `json:"mode"`
	UID     int               `json:"uid"`
	GID     int               `json:"gid"`
	MtimeNS int64             `json:"mtime"`
	AtimeNS int64             `json:"atime,omitempty"`
	Size    int64             `json:"size"`
	Link    string            `json:"link,omitempty"`
	Major   int64             `json:"major,omitempty"`
	Minor   int64             `json:"minor,omitempty"`
	Xattrs  map[string][]byte `json:"xattrs,omitempty"`
	Header  int64             `json:"header"` // offset of its first header block
	Data    int64             `json:"data"`   // offset of its data
	Sparse  bool              `json:"sparse,omitempty"`
}

// openTar indexes the payload of src (or loads its cached index) and
// returns the uncompressed archive to read members from, and the index.
// An uncompressed archive is read where it is (a local file, or through
// src's FS at offsets: ranged reads on a server, age decrypting at an
// offset); a compressed one from its copy in the cache.
func openTar(src setSource, payload string, opts Options) (readerAtCloser, *tarIndex, error) {
	cacheDir := opts.CacheDir
	key, n, err := cacheKey(src.fsys, payload)
	if err != nil {
		return nil, nil, err
	}
	compressed := backupset.CompressionOf(payload) != backupset.CompressNone
	idxPath := filepath.Join(cacheDir, key+".index.json")
	open := func() (readerAtCloser, error) {
		if compressed {
			return os.Open(filepath.Join(cacheDir, key+".tar"))
		}
		if p := src.path(payload); p != "" {
			return os.Open(p)
		}
		f, _, err := src.openAt(payload)
		return f, err
	}
	if idx, err := loadIndex(idxPath); err == nil {
		if f, err := open(); err == nil {
			return f, idx, nil
		}
	}
	if compressed && opts.NoDecompress {
		return nil, nil, fmt.Errorf("%w: %s", ErrCompressed, payload)
	}
	if err := os.MkdirAll(cacheDir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("cache folder: %w", err)
	}
	start := time.Now()
	opts.note("indexing %s (%s to read%s) into %s (once; later mounts reuse it)", payload, size.Format(n), src.where(), cacheDir)
	idx, err := buildIndex(src.fsys, payload, compressed, filepath.Join(cacheDir, key+".tar"))
	if err != nil {
		return nil, nil, err
	}
	b, err := json.Marshal(idx)
	if err != nil {
		return nil, nil, err
	}
	if err := writeAtomic(idxPath, func(w io.Writer) error { _, err := w.Write(b); return err }); err != nil {
		return nil, nil, fmt.Errorf("cache the index: %w", err)
	}
	opts.Log.Info("archive indexed", "members", len(idx.Members), "took", time.Since(start).Round(time.Millisecond))
	f, err := open()
	return f, idx, err
}

// cacheKey names a payload's cache files by its size, mtime and the
// SHA-256 of its first and last MiB: cheap to compute at every mount
// (two ranged reads on a server), and a payload rewritten in place gets
// a new key. It returns the payload's size too.
func cacheKey(fsys iofs.FS, payload string) (string, int64, error) {
	f, err := fsys.Open(payload)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", 0, err
	}
	h := sha256.New()
	fmt.Fprintf(h, "%d %d\n", fi.Size(), fi.ModTime().UnixNano())
	const span = 1 << 20
	ra, ok := f.(io.ReaderAt)
	if !ok {
		// No offsets: the first MiB only.
		if _, err := io.CopyN(h, f, span); err != nil && err != io.EOF {
			return "", 0, fmt.Errorf("read %s: %w", payload, err)
		}
		return hex.EncodeToString(h.Sum(nil))[:32], fi.Size(), nil
	}
	if _, err := io.Copy(h, io.NewSectionReader(ra, 0, min(span, fi.Size()))); err != nil {
		return "", 0, fmt.Errorf("read %s: %w", payload, err)
	}
	if fi.Size() > span {
		if _, err := io.Copy(h, io.NewSectionReader(ra, max(span, fi.Size()-span), span)); err != nil {
			return "", 0, fmt.Errorf("read %s: %w", payload, err)
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:32], fi.Size(), nil
}

func loadIndex(p string) (*tarIndex, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	var idx tarIndex
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, err
	}
	if idx.Version != indexVersion {
		return nil, errors.New("index of another version")
	}
	return &idx, nil
}

// writeAtomic writes p through a temporary file renamed into place, so a
// cache file exists only complete.
func writeAtomic(p string, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(p), filepath.Base(p)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := write(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), p)
}

// counter counts the bytes read through it: the offsets of the index.
type counter struct {
	r io.Reader
	n int64
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// buildIndex reads the archive once. A compressed one is written
// uncompressed to archive on the way.
func buildIndex(fsys iofs.FS, payload string, compressed bool, archive string) (*tarIndex, error) {
	if err := compress.NotEncrypted(payload); err != nil {
		return nil, err
	}
	f, err := fsys.Open(payload)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := compress.NewReader(f, backupset.CompressionOf(payload))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", payload, err)
	}
	defer zr.Close()
	var idx *tarIndex
	scan := func(r io.Reader) error {
		idx, err = scanTar(r, payload)
		return err
	}
	if !compressed {
		return idx, scan(zr)
	}
	err = writeAtomic(archive, func(w io.Writer) error {
		r := io.TeeReader(zr, w)
		if err := scan(r); err != nil {
			return err
		}
		// The rest (end blocks, padding) too: the stream's checksum is
		// checked at its end.
		_, err := io.Copy(io.Discard, r)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("decompress %s into the cache (it needs the archive's uncompressed size): %w", payload, err)
	}
	return idx, nil
}

// scanTar reads every member's header and data (to know where the next
// one starts).
func scanTar(r io.Reader, name string) (*tarIndex, error) {
	c := &counter{r: r}
	tr := tar.NewReader(c)
	idx := &tarIndex{Version: indexVersion}
	next := int64(0) // where the next member's headers start
	for n := 1; ; n++ {
		h, err := tr.Next()
		if err == io.EOF {
			return idx, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: member %d: %w", name, n, err)
		}
		m := member{Name: cleanName(h.Name), Type: h.Typeflag, Mode: h.Mode, UID: h.Uid, GID: h.Gid,
			MtimeNS: h.ModTime.UnixNano(), Size: h.Size, Major: h.Devmajor, Minor: h.Devminor,
			Header: next, Data: c.n}
		if !h.AccessTime.IsZero() {
			m.AtimeNS = h.AccessTime.UnixNano()
		}
		if h.Typeflag == tar.TypeLink {
			m.Link = cleanName(h.Linkname)
		} else {
			m.Link = h.Linkname
		}
		for k, v := range h.PAXRecords {
			if x, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
				if m.Xattrs == nil {
					m.Xattrs = map[string][]byte{}
				}
				m.Xattrs[x] = []byte(v)
			}
			if strings.HasPrefix(k, "GNU.sparse.") {
				m.Sparse = true
			}
		}
		if h.Typeflag == tar.TypeGNUSparse {
			m.Sparse = true
		}
		if _, err := io.Copy(io.Discard, tr); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", name, h.Name, err)
		}
		next = (c.n + 511) &^ 511
		idx.Members = append(idx.Members, m)
	}
}

func cleanName(n string) string {
	rel := strings.TrimPrefix(path.Clean("/"+n), "/")
	if rel == "" {
		return "."
	}
	return rel
}

// tarTree builds the tree of an indexed archive whose uncompressed bytes
// are f.
func tarTree(t *tree, f io.ReaderAt, idx *tarIndex) *entry {
	root := t.newEntry(syscall.S_IFDIR | 0o755)
	byName := map[string]*entry{}
	for i := range idx.Members {
		m := &idx.Members[i]
		if m.Type == tar.TypeLink {
			// Another name of an earlier member: the same entry.
			if e, ok := byName[m.Link]; ok && e.children == nil {
				e.nlink++
				t.put(root, m.Name, e)
				byName[m.Name] = e
			}
			continue
		}
		typ, ok := tarTypes[m.Type]
		if !ok {
			continue // headers of other kinds carry no file
		}
		e := t.newEntry(typ | uint32(m.Mode)&0o7777)
		e.uid, e.gid = uint32(m.UID), uint32(m.GID)
		e.mtime = time.Unix(0, m.MtimeNS)
		e.atime = e.mtime
		if m.AtimeNS != 0 {
			e.atime = time.Unix(0, m.AtimeNS)
		}
		e.xattrs = m.Xattrs
		switch typ {
		case syscall.S_IFLNK:
			e.target, e.size = m.Link, int64(len(m.Link))
		case syscall.S_IFCHR, syscall.S_IFBLK:
			e.rdev = uint32(unix.Mkdev(uint32(m.Major), uint32(m.Minor)))
		case syscall.S_IFREG:
			e.size = m.Size
			if m.Sparse {
				e.content = &sparseMember{f: f, header: m.Header}
			} else {
				e.content = section{io.NewSectionReader(f, m.Data, m.Size)}
			}
		}
		t.put(root, m.Name, e)
		byName[m.Name] = e
	}
	return root
}

// tarTypes maps the member types that are files to st_mode's types.
var tarTypes = map[byte]uint32{tar.TypeDir: syscall.S_IFDIR, tar.TypeSymlink: syscall.S_IFLNK,
	tar.TypeChar: syscall.S_IFCHR, tar.TypeBlock: syscall.S_IFBLK, tar.TypeFifo: syscall.S_IFIFO,
	tar.TypeReg: syscall.S_IFREG, tar.TypeRegA: syscall.S_IFREG, tar.TypeGNUSparse: syscall.S_IFREG}

// section is a member's data in place.
type section struct{ *io.SectionReader }

func (s section) open() (reader, error) { return s, nil }
func (section) Close() error            { return nil }

// sparseMember is a sparse member: its data in the archive is only the
// non-hole parts, so it is read through a tar reader started at its
// header. Each open file keeps its reader; a read before its position
// starts it again (reads come in order when a file is copied).
type sparseMember struct {
	f      io.ReaderAt
	header int64
}

func (s *sparseMember) open() (reader, error) { return &sparseReader{s: s}, nil }

type sparseReader struct {
	s   *sparseMember
	mu  sync.Mutex
	tr  *tar.Reader
	pos int64
}

func (r *sparseReader) ReadAt(p []byte, off int64) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.tr == nil || off < r.pos {
		r.tr = tar.NewReader(io.NewSectionReader(r.s.f, r.s.header, 1<<62))
		if _, err := r.tr.Next(); err != nil {
			return 0, err
		}
		r.pos = 0
	}
	if off > r.pos {
		n, err := io.CopyN(io.Discard, r.tr, off-r.pos)
		r.pos += n
		if err != nil {
			return 0, err
		}
	}
	n, err := io.ReadFull(r.tr, p)
	r.pos += int64(n)
	if err == io.ErrUnexpectedEOF {
		err = io.EOF
	}
	return n, err
}

func (r *sparseReader) Close() error { return nil }
