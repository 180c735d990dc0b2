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
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/blockdev"
	"github.com/pibackup/pibackup/internal/compress"
	"github.com/pibackup/pibackup/internal/disklayout"
	"github.com/pibackup/pibackup/internal/restore"
)

// ErrNotFound means a path is not in the set.
var ErrNotFound = errors.New("not in the backup set")

// ErrUnsupported means the set's payload cannot be read file by file
// here.
var ErrUnsupported = errors.New("files cannot be extracted from this set")

// Paths extracts paths (of the backed-up root filesystem: "/etc/fstab",
// "home/pi") from the set folder setDir to dest, each under its full
// path. dest is created if missing.
func Paths(ctx context.Context, setDir string, paths []string, dest string) error {
	name, err := backupset.Parse(filepath.Base(setDir))
	if err != nil {
		return fmt.Errorf("%s is not a backup set folder: %w", setDir, err)
	}
	rels, err := cleanPaths(paths)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(setDir)
	if err != nil {
		return err
	}
	base := filepath.Base(setDir)
	switch name.Type {
	case backupset.TypeRsync:
		return fromTree(ctx, setDir, rels, dest)
	case backupset.TypeTar, backupset.TypeTGZ:
		for _, e := range entries {
			if b, _, ok := backupset.TarPayloadBase(e.Name()); ok && b == base {
				return fromTar(ctx, filepath.Join(setDir, e.Name()), rels, dest)
			}
		}
		return fmt.Errorf("%w: no %s.tar* payload (a partition-oriented set?)", ErrUnsupported, base)
	case backupset.TypeDD, backupset.TypeDDZ:
		img := filepath.Join(setDir, base+".img")
		if _, err := os.Stat(img); err != nil {
			return fmt.Errorf("%w: the image is compressed; extract files from a dd (not ddz) set, or restore it", ErrUnsupported)
		}
		return fromImage(ctx, img, rels, dest)
	}
	return fmt.Errorf("%w: type %s", ErrUnsupported, name.Type)
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
	return run(ctx, nil, "rsync", args...)
}

// fromTar extracts the members from a tar payload with GNU tar.
func fromTar(ctx context.Context, payload string, rels []string, dest string) error {
	f, err := os.Open(payload)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := compress.NewReader(f, backupset.CompressionOf(payload))
	if err != nil {
		return err
	}
	defer zr.Close()
	// Members are named ./path, as raspiBackup's and ours are.
	args := []string{"--extract", "--numeric-owner", "--xattrs", "--xattrs-include=*", "--acls",
		"--same-permissions", "--same-owner", "--file=-", "--directory=" + dest, "--"}
	for _, rel := range rels {
		args = append(args, "./"+rel)
	}
	err = run(ctx, zr, "tar", args...)
	if err != nil && strings.Contains(err.Error(), "Not found in archive") {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}

// fromImage mounts the root filesystem of a raw disk image read-only and
// copies from it.
func fromImage(ctx context.Context, img string, rels []string, dest string) error {
	d, err := disklayout.ReadFile(img)
	if err != nil {
		return err
	}
	var root *backupset.Partition
	for i := range d.Partitions {
		if p := &d.Partitions[i]; strings.HasPrefix(p.FSType, "ext") && root == nil {
			root = p
		}
	}
	if root == nil {
		return fmt.Errorf("%w: no ext2/3/4 root filesystem in the image", ErrUnsupported)
	}
	a, err := blockdev.AttachPartition(ctx, img, 0, root.Start, root.Size, true)
	if err != nil {
		return err
	}
	defer a.Detach()
	mnt, unmount, err := restore.MountExt4(a.Path, true)
	if err != nil {
		return err
	}
	defer unmount()
	return fromTree(ctx, mnt, rels, dest)
}

func run(ctx context.Context, stdin io.Reader, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = stdin
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w: %s", name, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}
