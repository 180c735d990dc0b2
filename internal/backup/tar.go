package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
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
// (tarToFile), a zstd one too when the zstd program is there
// (zstdForTar), any other, or any on a server, through a pipe and
// backupctl (the compressor, the upload).
func (r *runner) writeTar(ctx context.Context, rel, dir string, excludes []string, estimate int64) error {
	r.rep.Phase(rel, estimate)
	if r.local != "" && r.opts.Encrypt == nil {
		switch r.comp {
		case backupset.CompressNone, "":
			return r.tarToFile(ctx, rel, dir, excludes, nil)
		case backupset.CompressZstd:
			if z, ok := zstdForTar(); ok {
				return r.tarToFile(ctx, rel, dir, excludes, z)
			}
		}
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

// tarCmd is GNU tar archiving dir to its standard output; extra are
// options put before TarArgs'.
func (r *runner) tarCmd(ctx context.Context, dir string, excludes []string, extra ...string) (*exec.Cmd, *blockdev.TailBuffer) {
	args := slices.Concat(extra, TarArgs(dir, excludes)) // never into the caller's extra
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

// tarToFile writes the archive rel of dir, uncompressed or (compressor
// not nil) through the compressor GNU tar runs itself. GNU tar's (or the
// compressor's) standard output is the set's file itself, so the archive
// goes to disk without a pipe and a copy through backupctl: GNU tar
// writes 10 KiB records, and through a pipe each cost two more system
// calls, a wakeup and a copy. The file is read back from the disk right
// behind those writes (streamproof.go): the manifest's checksum is of the
// bytes on the disk, and the content check (tar structure, and for a
// compressed archive its decompression) runs on them.
func (r *runner) tarToFile(ctx context.Context, rel, dir string, excludes []string, compressor []string) error {
	out, err := r.create(ctx, rel, 0o600, false, nil, followGrowth)
	if err != nil {
		return err
	}
	if out.f == nil || out.follow == nil {
		out.Abort()
		return fmt.Errorf("BUG: tar into %s, which is no local file", rel)
	}
	cmd, stderr := r.tarCmd(ctx, dir, excludes, compressor...)
	cmd.Stdout = out.f
	cp := &checkpoints{tail: stderr, add: r.rep.Add}
	if compressor != nil {
		// What is read back is compressed: GNU tar's checkpoints count
		// the archive's own bytes for the progress instead.
		cmd.Stderr = cp
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		out.Abort()
		return fmt.Errorf("start tar: %w", err)
	}
	waitErr := cmd.Wait()
	cp.flush()
	f, err := r.finishOut(out, r.tarExit(ctx, waitErr, stderr))
	if err != nil {
		return err
	}
	r.log.Info("tar finished", "file", rel, "bytes", f.Size, "duration", time.Since(start).Round(time.Millisecond))
	return nil
}

// zstdForTar returns GNU tar's options to compress its archive with the
// zstd program, when it is installed: level 3 (zstd's default, and what
// raspiBackup's `tar -I zstd` writes), one worker per core, or two on a
// machine with less than 1 GiB of memory (on four cores zstd -3 holds
// about 90 MB, on two about 60 MB).
//
// Why the program and not the Go encoder backupctl has (compress, used
// where zstd is not installed and for sets going to a server or
// encrypted): klauspost's stream encoder finds matches for one block
// after the other on one core, and its parallel modes hold several
// windows per job (125-270 MB measured); through backupctl the archive
// also costs a pipe and a copy. On the bench fixture (426 MB archive,
// 2 cores) the Go path took 3.1-3.5 s where `tar -I 'zstd -T0'` took
// 2.3-2.6 s (docs/BENCH.md).
//
// The program is tried once on empty input first: a zstd too old for
// -T (before 1.1.3) or one that does not run leaves the Go encoder.
func zstdForTar() ([]string, bool) {
	threads := "-T0"
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) == nil && uint64(si.Totalram)*uint64(si.Unit) < 1<<30 {
		threads = "-T2"
	}
	compressor := []string{"zstd", "-3", "-q", threads}
	path, err := exec.LookPath(compressor[0])
	if err != nil {
		return nil, false
	}
	if err := exec.Command(path, append(compressor[1:], "-c")...).Run(); err != nil {
		return nil, false
	}
	return []string{"--use-compress-program=" + strings.Join(compressor, " "),
		fmt.Sprintf("--checkpoint=%d", checkpointRecords), "--checkpoint-action=echo=" + checkpointMark}, true
}

// GNU tar reports a checkpoint every checkpointRecords records of 10 KiB
// (its default blocking factor of 20 × 512) it has written, as a line
// "tar: <checkpointMark>" on its standard error.
const (
	checkpointRecords = 1024
	checkpointBytes   = checkpointRecords * 20 * 512
	checkpointMark    = "pibackup-checkpoint"
)

// checkpoints is GNU tar's standard error: each checkpoint line adds
// checkpointBytes to the progress, every other line goes to tail (the
// message an error carries).
type checkpoints struct {
	tail    *blockdev.TailBuffer
	add     func(int64)
	partial []byte
}

func (c *checkpoints) Write(p []byte) (int, error) {
	c.partial = append(c.partial, p...)
	for {
		i := bytes.IndexByte(c.partial, '\n')
		if i < 0 {
			break
		}
		line := c.partial[:i+1]
		if bytes.HasSuffix(bytes.TrimSpace(line), []byte(checkpointMark)) {
			c.add(checkpointBytes)
		} else {
			c.tail.Write(line)
		}
		c.partial = c.partial[i+1:]
	}
	if len(c.partial) > 4096 { // a line without an end: keep it as it is
		c.flush()
	}
	return len(p), nil
}

// flush passes on what is left of a line without an end.
func (c *checkpoints) flush() {
	c.tail.Write(c.partial)
	c.partial = c.partial[:0]
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
