package blockdev

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
)

// toolDirs are searched after $PATH: a minimal $PATH (sudo, the recovery
// image) often lacks /usr/sbin and /sbin, where mkfs and friends live.
var toolDirs = []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"}

// LookTool finds the program name on $PATH or in the sbin folders a
// minimal $PATH lacks.
func LookTool(name string) (string, error) {
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

// Runner executes the disk tools (mkfs, e2fsck, resize2fs, sfdisk, tar,
// rsync) and turns their failures into errors that carry the command
// line and the end of its stderr. The zero value logs nothing.
type Runner struct {
	Log *slog.Logger
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

// Run runs name with args, feeding stdin, and returns stdout. okCodes are
// exit codes besides 0 that mean success (e2fsck's 1: "errors fixed").
func (r Runner) Run(ctx context.Context, stdin io.Reader, name string, args []string, okCodes ...int) ([]byte, error) {
	out, _, err := r.RunWarn(ctx, stdin, name, args, okCodes...)
	return out, err
}

// RunWarn is Run that also returns the last 8 KiB of stderr of a tool
// that succeeded, for callers that act on its warnings.
func (r Runner) RunWarn(ctx context.Context, stdin io.Reader, name string, args []string, okCodes ...int) ([]byte, string, error) {
	log := r.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p, err := LookTool(name)
	if err != nil {
		return nil, "", err
	}
	cmd := exec.CommandContext(ctx, p, args...)
	cmd.Stdin = stdin
	var stdout bytes.Buffer
	stderr := &TailBuffer{Max: 8 << 10}
	cmd.Stdout = &stdout
	cmd.Stderr = stderr
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.WaitDelay = 10 * time.Second
	start := time.Now()
	err = cmd.Run()
	line := name + " " + strings.Join(args, " ")
	log.Debug("ran", "cmd", line, "took", time.Since(start).Round(time.Millisecond), "err", err)
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			for _, c := range okCodes {
				if ee.ExitCode() == c {
					log.Info("tool reported fixes", "cmd", line, "code", c, "stderr", stderr.String())
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

// TailBuffer keeps the last Max bytes written to it: enough of a tool's
// stderr to say why it failed, without holding a chatty tool's whole log.
type TailBuffer struct {
	Max int
	b   []byte
}

func (t *TailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > t.Max {
		t.b = t.b[len(t.b)-t.Max:]
	}
	return len(p), nil
}

func (t *TailBuffer) String() string { return string(t.b) }
