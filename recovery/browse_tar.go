package main

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pibackup/pibackup/internal/extract"
	"github.com/pibackup/pibackup/internal/progress"
	"github.com/pibackup/pibackup/internal/tui/model"
)

// tarTree is a compressed tar set (tgz, tar.zst, raspiBackup's other
// compressors) browsed without a decompressed copy: the archive is read
// once for the names, types and sizes of its members (no data, no
// offsets: setfs would need a decompressed copy to seek in, which in the
// recovery is RAM), and Copy reads it a second time, GNU tar extracting
// only the marked members (internal/extract). A Pi root's 100k entries
// take about 6 MB here (64 bytes an entry, see TestTarListingMemory).
type tarTree struct {
	payload string
	setDir  string
	dirs    map[string][]model.FileEntry // "/etc" → its entries, sorted
	log     *slog.Logger
}

var _ model.Tree = (*tarTree)(nil)

// listTar reads the payload's headers and builds its tree. rep gets the
// archive's bytes read (phase "list"); cancelling ctx stops the read.
func listTar(ctx context.Context, setDir string, rep progress.Reporter, log *slog.Logger) (*tarTree, error) {
	payload, err := extract.TarPayload(setDir)
	if err != nil {
		return nil, err
	}
	zr, err := extract.OpenCounted(payload, "list", rep)
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	t := &tarTree{payload: payload, setDir: setDir, log: log}
	if err := t.read(ctx, zr); err != nil {
		return nil, fmt.Errorf("list %s: %w", filepath.Base(payload), err)
	}
	return t, nil
}

// read fills t.dirs from the tar stream r.
func (t *tarTree) read(ctx context.Context, r io.Reader) error {
	b := newTreeBuilder()
	tr := tar.NewReader(r)
	for n := 0; ; n++ {
		if n%1024 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		b.add(h)
	}
	t.dirs = b.finish()
	return nil
}

// treeBuilder collects a tar's members per folder. A folder missing from
// the archive is made up from its members' paths; a name the archive
// holds twice is shown as its last member, as tar extracts it.
type treeBuilder struct {
	dirs map[string][]model.FileEntry
}

func newTreeBuilder() *treeBuilder {
	return &treeBuilder{dirs: map[string][]model.FileEntry{"/": nil}}
}

func (b *treeBuilder) add(h *tar.Header) {
	p := path.Clean("/" + h.Name)
	if p == "/" {
		return
	}
	// The name is copied out of the path: a substring would keep the
	// whole path alive, tripling the tree's memory.
	e := model.FileEntry{Name: strings.Clone(path.Base(p))}
	switch h.Typeflag {
	case tar.TypeDir:
		b.ensureDir(p)
		return
	case tar.TypeSymlink:
		e.Symlink = true
	case tar.TypeReg, tar.TypeGNUSparse:
		e.Size = h.Size
	case tar.TypeLink:
		e.Size = b.size(path.Clean("/" + h.Linkname))
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
	default:
		return // PAX and GNU long-name headers are folded in by tar.Reader
	}
	dir := path.Dir(p)
	b.ensureDir(dir)
	b.dirs[dir] = append(b.dirs[dir], e)
}

// ensureDir makes dir and its parents known, each listed in its parent.
func (b *treeBuilder) ensureDir(dir string) {
	if _, ok := b.dirs[dir]; ok || dir == "/" {
		return
	}
	dir = strings.Clone(dir)
	b.dirs[dir] = nil
	parent := path.Dir(dir)
	b.ensureDir(parent)
	b.dirs[parent] = append(b.dirs[parent], model.FileEntry{Name: path.Base(dir), Dir: true})
}

// size is the size of the file at p, known already (a hardlink's first
// name comes before it in the archive).
func (b *treeBuilder) size(p string) int64 {
	for _, e := range slices.Backward(b.dirs[path.Dir(p)]) {
		if e.Name == path.Base(p) {
			return e.Size
		}
	}
	return 0
}

// finish sorts each folder and keeps one entry per name: a folder if
// the archive has members below that name (they are shown), else the
// name's last member. It returns the folders, their slices trimmed to
// size.
func (b *treeBuilder) finish() map[string][]model.FileEntry {
	for dir, es := range b.dirs {
		// Stable: of equal names, the later member stays later.
		slices.SortStableFunc(es, func(a, c model.FileEntry) int { return strings.Compare(a.Name, c.Name) })
		out := es[:0]
		for i, e := range es {
			if i+1 < len(es) && es[i+1].Name == e.Name {
				continue
			}
			if _, isDir := b.dirs[path.Join(dir, e.Name)]; isDir {
				e = model.FileEntry{Name: e.Name, Dir: true}
			}
			out = append(out, e)
		}
		slices.SortFunc(out, model.CompareEntries)
		b.dirs[dir] = slices.Clip(out)
	}
	return b.dirs
}

// ReadDir implements model.Tree.
func (t *tarTree) ReadDir(dir string) ([]model.FileEntry, error) {
	es, ok := t.dirs[path.Clean("/"+dir)]
	if !ok {
		return nil, &fs.PathError{Op: "readdir", Path: dir, Err: fs.ErrNotExist}
	}
	return slices.Clone(es), nil
}

// bytes adds up the regular files' sizes at and below p.
func (t *tarTree) bytes(p string) int64 {
	es, ok := t.dirs[p]
	if !ok {
		return 0
	}
	var n int64
	for _, e := range es {
		if e.Dir {
			n += t.bytes(path.Join(p, e.Name))
		} else {
			n += e.Size
		}
	}
	return n
}

// Copy implements model.Tree: the archive is read again and GNU tar
// extracts the marked members with every attribute (extract.PathsProgress).
// The progress is the archive's bytes read, as the whole archive is
// read whatever is marked. Onto FAT, where GNU tar would fail on owners,
// symlinks and device nodes, contents and times are written in Go
// (copyPlain), as rsync does for the other sets.
func (t *tarTree) Copy(ctx context.Context, paths []string, dest string, rep progress.Reporter) (model.Copied, error) {
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return model.Copied{}, err
	}
	fat, err := isFAT(dest)
	if err != nil {
		return model.Copied{}, err
	}
	if fat {
		var rels []string
		for _, p := range paths {
			if rel := strings.TrimPrefix(path.Clean("/"+p), "/"); rel != "" {
				rels = append(rels, rel)
			}
		}
		res, err := copyPlain(ctx, t.payload, rels, dest, rep)
		if err != nil {
			return res, err
		}
		t.log.Info("files copied onto FAT", "paths", paths, "dest", dest, "bytes", res.Bytes, "skipped", res.Skipped)
		return res, nil
	}
	var res model.Copied
	for _, p := range paths {
		p = path.Clean("/" + p)
		if _, ok := t.dirs[p]; ok {
			res.Bytes += t.bytes(p)
			continue
		}
		for _, e := range t.dirs[path.Dir(p)] {
			if e.Name == path.Base(p) {
				res.Bytes += e.Size
			}
		}
	}
	if err := extract.PathsProgress(ctx, t.setDir, paths, dest, rep); err != nil {
		return model.Copied{}, err
	}
	t.log.Info("files extracted", "paths", paths, "dest", dest, "bytes", res.Bytes)
	return res, nil
}

// Close implements model.Tree: the tree is only memory.
func (t *tarTree) Close() error { return nil }
