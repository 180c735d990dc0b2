package tuitest

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/pibackup/pibackup/internal/progress"
	"github.com/pibackup/pibackup/internal/source"
	"github.com/pibackup/pibackup/internal/tui/model"
)

// Browser serves every set's files from one local folder (Root), a
// stand-in for the recovery's adapter, which reads them from the set.
type Browser struct {
	Root string
	// Skipped is what every Copy reports as left out (as the real tree
	// does for symlinks and device nodes on FAT).
	Skipped int
}

// Browse implements model.Browser.
func (b *Browser) Browse(context.Context, model.Request, progress.Reporter) (model.Tree, error) {
	return folderTree{root: b.Root, skipped: b.Skipped}, nil
}

type folderTree struct {
	root    string
	skipped int
}

func (t folderTree) ReadDir(dir string) ([]model.FileEntry, error) {
	des, err := os.ReadDir(filepath.Join(t.root, dir))
	if err != nil {
		return nil, err
	}
	var out []model.FileEntry
	for _, d := range des {
		fi, err := d.Info()
		if err != nil {
			return nil, err
		}
		out = append(out, model.FileEntry{Name: d.Name(), Dir: d.IsDir(), Symlink: d.Type()&os.ModeSymlink != 0, Size: fi.Size()})
	}
	slices.SortFunc(out, model.CompareEntries)
	return out, nil
}

// Copy copies regular files and folders (the fake keeps no metadata).
func (t folderTree) Copy(ctx context.Context, paths []string, dest string, rep progress.Reporter) (model.Copied, error) {
	var n int64
	rep = progress.OrNop(rep)
	rep.Phase("copy", -1)
	for _, p := range paths {
		src := filepath.Join(t.root, p)
		err := filepath.Walk(src, func(f string, fi os.FileInfo, err error) error {
			if err != nil || ctx.Err() != nil {
				return errors.Join(err, ctx.Err())
			}
			rel, _ := filepath.Rel(t.root, f)
			to := filepath.Join(dest, rel)
			if fi.IsDir() {
				return os.MkdirAll(to, 0o755)
			}
			if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
				return err
			}
			in, err := os.Open(f)
			if err != nil {
				return err
			}
			defer in.Close()
			out, err := os.Create(to)
			if err != nil {
				return err
			}
			c, err := io.Copy(out, in)
			n += c
			rep.Add(c)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			return err
		})
		if err != nil {
			return model.Copied{Bytes: n}, err
		}
	}
	return model.Copied{Bytes: n, Skipped: t.skipped}, nil
}

func (folderTree) Close() error { return nil }

// MountDest "mounts" a partition as the folder Dir/mnt/<name>.
func (w *World) MountDest(_ context.Context, p source.Partition) (string, func() error, error) {
	dir := filepath.Join(w.Dir, "mnt", p.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", nil, err
	}
	return dir, func() error { return nil }, nil
}
