package backup

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/diskfs/go-diskfs/backend/file"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/disklayout"
	"github.com/pibackup/pibackup/internal/progress"
)

// A FAT partition of a disk that is not the running system is read
// in-process with go-diskfs instead of being mounted: the host that runs
// an offline backup (a PC, a container, the recovery image) may have no
// vfat driver, and mtools would add a dependency.

// fatMode is what a Linux vfat mount with the default umask 022 shows for
// every file and folder, and so what raspiBackup's .tmg archives hold.
const fatMode = 0o755

// openFAT opens the FAT filesystem of partition p of the disk or image at
// diskPath. close releases the disk.
func openFAT(diskPath string, p *backupset.Partition) (fsys fs.FS, closeFn func() error, err error) {
	f, err := os.Open(diskPath)
	if err != nil {
		return nil, nil, fmt.Errorf("open %s: %w", diskPath, err)
	}
	fsys, err = disklayout.OpenFAT(file.New(f, true), p.Start, p.Size)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("read FAT filesystem of partition %d of %s: %w", p.Number, diskPath, err)
	}
	return fsys, f.Close, nil
}

// fatWalk visits every entry of fsys below "." in walk order, skipping
// the names FAT reserves ("." "..") and volume labels.
func fatWalk(ctx context.Context, fsys fs.FS, fn func(rel string, fi fs.FileInfo) error) error {
	return fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == "." {
			return nil
		}
		if b := path.Base(p); b == "." || b == ".." {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		return fn(p, fi)
	})
}

// writeFATTar archives fsys as GNU tar would archive its mount with
// `tar -C MNT .`: members "./path", root-owned, mode 0755.
func writeFATTar(ctx context.Context, fsys fs.FS, w io.Writer, rep progress.Reporter, exclude func(string) bool) error {
	tw := tar.NewWriter(w)
	now := time.Now()
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "./", Mode: fatMode, ModTime: now, Format: tar.FormatPAX}); err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	err := fatWalk(ctx, fsys, func(rel string, fi fs.FileInfo) error {
		if exclude != nil && exclude(rel) {
			if fi.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		h := &tar.Header{Name: "./" + rel, Mode: fatMode, ModTime: fi.ModTime(), Format: tar.FormatPAX}
		if fi.IsDir() {
			h.Typeflag, h.Name = tar.TypeDir, h.Name+"/"
			return tw.WriteHeader(h)
		}
		h.Typeflag, h.Size = tar.TypeReg, fi.Size()
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		f, err := fsys.Open(rel)
		if err != nil {
			return fmt.Errorf("open %s: %w", rel, err)
		}
		defer f.Close()
		n, err := io.CopyBuffer(tw, progress.Reader{R: f, Rep: rep}, buf)
		if err == nil && n != fi.Size() {
			err = fmt.Errorf("read %d of %d bytes", n, fi.Size())
		}
		if err != nil {
			return fmt.Errorf("archive %s: %w", rel, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// copyFATTree copies fsys into the folder dst (partition-oriented rsync
// sets), with the owners, modes and times a vfat mount shows.
func copyFATTree(ctx context.Context, fsys fs.FS, dst string, rep progress.Reporter, exclude func(string) bool) error {
	if err := os.Mkdir(dst, fatMode); err != nil {
		return noSpace(err)
	}
	type dirTime struct {
		p string
		t time.Time
	}
	var dirs []dirTime
	buf := make([]byte, 1<<20)
	err := fatWalk(ctx, fsys, func(rel string, fi fs.FileInfo) error {
		if exclude != nil && exclude(rel) {
			if fi.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		p := filepath.Join(dst, filepath.FromSlash(rel))
		if fi.IsDir() {
			dirs = append(dirs, dirTime{p, fi.ModTime()})
			return noSpace(os.Mkdir(p, fatMode))
		}
		in, err := fsys.Open(rel)
		if err != nil {
			return fmt.Errorf("open %s: %w", rel, err)
		}
		defer in.Close()
		out, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fatMode)
		if err != nil {
			return noSpace(err)
		}
		_, err = io.CopyBuffer(out, progress.Reader{R: in, Rep: rep}, buf)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return noSpace(fmt.Errorf("copy %s: %w", rel, err))
		}
		return os.Chtimes(p, fi.ModTime(), fi.ModTime())
	})
	if err != nil {
		return err
	}
	// Folder times last: writing into a folder changes its mtime.
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := os.Chtimes(dirs[i].p, dirs[i].t, dirs[i].t); err != nil {
			return err
		}
	}
	return nil
}
