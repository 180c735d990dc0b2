package restore

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"strings"
	"time"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem"
	"github.com/diskfs/go-diskfs/filesystem/fat16"
	"github.com/diskfs/go-diskfs/filesystem/fat32"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/disklayout"
	"github.com/pibackup/pibackup/internal/treelist"
)

// makeFAT creates an empty FAT16 or FAT32 filesystem (kind "fat16",
// "fat32") on partition q of the target, labelled as the source was.
func (p *Plan) makeFAT(f *os.File, q backupset.Partition, kind string) (filesystem.FileSystem, error) {
	label := q.Label
	if src, ok := findPart(p.Source, q.Number); ok && src.Label != "" {
		label = src.Label
	}
	st := file.New(f, false)
	switch kind {
	case "fat16":
		fsys, err := fat16.Create(st, q.Size, q.Start, 512, label, false)
		if err != nil {
			return nil, fmt.Errorf("make FAT16: %w", err)
		}
		return fsys, nil
	default:
		fsys, err := fat32.Create(st, q.Size, q.Start, 512, label, false)
		if err != nil {
			return nil, fmt.Errorf("make FAT32: %w", err)
		}
		return fsys, nil
	}
}

func findPart(d *backupset.Disk, n int) (backupset.Partition, bool) {
	if d == nil {
		return backupset.Partition{}, false
	}
	for _, q := range d.Partitions {
		if q.Number == n {
			return q, true
		}
	}
	return backupset.Partition{}, false
}

// fatName turns a tar member name ("./overlays/README") into a FAT path
// ("/overlays/README"); "" for the root. path.Clean keeps "../" inside
// the filesystem.
func fatName(name string) string {
	p := path.Clean("/" + strings.TrimPrefix(name, "./"))
	if p == "/" {
		return ""
	}
	return p
}

// outsideName says why the tar member name would lead outside the
// folder it is extracted into ("" if it does not): an absolute name, or a
// ".." element. fatName would keep such a name inside the filesystem by
// cleaning it, but into a place the archive did not name.
func outsideName(name string) string {
	if strings.HasPrefix(name, "/") {
		return "is an absolute path"
	}
	for el := range strings.SplitSeq(name, "/") {
		if el == ".." {
			return `leads out of the partition (a ".." element)`
		}
	}
	return ""
}

// fillFATFromTar writes the folders and files of a tar stream into fsys.
// FAT has no owners, modes or links: those are dropped, symlinks and
// device nodes skipped with a log line. A member named by an absolute
// path or with a ".." element fails it (wrapping ErrBadSet). It returns
// the bytes of file data written.
func fillFATFromTar(ctx context.Context, fsys filesystem.FileSystem, r io.Reader, log *slog.Logger) (int64, error) {
	tr := tar.NewReader(r)
	var total int64
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		h, err := tr.Next()
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, fmt.Errorf("tar archive: %w", err)
		}
		if why := outsideName(h.Name); why != "" {
			// GNU tar refuses such a member too; a boot tar made by
			// raspiBackup or backupctl (tar -C /boot .) never has one, so
			// the set was made to attack the restore.
			return total, fmt.Errorf("tar member %q %s: %w", h.Name, why, ErrBadSet)
		}
		name := fatName(h.Name)
		if name == "" {
			continue
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := fsys.Mkdir(name); err != nil {
				return total, fmt.Errorf("FAT mkdir %s: %w", name, err)
			}
		case tar.TypeReg, tar.TypeRegA:
			n, err := writeFATFile(fsys, name, tr)
			total += n
			if err != nil {
				return total, err
			}
		default:
			log.Warn("FAT cannot hold this member; skipped", "name", h.Name, "type", string(h.Typeflag))
			continue
		}
		_ = fsys.Chtimes(name, h.ModTime, h.ModTime, h.ModTime) // best effort: FAT times are coarse
	}
}

// fillFATFromTree copies the folders and files under dir (an rsync tree
// of a FAT partition) into fsys. Files are opened inside dir only
// (openInRoot): a symlink in the tree never reads a host file.
func fillFATFromTree(ctx context.Context, fsys filesystem.FileSystem, dir string, log *slog.Logger) (int64, error) {
	var total int64
	err := fs.WalkDir(os.DirFS(dir), ".", func(rel string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		name := fatName(rel)
		if name == "" {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			if err := fsys.Mkdir(name); err != nil {
				return fmt.Errorf("FAT mkdir %s: %w", name, err)
			}
		case d.Type().IsRegular():
			src, err := openInRoot(dir, rel, os.O_RDONLY)
			if err != nil {
				return err
			}
			n, err := writeFATFile(fsys, name, src)
			src.Close()
			total += n
			if err != nil {
				return err
			}
		default:
			log.Warn("FAT cannot hold this entry; skipped", "name", rel, "mode", info.Mode().String())
			return nil
		}
		_ = fsys.Chtimes(name, info.ModTime(), info.ModTime(), info.ModTime())
		return nil
	})
	return total, err
}

// fillFATFromListing makes the folders and files of a listed tree (a
// FAT partition's tree of a -P set) in fsys, with the content read from
// the set and checked against the listing, and the listed mtimes. FAT has
// no owners, modes or links: a hardlink becomes a copy, symlinks and
// special files are skipped with a log line, as fillFATFromTree does.
func fillFATFromListing(ctx context.Context, fsys filesystem.FileSystem, g *goTree, log *slog.Logger) (int64, error) {
	var total int64
	for _, e := range g.entries {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		name := fatName(e.Path)
		if name == "" {
			continue
		}
		switch e.Type {
		case 'd':
			if err := fsys.Mkdir(name); err != nil {
				return total, fmt.Errorf("FAT mkdir %s: %w", name, err)
			}
		case 'f':
			n, err := disklayout.WriteFATFile(fsys, name, func(w io.Writer) (int64, error) {
				n, err := g.content.Copy(ctx, e, w)
				if errors.Is(err, treelist.ErrContent) {
					err = fmt.Errorf("%w: %w", err, ErrDamaged)
				}
				return n, err
			})
			total += n
			if err != nil {
				return total, err
			}
		default:
			log.Warn("FAT cannot hold this entry; skipped", "name", e.Path, "type", string(e.Type))
			continue
		}
		t := time.Unix(0, e.MtimeNS)
		_ = fsys.Chtimes(name, t, t, t)
	}
	return total, nil
}

func writeFATFile(fsys filesystem.FileSystem, name string, r io.Reader) (int64, error) {
	return disklayout.WriteFATFile(fsys, name, func(w io.Writer) (int64, error) { return io.Copy(w, r) })
}
