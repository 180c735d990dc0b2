// Package setdiff tells what changed between two backup sets: which files
// of the backed-up root were added, removed or changed (type, mode, owner,
// size, content). Each set is read into an index of its root tree: an
// rsync set from its listing (with every file's SHA-256, so content
// changes are exact) or, for sets without one, by listing the tree; a tar
// set from its archive's headers (content compared by size and mtime); an
// uncompressed dd set by listing its root filesystem, mounted read-only.
package setdiff

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/compress"
	"github.com/pibackup/pibackup/internal/restore"
	"github.com/pibackup/pibackup/internal/treelist"
)

// ErrUnsupported means a set's payload cannot be indexed file by file.
var ErrUnsupported = errors.New("this set cannot be compared file by file")

// Change is one difference. Kind is '+' (only in the second set), '-'
// (only in the first) or 'M' (in both, changed as What says).
type Change struct {
	Kind byte   `json:"kind"`
	Path string `json:"path"` // absolute in the backed-up system: /etc/fstab
	What string `json:"what,omitempty"`
}

func (c Change) String() string {
	if c.What == "" {
		return fmt.Sprintf("%c %s", c.Kind, c.Path)
	}
	return fmt.Sprintf("%c %s (%s)", c.Kind, c.Path, c.What)
}

// Index is a set's root tree: entries by relative path ("." the root).
type Index map[string]treelist.Entry

// Compare lists what changed from a to b, in walk order.
func Compare(a, b Index) []Change {
	paths := make([]string, 0, len(a)+len(b))
	for p := range a {
		paths = append(paths, p)
	}
	for p := range b {
		if _, ok := a[p]; !ok {
			paths = append(paths, p)
		}
	}
	slices.SortFunc(paths, func(x, y string) int {
		switch {
		case x == y:
			return 0
		case treelist.Less(x, y):
			return -1
		}
		return 1
	})
	var out []Change
	for _, p := range paths {
		ea, inA := a[p]
		eb, inB := b[p]
		abs := path.Clean("/" + p)
		switch {
		case !inB:
			out = append(out, Change{Kind: '-', Path: abs})
		case !inA:
			out = append(out, Change{Kind: '+', Path: abs})
		default:
			if what := changed(ea, eb); what != "" {
				out = append(out, Change{Kind: 'M', Path: abs, What: what})
			}
		}
	}
	return out
}

// changed describes how e became f, "" when it did not.
func changed(e, f treelist.Entry) string {
	if e.Type != f.Type {
		return fmt.Sprintf("type %c → %c", e.Type, f.Type)
	}
	var what []string
	if e.Mode != f.Mode {
		what = append(what, fmt.Sprintf("mode %04o → %04o", e.Mode, f.Mode))
	}
	if e.UID != f.UID || e.GID != f.GID {
		what = append(what, fmt.Sprintf("owner %d:%d → %d:%d", e.UID, e.GID, f.UID, f.GID))
	}
	if e.Type == 'f' || e.Type == 'l' {
		switch {
		case e.Size != f.Size:
			what = append(what, fmt.Sprintf("size %d → %d", e.Size, f.Size))
		case e.Hash != treelist.None && f.Hash != treelist.None:
			if e.Hash != f.Hash {
				what = append(what, "content")
			}
		case e.MtimeNS != f.MtimeNS:
			// Without hashes (tar), a new mtime at the same size is the
			// best sign of new content.
			what = append(what, "modified")
		}
	}
	if e.Rdev != f.Rdev {
		what = append(what, "device "+e.Rdev+" → "+f.Rdev)
	}
	return strings.Join(what, ", ")
}

