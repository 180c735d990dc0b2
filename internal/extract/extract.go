// Package extract gets files and folders back from a backup set without
// restoring a card: "I only need /etc/fstab from last Tuesday". Each path
// lands under the destination with its full path (DIR/etc/fstab) and all
// its metadata (owner, mode, times, xattrs, ACLs, hardlinks within what
// is extracted), written by the same tools a restore uses: GNU tar for
// tar payloads (decompressed in Go, so every raspiBackup compression
// works), rsync for rsync trees and for the root filesystem inside a raw
// dd image (mounted read-only on a loop device).
package extract

import (
	"archive/tar"
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
	"github.com/pibackup/pibackup/internal/progress"
	"github.com/pibackup/pibackup/internal/restore"
)

// ErrNotFound means a path is not in the set.
var ErrNotFound = errors.New("not in the backup set")

// ErrUnsupported means the set's payload cannot be read file by file
// here.
var ErrUnsupported = errors.New("files cannot be extracted from this set")

// PathsProgress extracts paths (of the backed-up root filesystem:
// "/etc/fstab", "home/pi") from the set folder setDir to dest, each
// under its full path; dest is created if missing. It reports to rep,
// for a tar payload, the archive's bytes as they are read (phase
// "copy", the payload's size as total): the whole archive is read
// whatever is extracted, so that is what takes the time. A second pass
// for hardlinks starts the phase again.
func PathsProgress(ctx context.Context, setDir string, paths []string, dest string, rep progress.Reporter) error {
	return PathsFS(ctx, os.DirFS(setDir), filepath.Base(setDir), setDir, paths, dest, rep)
}

// PathsFS is PathsProgress for a set read through fsys, its folder
// (local, or on a server through store.Store's FS; with encrypted
// payloads decrypted by payload.SetFS), named name. local is the
// folder's path when it is on this machine, else "": an rsync tree and
// a dd image are read with local tools (rsync, a loop device), so they
// need one; a tar payload streams from fsys.
func PathsFS(ctx context.Context, fsys fs.FS, name, local string, paths []string, dest string, rep progress.Reporter) error {
	n, err := backupset.Parse(name)
	if err != nil {
		return fmt.Errorf("%s is not a backup set folder: %w", name, err)
	}
	rels, err := cleanPaths(paths)
	if err != nil {
		return err
	}
	switch n.Type {
	case backupset.TypeRsync:
		if local == "" {
			return fmt.Errorf("%w: an rsync set is read from a local folder (it is never on a server)", ErrUnsupported)
		}
		if err := os.MkdirAll(dest, 0o755); err != nil {
			return err
		}
		return fromTree(ctx, local, rels, dest)
	case backupset.TypeTar, backupset.TypeTGZ:
		payload, err := TarPayloadFS(fsys, name)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(dest, 0o755); err != nil {
			return err
		}
		return fromTar(ctx, tarSource{fsys, payload}, rels, dest, progress.OrNop(rep))
	case backupset.TypeDD, backupset.TypeDDZ:
		img := filepath.Join(local, name+".img")
		if _, err := os.Stat(img); local == "" || err != nil {
			return fmt.Errorf("%w: the image is compressed, encrypted or on a server; extract files from a dd (not ddz) set in a local folder, "+
				"or mount the set (backupctl mount), or restore it", ErrUnsupported)
		}
		if err := os.MkdirAll(dest, 0o755); err != nil {
			return err
		}
		return fromImage(ctx, img, rels, dest)
	}
	return fmt.Errorf("%w: type %s", ErrUnsupported, n.Type)
}

// tarSource is a tar payload in a set folder.
type tarSource struct {
	fsys fs.FS
	name string
}

// TarPayload returns the path of the tar payload holding the root
// filesystem of the tar or tgz set in setDir (SET.tar, SET.tgz,
// SET.tar.zst...).
func TarPayload(setDir string) (string, error) {
	entries, err := os.ReadDir(setDir)
	if err != nil {
		return "", err
	}
	base := filepath.Base(setDir)
	for _, e := range entries {
		if b, _, ok := backupset.TarPayloadBase(e.Name()); ok && b == base {
			return filepath.Join(setDir, e.Name()), nil
		}
	}
	return "", fmt.Errorf("%w: no %s.tar* payload (a partition-oriented set?)", ErrUnsupported, base)
}

// TarPayloadFS is TarPayload for the set folder fsys named set.
func TarPayloadFS(fsys fs.FS, set string) (string, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return "", err
	}
	for _, e := range entries {
		if b, _, ok := backupset.TarPayloadBase(e.Name()); ok && b == set {
			return e.Name(), nil
		}
	}
	return "", fmt.Errorf("%w: no %s.tar* payload (a partition-oriented set?)", ErrUnsupported, set)
}

// cleanPaths makes every path relative to the root and refuses any that
// leaves it.
func cleanPaths(paths []string) ([]string, error) {
	if len(paths) == 0 {
		return nil, errors.New("no path to extract")
	}
	var out []string
	for _, p := range paths {
		rel := strings.TrimPrefix(path.Clean("/"+filepath.ToSlash(p)), "/")
		if rel == "" || !fs.ValidPath(rel) {
			return nil, fmt.Errorf("%q: give a path inside the backed-up system, e.g. /etc/fstab", p)
		}
		out = append(out, rel)
	}
	return out, nil
}

