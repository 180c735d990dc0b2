package blockdev_test

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/pibackup/pibackup/internal/blockdev"
)

// TestRunnerErrors: a failing tool's error carries its command line, exit
// code and the end of its stderr; an exit code the caller accepts (as
// e2fsck's 1) is success with the warnings returned; a missing tool says
// so with exec.ErrNotFound.
func TestRunnerErrors(t *testing.T) {
	ctx := context.Background()
	var r blockdev.Runner
	script := "echo out; echo " + strings.Repeat("x", 9000) + " >&2; echo 'bad superblock' >&2; exit 3"
	_, err := r.Run(ctx, nil, "sh", []string{"-c", script})
	var te *blockdev.ToolError
	if !errors.As(err, &te) || te.Code != 3 || !strings.HasPrefix(te.Cmd, "sh -c ") || !strings.HasSuffix(te.Stderr, "bad superblock") {
		t.Fatalf("Run = %v; want a ToolError with code 3 and the end of stderr", err)
	}
	if len(te.Stderr) > 8<<10 {
		t.Errorf("stderr kept: %d bytes; want at most the last 8 KiB", len(te.Stderr))
	}
	out, warn, err := r.RunWarn(ctx, strings.NewReader("in\n"), "sh", []string{"-c", "cat; echo fixed >&2; exit 1"}, 1)
	if err != nil || string(out) != "in\n" || strings.TrimSpace(warn) != "fixed" {
		t.Errorf("RunWarn with exit 1 accepted = %q, %q, %v", out, warn, err)
	}
	if _, err := r.Run(ctx, nil, "no-such-tool-pibackup", nil); !errors.Is(err, exec.ErrNotFound) {
		t.Errorf("missing tool: %v; want exec.ErrNotFound", err)
	}
}
