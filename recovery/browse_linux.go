package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/extract"
	"github.com/pibackup/pibackup/internal/i18n"
	"github.com/pibackup/pibackup/internal/progress"
	"github.com/pibackup/pibackup/internal/setfs"
	"github.com/pibackup/pibackup/internal/source"
	"github.com/pibackup/pibackup/internal/tui/model"
)

// Errors of the files flow the user reads.
var (
	errBrowseRemote     = i18n.Err(i18n.UIErrBrowseRemote)
	errBrowseCompressed = i18n.Err(i18n.UIErrBrowseZipped)
	errDestBusy         = i18n.Err(i18n.UIErrDestBusy)
)

// browser serves "Get files back": a set is mounted read-only with
// internal/setfs (the FUSE view backupctl mount shows) under the run
// dir, and its root is listed and copied from there.
//
// setfs's cache (tar indexes; decompressed archives and images) is in
// the run dir too, which is RAM. A compressed set is not decompressed
// there: a root filesystem's full size does not fit in a 512 MB Pi's
// memory. A compressed tar (tgz, tar.zst...) is browsed as a tarTree
// instead, read through twice and never held; a ddz is refused. Putting the cache on the
// source instead is not possible without writing to the backup disk,
// which the recovery mounts read-only on purpose.
type browser struct {
	dir string // mount points and cache go below it
	log *slog.Logger
	seq atomic.Uint64
}

var _ model.Browser = (*browser)(nil)

func newBrowser(runDir string, log *slog.Logger) *browser {
	return &browser{dir: filepath.Join(runDir, "browse"), log: log}
}

// Browse implements model.Browser.
func (b *browser) Browse(ctx context.Context, r model.Request, rep progress.Reporter) (model.Tree, error) {
	local := r.Source.LocalDir()
	if local == "" {
		return nil, errBrowseRemote
	}
	setDir := filepath.Join(local, filepath.FromSlash(r.Set.Dir))
	if payload, ok := compressedTar(r.Set, setDir); ok {
		b.log.Info("listing compressed tar for browsing", "set", r.Set.String(), "payload", payload)
		return listTar(ctx, setDir, rep, b.log)
	}
	mnt := filepath.Join(b.dir, fmt.Sprintf("set%d", b.seq.Add(1)))
	if err := os.MkdirAll(mnt, 0o700); err != nil {
		return nil, err
	}
	srv, err := setfs.Mount(ctx, setDir, mnt, setfs.Options{
		CacheDir: filepath.Join(b.dir, "cache"), NoDecompress: true, Log: b.log,
	})
	if err != nil {
		os.Remove(mnt)
		if errors.Is(err, setfs.ErrCompressed) {
			b.log.Info("browse refused", "set", r.Set.String(), "err", err)
			return nil, errBrowseCompressed
		}
		return nil, err
	}
	b.log.Info("set mounted for browsing", "set", r.Set.String(), "at", mnt)
	return &setTree{srv: srv, mnt: mnt, root: filepath.Join(mnt, "root"), log: b.log}, nil
}

// compressedTar reports whether the set in setDir is a tar set whose
// root payload is compressed, and returns that payload.
func compressedTar(set backupset.Set, setDir string) (string, bool) {
	if set.Name.Type != backupset.TypeTar && set.Name.Type != backupset.TypeTGZ {
		return "", false
	}
	payload, err := extract.TarPayload(setDir)
	if err != nil || backupset.CompressionOf(payload) == backupset.CompressNone {
		return "", false
	}
	return payload, true
}

// setTree is a set's root as setfs shows it.
type setTree struct {
	srv  *setfs.Server
	mnt  string
	root string // mnt/root
	log  *slog.Logger
}

// local turns p, absolute in the set's root, into a path below t.root;
// ".." cannot climb out.
func (t *setTree) local(p string) string {
	return filepath.Join(t.root, filepath.FromSlash(path.Clean("/"+p)))
}

// ReadDir implements model.Tree: folders first, then by name; a symlink
// is shown as itself, never followed.
func (t *setTree) ReadDir(dir string) ([]model.FileEntry, error) {
	des, err := os.ReadDir(t.local(dir))
	if err != nil {
		return nil, err
	}
	out := make([]model.FileEntry, 0, len(des))
	for _, d := range des {
		e := model.FileEntry{Name: d.Name(), Dir: d.IsDir(), Symlink: d.Type()&fs.ModeSymlink != 0}
		if fi, err := d.Info(); err == nil && fi.Mode().IsRegular() {
			e.Size = fi.Size()
		}
		out = append(out, e)
	}
	slices.SortFunc(out, model.CompareEntries)
	return out, nil
}

// Copy implements model.Tree with rsync: everything onto a Linux
// filesystem, only what FAT keeps onto FAT (see copyArgs). The bytes of
// the regular files give the progress; what FAT cannot hold is counted
// beforehand, as rsync skips it without a word.
func (t *setTree) Copy(ctx context.Context, paths []string, dest string, rep progress.Reporter) (model.Copied, error) {
	rep = progress.OrNop(rep)
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return model.Copied{}, err
	}
	fat, err := isFAT(dest)
	if err != nil {
		return model.Copied{}, err
	}
	var srcs []string
	for _, p := range paths {
		srcs = append(srcs, t.root+"/."+path.Clean("/"+p))
	}
	total, special, err := count(srcs)
	if err != nil {
		return model.Copied{}, err
	}
	res := model.Copied{}
	if fat {
		res.Skipped = special
	}
	rep.Phase("copy", total)
	n, err := runRsync(ctx, copyArgs(fat, srcs, dest), rep, t.log)
	res.Bytes = n
	if err != nil {
		return res, err
	}
	t.log.Info("files copied", "paths", paths, "dest", dest, "bytes", n, "fat", fat, "skipped", res.Skipped)
	return res, nil
}

