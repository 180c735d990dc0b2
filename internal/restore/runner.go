package restore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pibackup/pibackup/internal/blockdev"
	"github.com/pibackup/pibackup/internal/disklayout"
)

// toolDirs are searched after $PATH: a minimal $PATH (sudo, the recovery
// image) often lacks /usr/sbin and /sbin, where mkfs and friends live.
var toolDirs = []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"}

func lookTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range toolDirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found; install it (e2fsprogs, tar, rsync, mount): %w", name, exec.ErrNotFound)
}

// runner executes the tools the restore needs and turns their failures
// into errors that carry the command line and its stderr.
type runner struct {
	log *slog.Logger
}

// ToolError is a tool that exited with an error.
type ToolError struct {
	Cmd    string // the command line
	Code   int    // exit code, -1 if killed
	Stderr string // last lines of stderr
	Err    error
}

func (e *ToolError) Error() string {
	s := fmt.Sprintf("%s: %v", e.Cmd, e.Err)
	if e.Stderr != "" {
		s += ": " + e.Stderr
	}
	return s
}

func (e *ToolError) Unwrap() error { return e.Err }

// run runs name with args, feeding stdin, and returns stdout. okCodes are
// exit codes besides 0 that mean success (e2fsck's 1: "errors fixed").
func (r runner) run(ctx context.Context, stdin io.Reader, name string, args []string, okCodes ...int) ([]byte, error) {
	out, _, err := r.runWarn(ctx, stdin, name, args, okCodes...)
	return out, err
}

// runWarn is run that also returns the last 8 KiB of stderr of a tool
// that succeeded, for callers that act on its warnings.
func (r runner) runWarn(ctx context.Context, stdin io.Reader, name string, args []string, okCodes ...int) ([]byte, string, error) {
	p, err := lookTool(name)
	if err != nil {
		return nil, "", err
	}
	cmd := exec.CommandContext(ctx, p, args...)
	cmd.Stdin = stdin
	var stdout bytes.Buffer
	stderr := &tailBuffer{max: 8 << 10}
	cmd.Stdout = &stdout
	cmd.Stderr = stderr
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.WaitDelay = 10 * time.Second
	start := time.Now()
	err = cmd.Run()
	line := name + " " + strings.Join(args, " ")
	r.log.Debug("ran", "cmd", line, "took", time.Since(start).Round(time.Millisecond), "err", err)
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			for _, c := range okCodes {
				if ee.ExitCode() == c {
					r.log.Info("tool reported fixes", "cmd", line, "code", c, "stderr", stderr.String())
					return stdout.Bytes(), stderr.String(), nil
				}
			}
			if ctx.Err() != nil {
				return nil, "", fmt.Errorf("%s: %w", line, ctx.Err())
			}
			return nil, "", &ToolError{Cmd: line, Code: ee.ExitCode(), Stderr: strings.TrimSpace(stderr.String()), Err: err}
		}
		return nil, "", &ToolError{Cmd: line, Code: -1, Err: err}
	}
	return stdout.Bytes(), stderr.String(), nil
}

// RunTool runs a tool (found on $PATH or in the sbin folders a minimal
// $PATH lacks) as a restore does: its stdout is returned, a failure is a
// *ToolError with the command line and the end of its stderr.
func RunTool(ctx context.Context, stdin io.Reader, name string, args ...string) ([]byte, error) {
	return runner{log: slog.New(slog.DiscardHandler)}.run(ctx, stdin, name, args)
}

// tailBuffer keeps the last max bytes written to it: enough of a tool's
// stderr to say why it failed, without holding a chatty tool's whole log.
type tailBuffer struct {
	b   []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.b) }

// MountExt4 mounts the ext4 on dev (nodev, nosuid) at a new temporary
// folder and returns it and a function that unmounts and removes it.
func MountExt4(dev string, readOnly bool) (string, func() error, error) {
	return mountExt4(dev, readOnly)
}

// mountExt4 mounts dev at a new temporary directory and returns it and a
// function that unmounts and removes it.
func mountExt4(dev string, readOnly bool) (string, func() error, error) {
	dir, err := os.MkdirTemp("", "pibackup-restore-")
	if err != nil {
		return "", nil, fmt.Errorf("mount %s: %w", dev, err)
	}
	// nodev, nosuid: device nodes and setuid files of the restored tree
	// are created but never usable through our mount (an archive's
	// etc/fstab as a block device must not reach a host disk).
	var flags uintptr = unix.MS_NOATIME | unix.MS_NODEV | unix.MS_NOSUID
	if readOnly {
		flags |= unix.MS_RDONLY
	}
	if err := unix.Mount(dev, dir, "ext4", flags, ""); err != nil {
		os.Remove(dir)
		return "", nil, fmt.Errorf("mount %s on %s: %w", dev, dir, err)
	}
	unmount := func() error {
		var err error
		// A just-finished tar or rsync may leave the filesystem busy for
		// a moment (its children exiting); retry briefly.
		for i := 0; i < 50; i++ {
			if err = unix.Unmount(dir, 0); err == nil || !errors.Is(err, unix.EBUSY) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			return fmt.Errorf("unmount %s: %w", dir, err)
		}
		return os.Remove(dir)
	}
	return dir, unmount, nil
}

// MountImageRoot mounts the first ext2/3/4 filesystem of the raw disk
// image img read-only (a loop device over its partition) and returns the
// folder and a function that unmounts and detaches it. extract and diff
// read a dd set's root through it.
func MountImageRoot(ctx context.Context, img string) (string, func(), error) {
	d, err := disklayout.ReadFile(img)
	if err != nil {
		return "", nil, err
	}
	for _, p := range d.Partitions {
		if !strings.HasPrefix(p.FSType, "ext") {
			continue
		}
		a, err := blockdev.AttachPartition(ctx, img, 0, p.Start, p.Size, true)
		if err != nil {
			return "", nil, err
		}
		mnt, unmount, err := MountExt4(a.Path, true)
		if err != nil {
			a.Detach()
			return "", nil, err
		}
		return mnt, func() { unmount(); a.Detach() }, nil
	}
	return "", nil, errors.New("no ext2/3/4 root filesystem in the image")
}
