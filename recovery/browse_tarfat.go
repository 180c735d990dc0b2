package main

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/pibackup/pibackup/internal/extract"
	"github.com/pibackup/pibackup/internal/progress"
	"github.com/pibackup/pibackup/internal/tui/model"
)

// copyPlain extracts the members at and below rels (relative paths)
// from the payload into dest with contents and times only, what FAT
// holds (GNU tar would fail on owners, modes and links there). Symlinks,
// device nodes, FIFOs and a hardlink whose first name is not extracted
// are left out and counted, as rsync leaves them out for FAT.
func copyPlain(ctx context.Context, payload string, rels []string, dest string, rep progress.Reporter) (model.Copied, error) {
	zr, err := extract.OpenCounted(payload, "copy", rep)
	if err != nil {
		return model.Copied{}, err
	}
	defer zr.Close()
	return untarPlain(ctx, zr, rels, dest)
}

// untarPlain is copyPlain's work on the tar stream r.
func untarPlain(ctx context.Context, r io.Reader, rels []string, dest string) (model.Copied, error) {
	inside := func(name string) bool {
		for _, rel := range rels {
			if name == rel || strings.HasPrefix(name, rel+"/") {
				return true
			}
		}
		return false
	}
	var res model.Copied
	type dirTime struct {
		path  string
		mtime time.Time
	}
	var dirs []dirTime // folders' times are set last: their files change them
	written := map[string]bool{}
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return res, err
		}
		name := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		if name == "" || !inside(name) {
			continue
		}
		to := filepath.Join(dest, filepath.FromSlash(name))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(to, 0o755); err != nil {
				return res, err
			}
			dirs = append(dirs, dirTime{to, h.ModTime})
		case tar.TypeReg, tar.TypeGNUSparse:
			n, err := writeFile(to, tr, h.ModTime)
			res.Bytes += n
			if err != nil {
				return res, err
			}
			written[name] = true
		case tar.TypeLink:
			first := strings.TrimPrefix(path.Clean("/"+h.Linkname), "/")
			if !written[first] {
				res.Skipped++
				continue
			}
			f, err := os.Open(filepath.Join(dest, filepath.FromSlash(first)))
			if err != nil {
				return res, err
			}
			n, err := writeFile(to, f, h.ModTime)
			f.Close()
			res.Bytes += n
			if err != nil {
				return res, err
			}
			written[name] = true
		default:
			res.Skipped++
		}
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := os.Chtimes(dirs[i].path, dirs[i].mtime, dirs[i].mtime); err != nil {
			return res, err
		}
	}
	if res.Bytes == 0 && len(written) == 0 && len(dirs) == 0 {
		return res, fmt.Errorf("%s: %w", strings.Join(rels, ", "), extract.ErrNotFound)
	}
	return res, nil
}

// writeFile writes r to a new file at p (its folder made) with mtime.
func writeFile(p string, r io.Reader, mtime time.Time) (int64, error) {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return 0, err
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chtimes(p, mtime, mtime)
	}
	if err != nil {
		return n, fmt.Errorf("write %s: %w", p, err)
	}
	return n, nil
}
