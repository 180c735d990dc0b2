package backup

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/blockdev"
	"github.com/pibackup/pibackup/internal/disklayout"
	"github.com/pibackup/pibackup/internal/progress"
)

// rootExcludes are the excludes on the root filesystem: raspiBackup's
// defaults, the backup folder itself when it lies inside the source root,
// and the user's.
func (r *runner) rootExcludes() []string {
	ex := slices.Clone(DefaultExcludes)
	if r.src.running && r.local != "" {
		// The running root is "/" as the user names paths, whichever
		// folder it is read through.
		if rel, err := filepath.Rel("/", r.local); err == nil && !strings.HasPrefix(rel, "..") && rel != "." {
			ex = append(ex, "/"+filepath.ToSlash(rel)+"/*")
		}
	}
	return append(ex, r.excludes...)
}

// rootUsed estimates the bytes in use on the root filesystem.
func (r *runner) rootUsed() int64 {
	if r.src.running {
		if n, err := usedBytes("/"); err == nil {
			return n
		}
	}
	if r.src.root != nil {
		return partUsed(r.src.root)
	}
	return 0
}

// makePlan plans the set (planSet) from what the source and the target
// say now, and fills the manifest from the plan.
func (r *runner) makePlan() error {
	in := planInput{opts: r.opts, typ: r.typ, comp: r.comp, ext: r.ext, host: r.host, name: r.name.String(),
		setDir: r.where(path.Join(r.host, r.name.String())), src: r.src, remote: r.local == "", free: -1,
		rootUsed: r.rootUsed(), rootExcludes: r.rootExcludes(), excludes: r.excludes, images: r}
	if r.prev != nil {
		in.previous = r.prev.name
	}
	if r.local != "" { // a server does not say
		free, err := blockdev.FreeBytes(r.local)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrPreflight, err)
		}
		in.free = free
	}
	p, err := planSet(in)
	if err != nil {
		return err
	}
	r.plan = p
	r.fillManifest()
	return nil
}

// fillManifest records everything known before writing.
func (r *runner) fillManifest() {
	f := r.plan.facts
	m := backupset.Manifest{
		FormatVersion: backupset.ManifestVersion,
		Tool:          "backupctl",
		ToolVersion:   r.opts.ToolVersion,
		Host:          r.host,
		OSRelease:     r.name.OSRelease,
		Type:          r.typ,
		Compression:   string(r.comp),
		PartitionMode: r.opts.PartitionMode(),
		Options:       backupset.Options{UsedPartitionsOnly: r.opts.UsedPartitionsOnly, BootTar: r.opts.BootTar, FullRead: r.opts.FullRead},
		Started:       r.deps.Now(),
		Disk:          *r.src.disk,
		Snapshot:      r.opts.Snapshot,
		Excludes:      r.excludes,
		ImageSize:     f.imageSize,
		BootBackedUp:  f.bootBackedUp,
		BootPartition: f.bootPartition,
		RootPartition: f.rootPartition,
		Partitions:    slices.Clone(f.partitions),
	}
	m.Disk.Device = r.src.devName
	if !r.src.running {
		m.SourceDisk = r.src.path
	}
	if r.opts.Encrypt != nil {
		m.Encryption = r.opts.Encrypt.Info()
	}
	if r.prev != nil && r.typ == backupset.TypeRsync {
		m.PreviousSet = r.prev.name
	}
	m.Notes = slices.Clone(r.plan.Notes)
	slices.Sort(m.Notes)
	m.Notes = slices.Compact(m.Notes)
	r.man = m
}

// writeSet makes every planned item in order.
func (r *runner) writeSet(ctx context.Context) error {
	r.man.Started = r.deps.Now()
	for _, it := range r.plan.Items {
		if err := ctx.Err(); err != nil {
			return err
		}
		what := it.File
		if what == "./" {
			what = "root tree"
		}
		r.log.Info("writing", "file", what)
		if err := r.writeItem(ctx, it.step); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("%s: %w", what, ctx.Err())
			}
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	return nil
}

// writeItem makes one item of the plan as its step says.
func (r *runner) writeItem(ctx context.Context, st step) error {
	switch st.kind {
	case stepMeta:
		write, err := r.metaWriter(st.meta)
		if err != nil {
			return err
		}
		return r.writeMeta(ctx, st.rel, write, st.link)
	case stepImage:
		f, err := r.writePlannedImage(ctx, st.rel, st.comp, st.start, st.size, st.parts, st.phase)
		if err == nil && st.link {
			r.linkToPrevious(f)
		}
		return err
	case stepBootTar:
		return r.writeBootTar(ctx, st.rel)
	case stepTar:
		if st.fat {
			return r.writeFATTar(ctx, st.rel, st.part, st.excludes)
		}
		dir, err := r.filesDir(st.part)
		if err != nil {
			return err
		}
		return r.writeTar(ctx, st.rel, dir, st.excludes, st.expect)
	case stepTree:
		if st.fat {
			return r.writeFATTree(ctx, st.part, st.rel, st.excludes)
		}
		dir, err := r.filesDir(st.part)
		if err != nil {
			return err
		}
		dst := r.tmpDir
		if st.rel != "" {
			dst = filepath.Join(r.tmpDir, st.rel)
		}
		return r.writeTree(ctx, dir, dst, st.rel, st.excludes, st.expect)
	}
	return fmt.Errorf("BUG: plan step %v", st.kind)
}

