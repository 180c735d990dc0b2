package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pibackup/pibackup/internal/backup"
	"github.com/pibackup/pibackup/internal/payload"
	"github.com/pibackup/pibackup/internal/restore"
	"github.com/pibackup/pibackup/internal/verify"
)

// TestExitCode: the one switch picks the code from the sentinels an
// error wraps, however deep, and the order decides when it wraps several.
func TestExitCode(t *testing.T) {
	busy := fmt.Errorf("restore: plan: %w", restore.ErrTargetBusy)
	for _, tc := range []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, exitOK},
		{"plain", errors.New("disk on fire"), exitFailure},
		{"flag", withCode(exitUsage, errors.New("--size: bad size")), exitUsage},
		{"preflight mark", preflight(errors.New("status: /x is not a folder")), exitPreflight},
		{"backup preflight", fmt.Errorf("run: %w: no space", backup.ErrPreflight), exitPreflight},
		{"busy target met while planning", preflight(busy), exitLocked},
		{"host locked", fmt.Errorf("x: %w", backup.ErrLocked), exitLocked},
		{"verify", fmt.Errorf("s: %w", verify.ErrFailed), exitVerify},
		{"marked verify keeps its text", markAs(verify.ErrFailed, errors.New("verify: 1 of 2 set(s) failed")), exitVerify},
		{"cancel while planning", preflight(fmt.Errorf("plan: %w", context.Canceled)), exitCancelled},
	} {
		if got := exitCode(tc.err); got != tc.want {
			t.Errorf("%s: exitCode(%v) = %d; want %d", tc.name, tc.err, got, tc.want)
		}
	}
	if got := markAs(verify.ErrFailed, errors.New("text")).Error(); got != "text" {
		t.Errorf("markAs changed the message to %q", got)
	}
}

// TestCommandLineErrors: cobra's errors and the commands' argument checks
// (all found before any command runs) exit 2 without their English text
// being read; a command's own error does not.
func TestCommandLineErrors(t *testing.T) {
	ctx := context.Background()
	for _, args := range [][]string{
		{"nosuchcommand"},
		{"list", "--nosuchflag", "x"},
		{"list"},
		{"list", "a", "b"},
		{"restore-test", "--max-space", "lots", "x"},
		// An argument check whose text no English pattern knew: it
		// exited 1 while the messages were matched.
		{"schedule", "remove", "--", "-t", "tar"},
	} {
		if code, _, errOut := cli(ctx, args...); code != exitUsage {
			t.Errorf("%q: exit %d; want %d\n%s", args, code, exitUsage, errOut)
		}
	}
	missing := filepath.Join(t.TempDir(), "requires nothing")
	if code, _, errOut := cli(ctx, "list", missing); code != exitPreflight {
		t.Errorf("list of a missing folder: exit %d; want %d\n%s", code, exitPreflight, errOut)
	}
}

// TestFlagHint: the engine's error says what is wrong; the CLI's line
// adds the flag that fixes it.
func TestFlagHint(t *testing.T) {
	err := fmt.Errorf("restore: set x: %w", payload.ErrNoKey)
	if strings.Contains(err.Error(), "--") {
		t.Fatalf("engine error names a flag: %v", err)
	}
	if h := flagHint(err); !strings.Contains(h, "--age-identity") {
		t.Errorf("flagHint(%v) = %q; want --age-identity", err, h)
	}
	if h := flagHint(errors.New("disk on fire")); h != "" {
		t.Errorf("flagHint of an unknown error = %q", h)
	}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("x.img does not exist and %w to create: %w", restore.ErrNoSize, restore.ErrTarget), "--size"},
		{fmt.Errorf("%w: %w (no /etc/hostname on the source root)", backup.ErrPreflight, backup.ErrNoHostName), "--hostname"},
		{fmt.Errorf("backup: %w", &backup.OptionError{Options: []string{"BootTar", "Type"}, Why: "x"}), "do not go together: --boot-tar, -t"},
	} {
		if h := flagHint(tc.err); !strings.Contains(h, tc.want) {
			t.Errorf("flagHint(%v) = %q; want %s", tc.err, h, tc.want)
		}
	}
}

// TestBackupOptionConflicts: options that do not go together are refused
// before anything is written, with exit 3; the engine's reason names no
// flag, the CLI's hint names the flags.
func TestBackupOptionConflicts(t *testing.T) {
	d := fixture(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-t", "dd", "--boot-tar"}, "a dd image holds the boot partition; these options do not go together: --boot-tar, -t"},
		{[]string{"-t", "tgz", "-P", "*", "--boot-tar"}, "do not go together: --boot-tar, -P"},
		{[]string{"-t", "ddz", "--exclude", "/var/cache/*"}, "excludes do not apply to dd images; these options do not go together: --exclude, -t"},
		{[]string{"-t", "tar", "--used-partitions-only"}, "do not go together: --used-partitions-only, -t"},
	} {
		backups := t.TempDir()
		code, _, errOut := cli(context.Background(), append(append([]string{"backup", "--source-disk", d.Path}, tc.args...), backups)...)
		if code != exitPreflight || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, want %d and %q:\n%s", tc.args, code, exitPreflight, tc.want, errOut)
		}
		if ents, _ := os.ReadDir(backups); len(ents) != 0 {
			t.Errorf("%q: a refused backup wrote %d entries", tc.args, len(ents))
		}
	}
}