// fromTree copies from an rsync tree (the set folder is its root).
func fromTree(ctx context.Context, root string, rels []string, dest string) error {
	for _, rel := range rels {
		if _, err := os.Lstat(filepath.Join(root, rel)); err != nil {
			return fmt.Errorf("/%s: %w", rel, ErrNotFound)
		}
	}
	return rsyncRelative(ctx, root, rels, dest)
}

// rsyncRelative copies root/rel to dest/rel with every attribute.
func rsyncRelative(ctx context.Context, root string, rels []string, dest string) error {
	args := []string{"-aHAX", "--numeric-ids", "--relative", "--sparse"}
	for _, rel := range rels {
		args = append(args, root+"/./"+rel)
	}
	args = append(args, dest+"/")
	_, err := restore.RunTool(ctx, nil, "rsync", args...)
	return err
}

// fromTar extracts the members from a tar payload with GNU tar.
func fromTar(ctx context.Context, payload tarSource, rels []string, dest string, rep progress.Reporter) error {
	err := untar(ctx, payload, rels, dest, rep)
	if err == nil || !strings.Contains(err.Error(), "Cannot hard link to") {
		return err
	}
	// A hardlink inside the selection whose first name is outside it has
	// no data of its own in the archive: GNU tar fails "Cannot hard
	// link". Only then is the archive read a second time, for those first
	// names; they are extracted too, then removed again (the selected
	// name keeps the data).
	extra, err := linkTargets(payload, rels)
	if err != nil {
		return err
	}
	var remove []string
	for _, x := range extra {
		if _, err := os.Lstat(filepath.Join(dest, x)); errors.Is(err, fs.ErrNotExist) {
			remove = append(remove, x)
		}
	}
	if err := untar(ctx, payload, append(slices.Clone(rels), extra...), dest, rep); err != nil {
		return err
	}
	for _, x := range remove {
		if err := os.Remove(filepath.Join(dest, x)); err != nil {
			return fmt.Errorf("remove the hardlink helper %s: %w", x, err)
		}
		// Folders made only for it go too.
		for d := path.Dir(x); d != "."; d = path.Dir(d) {
			if os.Remove(filepath.Join(dest, d)) != nil {
				break
			}
		}
	}
	return nil
}

// untar extracts members (relative paths) of the payload under dest.
func untar(ctx context.Context, payload tarSource, members []string, dest string, rep progress.Reporter) error {
	zr, err := openCountedFS(payload.fsys, payload.name, "copy", rep)
	if err != nil {
		return err
	}
	defer zr.Close()
	// Members are named ./path, as raspiBackup's and ours are.
	args := []string{"--extract", "--numeric-owner", "--xattrs", "--xattrs-include=*", "--acls",
		"--same-permissions", "--same-owner", "--file=-", "--directory=" + dest, "--"}
	for _, m := range members {
		args = append(args, "./"+m)
	}
	_, err = restore.RunTool(ctx, zr, "tar", args...)
	if err != nil && strings.Contains(err.Error(), "Not found in archive") {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}

// OpenCounted opens payload decompressed, as compress.OpenFile, and
// reports its (compressed) bytes to rep as they are read, in the phase
// named phase whose total is the file's size.
func OpenCounted(payload, phase string, rep progress.Reporter) (io.ReadCloser, error) {
	return openCountedFS(os.DirFS(filepath.Dir(payload)), filepath.Base(payload), phase, rep)
}

// openCountedFS is OpenCounted for the file name of fsys.
func openCountedFS(fsys fs.FS, name, phase string, rep progress.Reporter) (io.ReadCloser, error) {
	if err := compress.NotEncrypted(name); err != nil {
		return nil, err
	}
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	rep = progress.OrNop(rep)
	rep.Phase(phase, fi.Size())
	zr, err := compress.NewReader(progress.Reader{R: f, Rep: rep}, backupset.CompressionOf(name))
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return closeBoth{zr, f}, nil
}

// closeBoth closes the decompressor, then the file under it.
type closeBoth struct {
	io.ReadCloser
	f io.Closer
}

func (c closeBoth) Close() error {
	err := c.ReadCloser.Close()
	if ferr := c.f.Close(); err == nil {
		err = ferr
	}
	return err
}

// linkTargets returns the first names, outside rels, of hardlinks inside
// rels. It reads the archive's headers once.
func linkTargets(payload tarSource, rels []string) ([]string, error) {
	zr, err := openCountedFS(payload.fsys, payload.name, "", nil)
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	inside := func(name string) bool {
		for _, r := range rels {
			if name == r || strings.HasPrefix(name, r+"/") {
				return true
			}
		}
		return false
	}
	clean := func(n string) string { return strings.TrimPrefix(path.Clean("/"+n), "/") }
	var out []string
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", payload.name, err)
		}
		if h.Typeflag == tar.TypeLink && inside(clean(h.Name)) {
			if t := clean(h.Linkname); !inside(t) && !slices.Contains(out, t) {
				out = append(out, t)
			}
		}
	}
}

// fromImage copies from the root filesystem of a raw disk image, mounted
// read-only.
func fromImage(ctx context.Context, img string, rels []string, dest string) error {
	mnt, release, err := restore.MountImageRoot(ctx, img)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnsupported, err)
	}
	defer release()
	return fromTree(ctx, mnt, rels, dest)
}