// filesDir is where the files of part are read: nil is the root
// filesystem of normal mode.
func (r *runner) filesDir(part *backupset.Partition) (string, error) {
	if part == nil {
		return r.src.rootDir, nil
	}
	return r.partitionDir(part)
}

// metaWriter writes the layout file suffix of the source disk.
func (r *runner) metaWriter(suffix string) (func(io.Writer) error, error) {
	s := r.src
	switch suffix {
	case backupset.SuffixSfdisk:
		return func(w io.Writer) error { return disklayout.WriteSfdisk(w, s.disk, s.devName) }, nil
	case backupset.SuffixMBR:
		return func(w io.Writer) error { return copyRange(context.Background(), w, s.path, 0, 512, nil) }, nil
	case backupset.SuffixBlkid:
		return func(w io.Writer) error { return WriteBlkid(w, s.disk, s.partName) }, nil
	case backupset.SuffixParted:
		return func(w io.Writer) error { return WriteParted(w, s.disk, s.devName, s.transport, s.model) }, nil
	case backupset.SuffixFdisk:
		return func(w io.Writer) error { return WriteFdisk(w, s.disk, s.devName, s.model, s.partName) }, nil
	}
	return nil, fmt.Errorf("BUG: no writer for the layout file %q", suffix)
}

// writeMeta writes a small metadata file and, for the boot files of
// normal mode, hardlinks it to the previous set's copy when equal
// (raspiBackup's DEFAULT_LINK_BOOTPARTITIONFILES).
func (r *runner) writeMeta(ctx context.Context, rel string, write func(io.Writer) error, link bool) error {
	f, err := r.stream(ctx, rel, backupset.CompressNone, false, false, write)
	if err != nil {
		return err
	}
	if link {
		r.linkToPrevious(f)
	}
	return nil
}

// linkToPrevious replaces the file just written by a hardlink to the same
// file of the previous set when the previous manifest says it is equal.
// Sets without a manifest (raspiBackup's) are not linked: we would have to
// read their files to compare.
func (r *runner) linkToPrevious(f backupset.File) {
	if r.opts.CopyBootFiles || r.prev == nil || r.prev.manifest == nil || r.local == "" {
		return // hardlinks need a local folder
	}
	for _, pf := range r.prev.manifest.Files {
		if pf.Path != f.Path || pf.SHA256 != f.SHA256 || pf.Size != f.Size {
			continue
		}
		old := filepath.Join(r.prev.dir, filepath.FromSlash(f.Path))
		if fi, err := os.Stat(old); err != nil || fi.Size() != f.Size {
			return
		}
		dst := filepath.Join(r.tmpDir, filepath.FromSlash(f.Path))
		tmp := dst + ".link"
		if err := os.Link(old, tmp); err != nil {
			r.log.Debug("hardlink to previous set", "file", f.Path, "err", err)
			return
		}
		if err := os.Rename(tmp, dst); err != nil {
			os.Remove(tmp)
			return
		}
		r.log.Info("unchanged since the previous set; hardlinked", "file", f.Path)
		return
	}
}

// copyRange copies [start, start+size) of the file or device at path.
func copyRange(ctx context.Context, w io.Writer, path string, start, size int64, rep progress.Reporter) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 4<<20)
	for off := int64(0); off < size; {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := f.ReadAt(buf[:min(int64(len(buf)), size-off)], start+off)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
			off += int64(n)
			if rep != nil {
				rep.Add(int64(n))
			}
		}
		if err == io.EOF && off < size {
			return fmt.Errorf("read %s: %d bytes short at %d", path, size-off, start+off)
		}
		if err != nil && err != io.EOF {
			return fmt.Errorf("read %s: %w", path, err)
		}
	}
	return nil
}

// lineWith returns the first line of s holding one of the phrases.
func lineWith(s string, phrases ...string) string {
	for _, l := range strings.Split(s, "\n") {
		for _, p := range phrases {
			if strings.Contains(l, p) {
				return strings.TrimSpace(l)
			}
		}
	}
	return oneLine(s)
}

// oneLine joins a tool's stderr into one line for an error message (the
// CLI promises one line on failure), keeping its first 400 bytes.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " | ")), " ")
	if len(s) > 400 {
		s = s[:400] + "..."
	}
	return s
}
