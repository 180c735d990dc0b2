package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/remotefile"
)

// Web is one backup set on a plain web server (nginx, Apache, Caddy, a
// NAS's web share, an S3 static website), named by the URL of its set
// folder. Web servers list no folders unless told to, and each lists
// them in its own HTML, so nothing is listed: the set's manifest names
// every file of the set with its size, and the source shows the tree
// <host>/<set>/ that holds them. rsync sets are a tree of many files
// that only their listing names; they are refused.
type Web struct {
	fsys *webFS
	desc string
}

// OpenWeb reads the manifest of the set at sp's URL with client (nil:
// http.DefaultClient).
func OpenWeb(ctx context.Context, sp Spec, client *http.Client) (*Web, error) {
	if client == nil {
		client = http.DefaultClient
	}
	setName := path.Base(sp.Path)
	n, err := backupset.Parse(setName)
	if err != nil || sp.Path == "." || sp.Path == "/" {
		return nil, fmt.Errorf("%s: the URL must name a set folder (…/HOST/HOST@os-type-backup-DATE/): a web server does not list folders: %w", sp, ErrNotFound)
	}
	base := &url.URL{Scheme: string(sp.Kind), Host: sp.Addr(), Path: strings.TrimSuffix(sp.Path, "/") + "/"}
	if sp.User != "" {
		base.User = url.UserPassword(sp.User, sp.Password)
	}
	w := &webFS{ctx: ctx, base: base, desc: sp.String(), c: client}
	var m *backupset.Manifest
	var size int64
	var mname string
	for _, mn := range backupset.ManifestNames(n.Host) {
		rc, _, err := w.get(mn, 0, -1)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(io.LimitReader(rc, 64<<20))
		rc.Close()
		if err == nil {
			m, err = backupset.ReadManifest(bytes.NewReader(b))
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", w.desc, mn, err)
		}
		size, mname = int64(len(b)), mn
		break
	}
	if m == nil {
		return nil, fmt.Errorf("%s: no manifest %s: not a complete set made by backupctl: %w", w.desc, backupset.ManifestName(n.Host), ErrNotFound)
	}
	if m.Type == backupset.TypeRsync {
		return nil, fmt.Errorf("%s: an rsync set is a tree of files that a web server cannot list; serve it over sftp, smb or nfs: %w", w.desc, ErrUnsupported)
	}
	mtime := m.Finished.Truncate(time.Second)
	w.files = map[string]remotefile.Info{}
	w.dirs = map[string][]string{}
	add := func(rel string, size int64) error {
		if !backupset.ValidRelPath(rel) {
			return fmt.Errorf("%s: the manifest names %q: not a path inside the set", w.desc, rel)
		}
		p := n.Host + "/" + setName + "/" + rel
		w.files[p] = remotefile.Info{Base: path.Base(p), Bytes: size, MTime: mtime}
		for d, child := path.Dir(p), path.Base(p); ; d, child = path.Dir(d), path.Base(d) {
			if !slices.Contains(w.dirs[d], child) {
				w.dirs[d] = append(w.dirs[d], child)
			}
			if d == "." {
				break
			}
		}
		return nil
	}
	if err := add(mname, size); err != nil {
		return nil, err
	}
	for _, f := range m.Files {
		if err := add(f.Path, f.Size); err != nil {
			return nil, err
		}
	}
	w.prefix = n.Host + "/" + setName + "/"
	return &Web{fsys: w, desc: w.desc}, nil
}

// FS implements Source.
func (s *Web) FS() fs.FS { return s.fsys }

// LocalDir implements Source.
func (s *Web) LocalDir() string { return "" }

// Device implements Source.
func (s *Web) Device() string { return "" }

// String implements Source.
func (s *Web) String() string { return s.desc }

// Close implements Source.
func (s *Web) Close() error { s.fsys.c.CloseIdleConnections(); return nil }

type webFS struct {
	ctx    context.Context
	c      *http.Client
	base   *url.URL // the set folder, ending in "/"
	desc   string
	prefix string // "<host>/<set>/": where the set's files are in the FS
	files  map[string]remotefile.Info
	dirs   map[string][]string // folder → names in it
}

var (
	_ fs.ReadDirFS = (*webFS)(nil)
	_ fs.StatFS    = (*webFS)(nil)
)

// get asks for bytes start..end (-1: to the end) of the file rel in the
// set folder and says the file's size.
func (w *webFS) get(rel string, start, end int64) (io.ReadCloser, int64, error) {
	u := w.base.JoinPath(rel)
	req, err := http.NewRequestWithContext(w.ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, 0, err
	}
	ranged := start > 0 || end >= 0
	if ranged {
		r := "bytes=" + strconv.FormatInt(start, 10) + "-"
		if end >= 0 {
			r += strconv.FormatInt(end, 10)
		}
		req.Header.Set("Range", r)
	}
	resp, err := w.c.Do(req)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) || errors.Is(err, io.EOF) {
			return nil, 0, fmt.Errorf("%s/%s: %w (%w)", w.desc, rel, ErrUnreachable, err)
		}
		return nil, 0, fmt.Errorf("%s/%s: %w", w.desc, rel, err)
	}
	switch {
	case ranged && resp.StatusCode == http.StatusPartialContent, !ranged && resp.StatusCode == http.StatusOK:
		return resp.Body, resp.ContentLength, nil
	}
	resp.Body.Close()
	var kind error
	switch resp.StatusCode {
	case http.StatusNotFound, http.StatusGone:
		kind = fs.ErrNotExist
	case http.StatusUnauthorized, http.StatusForbidden:
		kind = ErrAuth
	case http.StatusOK:
		kind = errors.New("the server ignores byte ranges; the restore needs them")
	default:
		kind = errors.New(resp.Status)
	}
	return nil, 0, fmt.Errorf("%s/%s: %w", w.desc, rel, kind)
}

func (w *webFS) Stat(name string) (fs.FileInfo, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrInvalid}
	}
	if fi, ok := w.files[name]; ok {
		return fi, nil
	}
	if _, ok := w.dirs[name]; ok {
		return remotefile.Info{Base: path.Base(name), Dir: true}, nil
	}
	return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
}

func (w *webFS) ReadDir(name string) ([]fs.DirEntry, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrInvalid}
	}
	names, ok := w.dirs[name]
	if !ok {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrNotExist}
	}
	var es []fs.DirEntry
	for _, n := range names {
		fi, err := w.Stat(path.Join(name, n))
		if err != nil {
			return nil, err
		}
		es = append(es, fs.FileInfoToDirEntry(fi))
	}
	slices.SortFunc(es, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return es, nil
}

func (w *webFS) Open(name string) (fs.File, error) {
	fi, err := w.Stat(name)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	if fi.IsDir() {
		es, err := w.ReadDir(name)
		if err != nil {
			return nil, err
		}
		return remotefile.NewDir(fi, es), nil
	}
	rel := strings.TrimPrefix(name, w.prefix)
	get := func(start, end int64) (io.ReadCloser, error) {
		rc, _, err := w.get(rel, start, end)
		return rc, err
	}
	wrap := func(err error) error { return fmt.Errorf("%s/%s: %w (%w)", w.desc, rel, ErrConnectionLost, err) }
	return remotefile.New(fi, get, wrap), nil
}