// Close implements model.Tree: unmounts the set.
func (t *setTree) Close() error {
	err := t.srv.Unmount()
	os.Remove(t.mnt)
	return err
}

// copyArgs are rsync's arguments to copy srcs (each ROOT/./PATH, so
// --relative keeps PATH) into dest. A Linux filesystem gets every
// attribute (owners as numbers: the recovery has no passwd to map
// names). FAT gets contents and times only: it has no owners, modes,
// links or device nodes (rsync skips those without -l/-D), and keeps
// times in 2-second steps, hence --modify-window=1.
func copyArgs(fat bool, srcs []string, dest string) []string {
	args := []string{"-aHAX", "--numeric-ids"}
	if fat {
		args = []string{"-rt", "--modify-window=1"}
	}
	args = append(args, "--relative", "--out-format=%i %l")
	return append(append(args, srcs...), strings.TrimSuffix(dest, "/")+"/")
}

// FAT's statfs magic numbers (linux/magic.h; exfat's is its own).
const (
	msdosMagic = 0x4d44
	exfatMagic = 0x2011bab0
)

func isFAT(dir string) (bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return false, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return st.Type == msdosMagic || st.Type == exfatMagic, nil
}

// count walks srcs (symlinks not followed) and returns the bytes of
// their regular files and how many entries are neither files nor
// folders (symlinks, device nodes, FIFOs, sockets).
func count(srcs []string) (bytes int64, special int, err error) {
	for _, s := range srcs {
		err := filepath.WalkDir(s, func(_ string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			switch {
			case d.Type().IsRegular():
				fi, err := d.Info()
				if err != nil {
					return err
				}
				bytes += fi.Size()
			case !d.IsDir():
				special++
			}
			return nil
		})
		if err != nil {
			return 0, 0, err
		}
	}
	return bytes, special, nil
}

// runRsync runs rsync with args and returns the bytes of the regular
// files it copied, reported to rep as each one is done. Cancelling ctx
// kills rsync's whole process group (its receiver is a child of its own).
func runRsync(ctx context.Context, args []string, rep progress.Reporter, log *slog.Logger) (int64, error) {
	cmd := exec.CommandContext(ctx, "rsync", args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// Should anything of rsync's outlive it holding its stderr, Wait
	// still returns.
	cmd.WaitDelay = 10 * time.Second
	var stderr strings.Builder
	cmd.Stderr = &limited{w: &stderr, n: 4096}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	log.Debug("exec", "cmd", "rsync "+strings.Join(args, " "))
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start rsync: %w", err)
	}
	n := feedItemized(out, rep)
	err = cmd.Wait()
	if ctx.Err() != nil {
		return n, fmt.Errorf("rsync: %w", ctx.Err())
	}
	if err != nil {
		return n, fmt.Errorf("rsync: %w: %s", err, strings.Join(strings.Fields(stderr.String()), " "))
	}
	return n, nil
}

// feedItemized reads rsync's "%i %l" lines (">f+++++++++ 1234") and
// reports each regular file's length.
func feedItemized(r io.Reader, rep progress.Reporter) int64 {
	var n int64
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		item, length, ok := strings.Cut(sc.Text(), " ")
		if !ok || len(item) < 2 || item[1] != 'f' {
			continue
		}
		if l, err := strconv.ParseInt(length, 10, 64); err == nil {
			n += l
			rep.Add(l)
		}
	}
	io.Copy(io.Discard, r)
	return n
}

// limited keeps the first n bytes written to it.
type limited struct {
	w io.Writer
	n int
}

func (l *limited) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(l.n, len(p))
		l.w.Write(p[:k])
		l.n -= k
	}
	return len(p), nil
}

// mountDest implements model.DestMounter: p mounted read-write (no
// setuid, devices or exec: it only receives files) on a fresh folder
// under the run dir.
func mountDest(runDir string, log *slog.Logger) model.DestMounter {
	var seq atomic.Uint64
	return func(ctx context.Context, p source.Partition) (string, func() error, error) {
		dir := filepath.Join(runDir, "dest", fmt.Sprintf("%s%d", p.Name, seq.Add(1)))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", nil, err
		}
		flags := uintptr(unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
		data := ""
		if p.FSType == "vfat" {
			// Linux names are UTF-8; vfat's default character set
			// (the kernel's FAT_DEFAULT_IOCHARSET) may not be, and
			// would refuse or mangle "café". exfat is UTF-8 already.
			data = "utf8"
		}
		if err := unix.Mount(p.Path, dir, p.FSType, flags, data); err != nil {
			os.Remove(dir)
			if errors.Is(err, unix.EBUSY) {
				return "", nil, fmt.Errorf("%w: mount %s: %w", errDestBusy, p.Path, err)
			}
			return "", nil, fmt.Errorf("mount %s (%s) read-write: %w", p.Path, p.FSType, err)
		}
		log.Info("destination mounted", "part", p.Path, "fstype", p.FSType, "at", dir)
		return dir, func() error {
			if err := unix.Unmount(dir, 0); err != nil {
				return fmt.Errorf("unmount %s: %w", dir, err)
			}
			return os.Remove(dir)
		}, nil
	}
}
