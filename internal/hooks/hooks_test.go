package hooks

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// script writes an executable shell script. The hooks themselves are real
// programs (run by exec, not by a shell string); only their content is sh.
func script(t *testing.T, path, body string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), mode); err != nil {
		t.Fatal(err)
	}
}

func TestOrderEnvAndSkips(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(t.TempDir(), "out")
	rec := `echo "$(basename "$0") $BACKUP_EVENT $BACKUP_TARGETDIR $BACKUP_TYPE rc=${BACKUP_RC:-unset} $LOG_FILE $*" >> ` + out
	ev := filepath.Join(dir, "post-backup")
	script(t, filepath.Join(ev, "20-second"), rec, 0o755)
	script(t, filepath.Join(ev, "10-first"), rec, 0o755)
	script(t, filepath.Join(ev, "30-not-executable"), rec, 0o644)
	script(t, filepath.Join(ev, ".hidden"), rec, 0o755)
	script(t, filepath.Join(ev, "40-backup~"), rec, 0o755)
	script(t, filepath.Join(ev, "50-x.dpkg-old"), rec, 0o755)
	cfg := filepath.Join(t.TempDir(), "from-config")
	script(t, cfg, rec, 0o755)

	r := New(Options{Dir: dir, Commands: map[Event][][]string{
		PostBackup: {{cfg, "arg with space", "$HOME"}},
	}})
	rc := 0
	err := r.Run(context.Background(), PostBackup, Vars{
		TargetDir: "/backup/pi/pi@debian12-rsync-backup-20240101-030000", Type: "rsync",
		RC: &rc, LogFile: "/backup/x/backupctl.log",
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSpace(string(b)), "\n")
	common := " post-backup /backup/pi/pi@debian12-rsync-backup-20240101-030000 rsync rc=0 /backup/x/backupctl.log "
	want := []string{
		"10-first" + common,
		"20-second" + common,
		// argv reaches the program verbatim: no word splitting, no $HOME expansion.
		"from-config" + common + "arg with space $HOME",
	}
	if !slices.Equal(got, want) {
		t.Errorf("ran:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestPreHookFailureAborts(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(t.TempDir(), "ran")
	script(t, filepath.Join(dir, "pre-backup", "10-fail"), "echo 'mount /mnt/nas missing' >&2; exit 3", 0o755)
	script(t, filepath.Join(dir, "pre-backup", "20-after"), "touch "+marker, 0o755)
	r := New(Options{Dir: dir})
	err := r.Run(context.Background(), PreBackup, Vars{})
	if !errors.Is(err, ErrHookFailed) {
		t.Fatalf("Run = %v, want ErrHookFailed", err)
	}
	for _, want := range []string{"pre-backup", "10-fail", "exit status 3", "mount /mnt/nas missing"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("a pre hook ran after an earlier one failed")
	}
}

func TestPostHookFailureGoesOn(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(t.TempDir(), "ran")
	script(t, filepath.Join(dir, "post-backup", "10-fail"), "exit 1", 0o755)
	script(t, filepath.Join(dir, "post-backup", "20-after"), "touch "+marker, 0o755)
	err := New(Options{Dir: dir}).Run(context.Background(), PostBackup, Vars{})
	if !errors.Is(err, ErrHookFailed) {
		t.Errorf("Run = %v, want the failure reported", err)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Error("post hooks stopped at the first failure")
	}
}

func TestTimeoutKillsGroup(t *testing.T) {
	dir := t.TempDir()
	// The child sleep must die with the hook, or it would hold the pipe
	// open and Run would hang until WaitDelay.
	script(t, filepath.Join(dir, "ready", "10-hang"), "sleep 30 & wait", 0o755)
	r := New(Options{Dir: dir, Timeout: 200 * time.Millisecond})
	start := time.Now()
	err := r.Run(context.Background(), Ready, Vars{})
	if !errors.Is(err, ErrHookFailed) || !strings.Contains(err.Error(), "timed out") {
		t.Errorf("Run = %v, want a timeout", err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("Run took %s after a 200ms timeout", d)
	}
}

func TestMissingDirAndEnviron(t *testing.T) {
	r := New(Options{Dir: filepath.Join(t.TempDir(), "nope")})
	if err := r.Run(context.Background(), PreRestore, Vars{}); err != nil {
		t.Errorf("missing hook folder: %v", err)
	}
	got := Vars{Type: "dd", TargetFile: "/b/x.img", RestoreDev: "/dev/sda"}.Environ(PreRestore)
	want := []string{"BACKUP_EVENT=pre-restore", "BACKUP_TARGETFILE=/b/x.img", "BACKUP_TYPE=dd", "RESTORE_DEVICE=/dev/sda"}
	if !slices.Equal(got, want) {
		t.Errorf("Environ = %v, want %v", got, want)
	}
}

func TestAborts(t *testing.T) {
	for _, e := range Events {
		want := e == PreBackup || e == Ready || e == PreRestore
		if e.Aborts() != want {
			t.Errorf("%s.Aborts() = %v", e, e.Aborts())
		}
	}
}