// ReadFS indexes the root tree of a set read through fsys, its folder
// (local, or on a server through store.Store's FS; with encrypted
// payloads decrypted by payload.SetFS), named name. local is the
// folder's path when it is on this machine, else "": a tree without a
// listing and a dd image are read with local tools, so they need one; a
// listing and a tar payload stream from fsys.
func ReadFS(ctx context.Context, fsys fs.FS, name, local string) (Index, error) {
	n, err := backupset.Parse(name)
	if err != nil {
		return nil, fmt.Errorf("not a backup set folder: %w", err)
	}
	switch n.Type {
	case backupset.TypeRsync:
		m, _, err := backupset.ReadManifestIn(fsys, ".", n.Host)
		if err == nil {
			for _, t := range m.Trees {
				if t.Root == "." && t.Listing != "" {
					return readListing(fsys, t.Listing)
				}
			}
		}
		if local == "" {
			return nil, fmt.Errorf("%w: an rsync set without a listing is read from a local folder", ErrUnsupported)
		}
		// raspiBackup's rsync sets carry no listing: list the tree.
		return listTree(ctx, local, func(rel string) bool {
			return !strings.Contains(rel, "/") && backupset.IsOwnFile(n.Host, rel)
		})
	case backupset.TypeTar, backupset.TypeTGZ:
		entries, err := fs.ReadDir(fsys, ".")
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if b, _, ok := backupset.TarPayloadBase(e.Name()); ok && b == name {
				return readTar(fsys, e.Name())
			}
		}
		return nil, fmt.Errorf("%w: no %s.tar* payload", ErrUnsupported, name)
	case backupset.TypeDD, backupset.TypeDDZ:
		img := filepath.Join(local, name+".img")
		if _, err := os.Stat(img); local == "" || err != nil {
			return nil, fmt.Errorf("%w: the image is compressed, encrypted or on a server (compare dd sets in a local folder, or mount them with backupctl mount)", ErrUnsupported)
		}
		return readImage(ctx, img)
	}
	return nil, fmt.Errorf("%w: type %s", ErrUnsupported, n.Type)
}

func readListing(fsys fs.FS, name string) (Index, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return fromListing(f)
}

func fromListing(r io.Reader) (Index, error) {
	idx := Index{}
	lr := treelist.NewReader(r)
	for {
		e, err := lr.Next()
		if err == io.EOF {
			return idx, nil
		}
		if err != nil {
			return nil, err
		}
		idx[e.Path] = e
	}
}

// listTree lists a tree as a backup's listing does (hashing every file).
func listTree(ctx context.Context, root string, exclude func(rel string) bool) (Index, error) {
	var buf bytes.Buffer
	if _, err := treelist.WriteOptions(ctx, &buf, root, treelist.Options{Exclude: exclude}); err != nil {
		return nil, err
	}
	return fromListing(&buf)
}

// readTar indexes an archive's headers; its data is read past, not kept.
func readTar(fsys fs.FS, payload string) (Index, error) {
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
	idx := Index{}
	tr := tar.NewReader(zr)
	for n := 1; ; n++ {
		h, err := tr.Next()
		if err == io.EOF {
			return idx, nil
		}
		if err != nil {
			return nil, fmt.Errorf("archive member %d: %w", n, err)
		}
		rel := strings.TrimSuffix(strings.TrimPrefix(path.Clean("/"+h.Name), "/"), "/")
		if rel == "" {
			rel = "."
		}
		e := treelist.Entry{Mode: uint32(h.Mode) & 0o7777, UID: uint32(h.Uid), GID: uint32(h.Gid),
			MtimeNS: h.ModTime.UnixNano(), Hash: treelist.None, Rdev: treelist.None, XattrHash: treelist.None,
			Link: treelist.None, Path: rel}
		switch h.Typeflag {
		case tar.TypeDir:
			e.Type = 'd'
		case tar.TypeSymlink:
			e.Type, e.Size = 'l', int64(len(h.Linkname))
		case tar.TypeLink:
			// A hardlink is the same file as its target.
			if t, ok := idx[strings.TrimPrefix(path.Clean("/"+h.Linkname), "/")]; ok {
				e.Type, e.Size, e.Mode, e.UID, e.GID, e.MtimeNS = t.Type, t.Size, t.Mode, t.UID, t.GID, t.MtimeNS
			} else {
				e.Type = 'f'
			}
		case tar.TypeChar, tar.TypeBlock:
			e.Type = 'c'
			if h.Typeflag == tar.TypeBlock {
				e.Type = 'b'
			}
			e.Rdev = fmt.Sprintf("%d:%d", h.Devmajor, h.Devminor)
		case tar.TypeFifo:
			e.Type = 'p'
		default:
			e.Type, e.Size = 'f', h.Size
		}
		idx[rel] = e
	}
}

// readImage lists the root filesystem of a raw disk image.
func readImage(ctx context.Context, img string) (Index, error) {
	mnt, release, err := restore.MountImageRoot(ctx, img)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnsupported, err)
	}
	defer release()
	return listTree(ctx, mnt, func(rel string) bool { return rel == "lost+found" })
}
