package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/blockdev"
	"github.com/pibackup/pibackup/internal/progress"
)

// A tar, tgz or tar.zst set in normal mode holds the files of the root
// filesystem in one GNU tar archive, <name>.tar (.tgz, .tar.zst), next to
// the boot files (normal.go); in -P mode each partition is an archive of
// its own (partmode.go).

// planRootTar plans the archive of the root filesystem.
func planRootTar(p *Plan, in planInput) {
	rel := in.name + in.ext
	p.Items = append(p.Items, PlanItem{File: rel, From: "files of the root filesystem " + rootDesc(in.src), Estimate: in.rootUsed,
		step: step{kind: stepTar, rel: rel, excludes: in.rootExcludes, expect: in.rootUsed}})
}

// writeTar archives the filesystem at dir with GNU tar into rel: an
// uncompressed archive in a local folder straight from tar into the file
// (tarToFile), a compressed one, or any on a server, through a pipe and
// backupctl (the compressor, the upload).
func (r *runner) writeTar(ctx context.Context, rel, dir string, excludes []string, estimate int64) error {
	r.rep.Phase(rel, estimate)
	if (r.comp == backupset.CompressNone || r.comp == "") && r.local != "" && r.opts.Encrypt == nil {
		return r.tarToFile(ctx, rel, dir, excludes)
	}
	start := time.Now()
	f, err := r.streamTo(ctx, rel, r.comp, false, func(w io.Writer) error {
		return r.runTar(ctx, dir, excludes, w)
	})
	if err == nil {
		r.log.Info("tar finished", "file", rel, "bytes", f.Size, "duration", time.Since(start).Round(time.Millisecond))
	}
	return err
}

// runTar streams GNU tar's archive of dir into w.
func (r *runner) runTar(ctx context.Context, dir string, excludes []string, w io.Writer) error {
	cmd, stderr := r.tarCmd(ctx, dir, excludes)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	growPipe(stdout)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start tar: %w", err)
	}
	_, copyErr := io.CopyBuffer(w, progress.Reader{R: stdout, Rep: r.rep}, make([]byte, 1<<20))
	if copyErr != nil {
		cmd.Process.Kill()
	}
	waitErr := cmd.Wait()
	if copyErr != nil {
		return copyErr
	}
	return r.tarExit(ctx, waitErr, stderr)
}

// fatTar archives the files of the FAT partition part, read from the
// source disk with go-diskfs (it is not mounted), into rel.
func (r *runner) fatTar(ctx context.Context, rel string, part *backupset.Partition, comp backupset.Compression, excludes []string) (backupset.File, error) {
	fsys, closeFAT, err := openFAT(r.src.path, part)
	if err != nil {
		return backupset.File{}, err
	}
	defer closeFAT()
	var ex func(string) bool
	if len(excludes) > 0 {
		ex = excluder(excludes)
	}
	return r.streamTo(ctx, rel, comp, false, func(w io.Writer) error {
		return writeFATTar(ctx, fsys, w, r.rep, ex)
	})
}

// tarCmd is GNU tar archiving dir to its standard output.
func (r *runner) tarCmd(ctx context.Context, dir string, excludes []string) (*exec.Cmd, *blockdev.TailBuffer) {
	args := TarArgs(dir, excludes)
	cmd := exec.CommandContext(ctx, "tar", args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.SysProcAttr = childAttr()
	stderr := &blockdev.TailBuffer{Max: 4096}
	cmd.Stderr = stderr
	r.log.Debug("exec", "cmd", "tar "+strings.Join(args, " "))
	return cmd, stderr
}

// tarExit turns how tar ended into the error of the archive's item.
func (r *runner) tarExit(ctx context.Context, waitErr error, stderr *blockdev.TailBuffer) error {
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case waitErr == nil:
		return nil
	}
	var ee *exec.ExitError
	// GNU tar exits 1 when a file changed while it was read: expected on
	// a running system, so a warning, not a failure.
	if errors.As(waitErr, &ee) && ee.ExitCode() == 1 && r.src.running {
		note := "tar: some files changed while they were read: " + strings.TrimSpace(stderr.String())
		r.log.Warn(note)
		r.man.Notes = append(r.man.Notes, note)
		return nil
	}
	msg := strings.TrimSpace(stderr.String())
	if strings.Contains(msg, "No space left on device") || strings.Contains(msg, "Disk quota exceeded") {
		return fmt.Errorf("%w: %s", ErrNoSpace, lineWith(msg, "No space left on device", "Disk quota exceeded"))
	}
	return fmt.Errorf("tar: %w: %s", waitErr, oneLine(msg))
}

// tarToFile writes the uncompressed archive rel of dir. GNU tar's
// standard output is the set's file itself, so the archive goes to disk
// without a pipe and a copy through backupctl: GNU tar writes 10 KiB
// records, and through a pipe each cost two more system calls, a wakeup
// and a copy. The file is read back from the disk right behind tar's
// writes (streamproof.go): the manifest's checksum is of the bytes on
// the disk, and the tar check runs on them.
func (r *runner) tarToFile(ctx context.Context, rel, dir string, excludes []string) error {
	out, err := r.create(ctx, rel, 0o600, false, nil, followGrowth)
	if err != nil {
		return err
	}
	if out.f == nil || out.follow == nil {
		out.Abort()
		return fmt.Errorf("BUG: tar into %s, which is no local file", rel)
	}
	cmd, stderr := r.tarCmd(ctx, dir, excludes)
	cmd.Stdout = out.f
	start := time.Now()
	if err := cmd.Start(); err != nil {
		out.Abort()
		return fmt.Errorf("start tar: %w", err)
	}
	f, err := r.finishOut(out, r.tarExit(ctx, cmd.Wait(), stderr))
	if err != nil {
		return err
	}
	r.log.Info("tar finished", "file", rel, "bytes", f.Size, "duration", time.Since(start).Round(time.Millisecond))
	return nil
}

// growPipe makes the pipe r reads from hold 1 MiB instead of 64 KiB, so
// the writer is not stopped every 64 KiB while its reader compresses, and
// the reader gets more per read. Only an optimisation: failures are
// ignored.
func growPipe(r io.Reader) {
	f, ok := r.(*os.File)
	if !ok {
		return
	}
	if c, err := f.SyscallConn(); err == nil {
		c.Control(func(fd uintptr) { unix.FcntlInt(fd, unix.F_SETPIPE_SZ, 1<<20) })
	}
}
