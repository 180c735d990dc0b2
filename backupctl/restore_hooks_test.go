package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// restoreHookEnv is a config whose hooks folder has pre-restore and
// post-restore scripts that record their environment, and whether the
// target existed when they ran, in out/<event>.env.
type restoreHookEnv struct {
	config string
	out    string
}

func newRestoreHookEnv(t *testing.T) *restoreHookEnv {
	t.Helper()
	e := &restoreHookEnv{out: t.TempDir()}
	dir := filepath.Join(t.TempDir(), "hooks.d")
	record := fmt.Sprintf(`{ env | grep -E '^(BACKUP_|RESTORE_)' | sort
if [ -e "$RESTORE_DEVICE" ]; then echo TARGET=exists; else echo TARGET=absent; fi; } > %s/$BACKUP_EVENT.env
`, e.out)
	writeScript(t, filepath.Join(dir, "pre-restore", "10-record"), record)
	writeScript(t, filepath.Join(dir, "post-restore", "10-record"), record)
	e.config = filepath.Join(t.TempDir(), "backupctl.conf")
	if err := os.WriteFile(e.config, []byte(fmt.Sprintf("hooks.dir = %q\n", dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

// env reads what the hook of event saw; nil if it did not run.
func (e *restoreHookEnv) env(t *testing.T, event string) map[string]string {
	t.Helper()
	return readHookEnv(t, e.out, event)
}

func (e *restoreHookEnv) reset(t *testing.T) {
	t.Helper()
	for _, ev := range []string{"pre-restore", "post-restore"} {
		if err := os.Remove(filepath.Join(e.out, ev+".env")); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
}

func (e *restoreHookEnv) want(t *testing.T, event string, want map[string]string) {
	t.Helper()
	got := e.env(t, event)
	if got == nil {
		t.Errorf("%s hook did not run", event)
		return
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s hook: %s=%q; want %q (env %v)", event, k, got[k], v, got)
		}
	}
}

// TestRestoreHooks runs the restore hooks of `backupctl restore` and
// `backupctl clone` around real restores onto image files: they see the
// set, the target, the type and, after the restore, its exit code; a
// failing pre-restore hook aborts before the target is created; after a
// restore that fails half-way the post-restore hooks still run and see
// the failure; a dry run runs none.
func TestRestoreHooks(t *testing.T) {
	d := fixture(t)
	ctx := context.Background()
	set := backupOK(t, t.TempDir(), "--source-disk", d.Path, "-t", "tgz")
	e := newRestoreHookEnv(t)
	work := t.TempDir()

	t.Run("restore", func(t *testing.T) {
		e.reset(t)
		img := filepath.Join(work, "ok.img")
		code, out, errOut := cli(ctx, "restore", "-f", e.config, set, "--to", img, "--size", "400M", "--yes")
		if code != 0 {
			t.Fatalf("restore = exit %d\n%s\n%s", code, out, errOut)
		}
		common := map[string]string{"BACKUP_TARGETDIR": set, "BACKUP_TYPE": "tgz", "BACKUP_HOSTNAME": "testpi", "RESTORE_DEVICE": img}
		e.want(t, "pre-restore", common)
		e.want(t, "pre-restore", map[string]string{"BACKUP_EVENT": "pre-restore", "TARGET": "absent"})
		if _, ok := e.env(t, "pre-restore")["BACKUP_RC"]; ok {
			t.Error("pre-restore hook sees BACKUP_RC before the outcome is known")
		}
		e.want(t, "post-restore", common)
		e.want(t, "post-restore", map[string]string{"BACKUP_EVENT": "post-restore", "BACKUP_RC": "0", "TARGET": "exists"})
	})

	t.Run("dry-run", func(t *testing.T) {
		e.reset(t)
		code, _, errOut := cli(ctx, "restore", "-f", e.config, "-F", set, "--to", filepath.Join(work, "dry.img"), "--size", "400M")
		if code != 0 {
			t.Fatalf("dry run = exit %d: %s", code, errOut)
		}
		if e.env(t, "pre-restore") != nil || e.env(t, "post-restore") != nil {
			t.Error("a dry run ran restore hooks")
		}
	})

	t.Run("pre-restore fails", func(t *testing.T) {
		e.reset(t)
		img := filepath.Join(work, "aborted.img")
		code, out, errOut := cli(ctx, "restore", "-f", e.config, "--hook-pre-restore", "sh -c 'echo card reader busy >&2; exit 7'",
			set, "--to", img, "--size", "400M", "--yes")
		t.Logf("exit %d: %s", code, strings.TrimSpace(errOut))
		if code != exitPreflight || !strings.Contains(errOut, "pre-restore hook failed; nothing was written") ||
			!strings.Contains(errOut, "card reader busy") || strings.Contains(out, "Restored") {
			t.Errorf("restore with a failing pre-restore hook = exit %d, %q; want %d naming the hook's output", code, errOut, exitPreflight)
		}
		if _, err := os.Stat(img); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("target after an aborted restore: %v; want it never created", err)
		}
		e.want(t, "pre-restore", map[string]string{"BACKUP_EVENT": "pre-restore"}) // the folder hook ran first
		if e.env(t, "post-restore") != nil {
			t.Error("post-restore ran after pre-restore aborted the restore")
		}
	})

	t.Run("restore fails", func(t *testing.T) {
		e.reset(t)
		// The payload's own bytes change and its size does not: the plan
		// accepts the set, the SHA-256 check while it is written fails.
		bad := filepath.Join(t.TempDir(), filepath.Base(set))
		if code, _, errOut := cli(ctx, "verify", set); code != 0 {
			t.Fatalf("verify the good set: %s", errOut)
		}
		copyTree(t, set, bad)
		payload := filepath.Join(bad, filepath.Base(set)+".tgz")
		fi, err := os.Stat(payload)
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(payload, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 1)
		off := fi.Size() / 2
		f.ReadAt(b, off)
		b[0] ^= 0x55
		f.WriteAt(b, off)
		f.Close()
		img := filepath.Join(work, "failed.img")
		code, _, errOut := cli(ctx, "restore", "-f", e.config, "--hook-post-restore", "sh -c 'echo cleanup failed >&2; exit 3'",
			bad, "--to", img, "--size", "400M", "--yes")
		t.Logf("exit %d: %s", code, strings.TrimSpace(errOut))
		if code != exitFailure {
			t.Errorf("restore of a damaged set = exit %d; want %d", code, exitFailure)
		}
		e.want(t, "pre-restore", map[string]string{"TARGET": "absent"})
		e.want(t, "post-restore", map[string]string{"BACKUP_RC": "1", "BACKUP_TARGETDIR": bad, "RESTORE_DEVICE": img})
		if !strings.Contains(errOut, "warning: restore:") || !strings.Contains(errOut, "cleanup failed") {
			t.Errorf("stderr does not report the failing post-restore hook: %q", errOut)
		}
	})

	t.Run("clone", func(t *testing.T) {
		e.reset(t)
		img := filepath.Join(work, "clone.img")
		code, out, errOut := cli(ctx, "clone", "-f", e.config, "--hook-pre-restore", "false", "--source-disk", d.Path, "--to", img, "--size", "400M", "--yes")
		if code != exitPreflight || !strings.Contains(errOut, "clone: a pre-restore hook failed; nothing was written") {
			t.Errorf("clone with a failing pre-restore hook = exit %d, %q; want %d", code, errOut, exitPreflight)
		}
		if _, err := os.Stat(img); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("target after an aborted clone: %v; want it never created", err)
		}
		e.reset(t)
		code, out, errOut = cli(ctx, "clone", "-f", e.config, "--source-disk", d.Path, "--to", img, "--size", "400M", "--yes")
		if code != 0 {
			t.Fatalf("clone = exit %d\n%s\n%s", code, out, errOut)
		}
		e.want(t, "pre-restore", map[string]string{"BACKUP_EVENT": "pre-restore", "BACKUP_TYPE": "clone", "RESTORE_DEVICE": img, "TARGET": "absent"})
		e.want(t, "post-restore", map[string]string{"BACKUP_EVENT": "post-restore", "BACKUP_TYPE": "clone", "RESTORE_DEVICE": img, "BACKUP_RC": "0"})
		if got := e.env(t, "post-restore")["BACKUP_TARGETDIR"]; got != "" {
			t.Errorf("clone post-restore BACKUP_TARGETDIR=%q; a clone has no set", got)
		}
	})
}

// copyTree copies the regular files of the folder src into a new folder
// dst (a set folder: no subfolders in a tgz set).
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	es, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range es {
		b, err := os.ReadFile(filepath.Join(src, de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, de.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
