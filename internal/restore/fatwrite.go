package restore

import (
	"archive/tar"
	"context"
	"encoding/binary"
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
	"golang.org/x/sys/unix"

	"github.com/pibackup/pibackup/internal/backupset"
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
			src, err := openInRoot(dir, rel, unix.O_RDONLY)
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
			n, err := writeFATFileFunc(fsys, name, func(w io.Writer) (int64, error) {
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
	return writeFATFileFunc(fsys, name, func(w io.Writer) (int64, error) { return io.Copy(w, r) })
}

// writeFATFileFunc creates the FAT file name (and its folder) and fills
// it with fill.
func writeFATFileFunc(fsys filesystem.FileSystem, name string, fill func(io.Writer) (int64, error)) (int64, error) {
	if dir := path.Dir(name); dir != "/" {
		if err := fsys.Mkdir(dir); err != nil {
			return 0, fmt.Errorf("FAT mkdir %s: %w", dir, err)
		}
	}
	w, err := fsys.OpenFile(name, os.O_CREATE|os.O_RDWR|os.O_TRUNC)
	if err != nil {
		return 0, fmt.Errorf("FAT create %s: %w", name, err)
	}
	n, err := fill(w)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, fmt.Errorf("FAT write %s: %w", name, err)
	}
	return n, nil
}

// fixFATBootSector finishes the boot sector of a FAT filesystem made by
// go-diskfs (called after it is filled, so go-diskfs writes no boot
// sector after us):
//   - BPB_HiddSec (at 28) gets the partition's start in sectors, as
//     mkfs.vfat -h writes it and the Pi firmware wants it (go-diskfs
//     writes 0);
//   - FAT32: ".." of a folder in the root names cluster 0, as the FAT
//     spec and fsck.vfat want (go-diskfs writes the root's cluster);
//   - FAT16: cluster 2 is freed (go-diskfs marks it used for a root
//     folder that FAT16 keeps outside the clusters);
//   - FAT32: the FSInfo sector gets the free cluster count (go-diskfs
//     leaves it "unknown", which fsck.vfat reports);
//   - the total sector count is lowered, when needed, until every cluster
//     has a FAT entry: go-diskfs (v1.9.4) sizes the FAT without the two
//     reserved entries, and fsck.vfat then reports "Filesystem has N
//     clusters but only space for N-2 FAT entries". go-diskfs itself
//     never allocates beyond its FAT, so no data is lost; the partition
//     keeps a few unused sectors at its end.
//
// The FAT32 backup boot sector gets the same changes.
func fixFATBootSector(f io.ReaderAt, w io.WriterAt, start int64) error {
	bs := make([]byte, 512)
	if _, err := f.ReadAt(bs, start); err != nil {
		return fmt.Errorf("read boot sector: %w", err)
	}
	le16 := func(off int) int64 { return int64(binary.LittleEndian.Uint16(bs[off:])) }
	bps, spc, reserved, fats := le16(11), int64(bs[13]), le16(14), int64(bs[16])
	if bps == 0 || spc == 0 || bs[510] != 0x55 || bs[511] != 0xaa {
		return errors.New("BUG: no FAT boot sector after creating one")
	}
	rootDirSectors := (le16(17)*32 + bps - 1) / bps
	fatSize, entryBits := le16(22), int64(16)
	if fatSize == 0 { // FAT32
		fatSize, entryBits = int64(binary.LittleEndian.Uint32(bs[36:])), 32
	}
	total := le16(19)
	if total == 0 {
		total = int64(binary.LittleEndian.Uint32(bs[32:]))
	}
	meta := reserved + fats*fatSize + rootDirSectors
	maxClusters := fatSize*bps*8/entryBits - 2
	if (total-meta)/spc > maxClusters {
		total = meta + maxClusters*spc
		if le16(19) != 0 {
			binary.LittleEndian.PutUint16(bs[19:], uint16(total))
		} else {
			binary.LittleEndian.PutUint32(bs[32:], uint32(total))
		}
	}
	binary.LittleEndian.PutUint32(bs[28:], uint32(start/512))
	g := fatGeometry{start: start, bps: bps, spc: spc, reserved: reserved, fats: fats, fatSize: fatSize, dataStart: meta}
	if entryBits == 32 {
		if err := g.fixDotDot(f, w, int64(binary.LittleEndian.Uint32(bs[44:]))); err != nil {
			return err
		}
		clusters := (total - meta) / spc
		if err := fixFSInfo(f, w, start, bs, bps, reserved, fatSize, clusters); err != nil {
			return err
		}
	} else if err := g.freeCluster2(f, w); err != nil {
		return err
	}
	offs := []int64{0}
	if entryBits == 32 {
		if bk := le16(50); bk > 0 && bk < reserved {
			offs = append(offs, bk*bps)
		}
	}
	for _, off := range offs {
		// Only the BPB fields changed: hidden (28..31), totals (19..20, 32..35).
		for _, r := range [][2]int{{19, 21}, {28, 36}} {
			if _, err := w.WriteAt(bs[r[0]:r[1]], start+off+int64(r[0])); err != nil {
				return fmt.Errorf("write FAT boot sector: %w", err)
			}
		}
	}
	return nil
}

// fixFSInfo writes the free cluster count and the next free cluster hint
// into the FAT32 FSInfo sector (and its backup), counted from the FAT.
func fixFSInfo(f io.ReaderAt, w io.WriterAt, start int64, bs []byte, bps, reserved, fatSize, clusters int64) error {
	info := int64(binary.LittleEndian.Uint16(bs[48:]))
	if info == 0 || info == 0xffff || info >= reserved {
		return nil
	}
	fat := make([]byte, fatSize*bps)
	if _, err := f.ReadAt(fat, start+reserved*bps); err != nil {
		return fmt.Errorf("read FAT: %w", err)
	}
	var free, next uint32 = 0, 0xffffffff
	for c := int64(2); c < clusters+2 && c*4+4 <= int64(len(fat)); c++ {
		if binary.LittleEndian.Uint32(fat[c*4:])&0x0fffffff == 0 {
			free++
			if next == 0xffffffff {
				next = uint32(c)
			}
		}
	}
	var v [8]byte
	binary.LittleEndian.PutUint32(v[0:], free)
	binary.LittleEndian.PutUint32(v[4:], next)
	offs := []int64{info * bps}
	if bk := int64(binary.LittleEndian.Uint16(bs[50:])); bk > 0 && bk+info < reserved {
		offs = append(offs, (bk+info)*bps)
	}
	for _, off := range offs {
		sig := make([]byte, 4)
		if _, err := f.ReadAt(sig, start+off); err != nil || string(sig) != "RRaA" {
			continue // no FSInfo there
		}
		if _, err := w.WriteAt(v[:], start+off+488); err != nil {
			return fmt.Errorf("write FSInfo: %w", err)
		}
	}
	return nil
}

// fatGeometry locates the FATs and clusters of a FAT filesystem at start
// (all in sectors, except start in bytes).
type fatGeometry struct {
	start, bps, spc, reserved, fats, fatSize, dataStart int64
}

func (g fatGeometry) clusterOff(c int64) int64 {
	return g.start + (g.dataStart+(c-2)*g.spc)*g.bps
}

// fat32Next returns the FAT32 entry of cluster c.
func (g fatGeometry) fat32Next(f io.ReaderAt, c int64) (int64, error) {
	var b [4]byte
	if _, err := f.ReadAt(b[:], g.start+g.reserved*g.bps+c*4); err != nil {
		return 0, fmt.Errorf("read FAT: %w", err)
	}
	return int64(binary.LittleEndian.Uint32(b[:]) & 0x0fffffff), nil
}

// fixDotDot sets ".." of every folder in the FAT32 root folder (cluster
// root) to cluster 0.
func (g fatGeometry) fixDotDot(f io.ReaderAt, w io.WriterAt, root int64) error {
	clusterBytes := g.spc * g.bps
	buf := make([]byte, clusterBytes)
	for c, n := root, 0; c >= 2 && c < 0x0ffffff8; n++ {
		if n > 1<<20 {
			return errors.New("FAT32 root folder: cluster chain loops")
		}
		if _, err := f.ReadAt(buf, g.clusterOff(c)); err != nil {
			return fmt.Errorf("read FAT32 root folder: %w", err)
		}
		for off := int64(0); off+32 <= clusterBytes; off += 32 {
			e := buf[off : off+32]
			if e[0] == 0 {
				return nil // end of the folder
			}
			if e[0] == 0xe5 || e[11] == 0x0f || e[11]&0x10 == 0 || e[0] == '.' {
				continue // deleted, long name part, not a folder, "." or ".."
			}
			sub := int64(binary.LittleEndian.Uint16(e[20:]))<<16 | int64(binary.LittleEndian.Uint16(e[26:]))
			if sub < 2 {
				continue
			}
			dd := make([]byte, 32)
			at := g.clusterOff(sub) + 32 // ".." is the second entry
			if _, err := f.ReadAt(dd, at); err != nil {
				return fmt.Errorf("read FAT32 folder: %w", err)
			}
			if string(dd[:11]) != "..         " {
				continue
			}
			parent := int64(binary.LittleEndian.Uint16(dd[20:]))<<16 | int64(binary.LittleEndian.Uint16(dd[26:]))
			if parent == root {
				zero := make([]byte, 2)
				if _, err := w.WriteAt(zero, at+20); err != nil {
					return fmt.Errorf("write FAT32 folder: %w", err)
				}
				if _, err := w.WriteAt(zero, at+26); err != nil {
					return fmt.Errorf("write FAT32 folder: %w", err)
				}
			}
		}
		next, err := g.fat32Next(f, c)
		if err != nil {
			return err
		}
		c = next
	}
	return nil
}

// freeCluster2 frees cluster 2 of a FAT16 filesystem when it is marked
// as the end of a chain and no file or folder of the root starts there.
func (g fatGeometry) freeCluster2(f io.ReaderAt, w io.WriterAt) error {
	var b [2]byte
	fat0 := g.start + g.reserved*g.bps
	if _, err := f.ReadAt(b[:], fat0+4); err != nil {
		return fmt.Errorf("read FAT: %w", err)
	}
	if binary.LittleEndian.Uint16(b[:]) < 0xfff8 {
		return nil
	}
	// The FAT16 root folder lies between the FATs and the data.
	rootStart := g.start + (g.reserved+g.fats*g.fatSize)*g.bps
	root := make([]byte, g.start+g.dataStart*g.bps-rootStart)
	if _, err := f.ReadAt(root, rootStart); err != nil {
		return fmt.Errorf("read FAT16 root folder: %w", err)
	}
	for off := 0; off+32 <= len(root); off += 32 {
		e := root[off : off+32]
		if e[0] == 0 {
			break
		}
		if e[0] != 0xe5 && e[11] != 0x0f && binary.LittleEndian.Uint16(e[26:]) == 2 {
			return nil // in use
		}
	}
	for i := int64(0); i < g.fats; i++ {
		if _, err := w.WriteAt([]byte{0, 0}, fat0+i*g.fatSize*g.bps+4); err != nil {
			return fmt.Errorf("write FAT: %w", err)
		}
	}
	return nil
}
