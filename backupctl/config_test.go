package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/pibackup/pibackup/internal/config"
)

// execSub runs one subcommand tree in-process, the way run would once the
// lead registers it, and returns the exit code run would return.
func execSub(t *testing.T, mk func(a *app) *cobra.Command, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	a := &app{stdin: strings.NewReader(""), stdout: &o, stderr: &e, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	cmd := mk(a)
	cmd.SetArgs(args)
	cmd.SetOut(&o)
	cmd.SetErr(&e)
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	err := cmd.ExecuteContext(context.Background())
	code = exitCode(err) // the one switch run uses
	if err != nil {
		e.WriteString("error: " + err.Error() + "\n")
	}
	return code, o.String(), e.String()
}

// isolateConfig keeps the user's and the working folder's config files out.
func isolateConfig(t *testing.T) string {
	dir := t.TempDir()
	t.Setenv("HOME", dir)
	t.Setenv("XDG_CONFIG_HOME", "")
	t.Chdir(dir)
	return dir
}

func configCmd(a *app) *cobra.Command    { return a.newConfigCmd() }
func retentionCmd(a *app) *cobra.Command { return a.newRetentionCmd() }

// importFixture runs config import -o DIR/backupctl.conf on a file of
// internal/config/testdata, in an isolated folder, and returns the paths
// and stderr.
func importFixture(t *testing.T, name string) (src, out, stderr string) {
	t.Helper()
	// Resolve the fixture before isolate moves the working folder.
	src, err := filepath.Abs(filepath.Join("..", "internal", "config", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	out = filepath.Join(isolateConfig(t), "backupctl.conf")
	code, _, stderr := execSub(t, configCmd, "import", "-o", out, src)
	if code != exitOK {
		t.Fatalf("import: code %d\n%s", code, stderr)
	}
	return src, out, stderr
}

func TestConfigImportAndShow(t *testing.T) {
	src, out, stderr := importFixture(t, "raspiBackup.conf")
	for _, want := range []string{"not imported: DEFAULT_MAIL_PROGRAM", "unknown keys (not raspiBackup settings): MY_OWN_VARIABLE", "wrote " + out} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("imported file mode %o, want 600", fi.Mode().Perm())
	}
	if code, _, _ := execSub(t, configCmd, "import", "-o", out, src); code != exitPreflight {
		t.Errorf("second import without --force: code %d, want %d", code, exitPreflight)
	}

	// ./backupctl.conf is one of the standard sources; a flag beats it.
	code, stdout, stderr := execSub(t, configCmd, "show", "--keep", "9")
	if code != exitOK {
		t.Fatalf("show: code %d\n%s", code, stderr)
	}
	for _, want := range []string{
		`type = "tar"`, "# backupctl.conf", `keep = 9`, "# flag --keep",
		`smtp.password = "********"`, `services = ["unit:nginx.service", "unit:mariadb.service", "docker:homeassistant"]`,
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("show lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout+stderr, `p@ss`) {
		t.Error("show printed the SMTP password")
	}

	// The same file readable by others is refused, before anything runs.
	if err := os.Chmod(out, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = execSub(t, configCmd, "show")
	if code != exitPreflight || !strings.Contains(stderr, "chmod 600") {
		t.Errorf("show with a 0644 secret file: code %d\n%s", code, stderr)
	}
}

func TestConfigShowBadValue(t *testing.T) {
	dir := isolateConfig(t)
	p := filepath.Join(dir, "x.conf")
	if err := os.WriteFile(p, []byte("keep = \"lots\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := execSub(t, configCmd, "show", "-f", p)
	if code != exitUsage || !strings.Contains(stderr, p) {
		t.Errorf("code %d, stderr:\n%s", code, stderr)
	}
}

func TestRetentionCmd(t *testing.T) {
	dir := isolateConfig(t)
	for _, n := range []string{
		"pi@debian12-rsync-backup-20240101-030000",
		"pi@debian12-rsync-backup-20240102-030000",
		"pi@debian12-rsync-backup-20240103-030000",
		"pi@debian12-rsync-backup-20240102-120000_before_upgrade",
	} {
		if err := os.MkdirAll(filepath.Join(dir, "backup", "pi", n, "etc"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	root := filepath.Join(dir, "backup")
	code, stdout, stderr := execSub(t, retentionCmd, "--dry-run", "--keep", "1", root)
	if code != exitOK {
		t.Fatalf("code %d\n%s", code, stderr)
	}
	for _, want := range []string{
		"would delete     pi/pi@debian12-rsync-backup-20240101-030000",
		"would delete     pi/pi@debian12-rsync-backup-20240102-030000",
		"keep (snapshot)",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("dry run lacks %q:\n%s", want, stdout)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "pi", "pi@debian12-rsync-backup-20240101-030000")); err != nil {
		t.Fatal("dry run deleted a set")
	}
	code, _, stderr = execSub(t, retentionCmd, "--keep", "1", root)
	if code != exitOK {
		t.Fatalf("code %d\n%s", code, stderr)
	}
	left, _ := os.ReadDir(filepath.Join(root, "pi"))
	var names []string
	for _, e := range left {
		names = append(names, e.Name())
	}
	// The emptied tmp/ goes too.
	if got := strings.Join(names, " "); got != "pi@debian12-rsync-backup-20240102-120000_before_upgrade pi@debian12-rsync-backup-20240103-030000" {
		t.Errorf("left: %s", got)
	}
	if code, _, _ := execSub(t, retentionCmd, "--keep", "0", root); code != exitUsage {
		t.Errorf("--keep 0: code %d, want %d", code, exitUsage)
	}
}

// TestConfigImportTemplate imports raspiBackup's complete shipped config:
// stderr names every key that is not imported with why, the file written
// loads, and config show of it validates.
func TestConfigImportTemplate(t *testing.T) {
	src, out, stderr := importFixture(t, "raspiBackup_en.conf")
	text, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	imp, err := config.ImportRaspiBackup(string(text))
	if err != nil {
		t.Fatal(err)
	}
	var dropped int
	for _, k := range imp.Keys {
		if !k.Dropped {
			continue
		}
		dropped++
		if !strings.Contains(stderr, "not imported: "+k.Key) || !strings.Contains(stderr, k.Why) {
			t.Errorf("stderr does not say why %s is not imported (%s):\n%s", k.Key, k.Why, stderr)
		}
	}
	if dropped < 20 || !strings.Contains(stderr, fmt.Sprintf("%d raspiBackup keys:", len(imp.Keys))) {
		t.Errorf("%d keys dropped; stderr:\n%s", dropped, stderr)
	}
	code, stdout, stderr := execSub(t, configCmd, "show", "-f", out)
	if code != exitOK || strings.Contains(stderr, "would not run") || !regexp.MustCompile(`(?m)^link-boot-files = false +# `+regexp.QuoteMeta(out)+`$`).MatchString(stdout) {
		t.Errorf("show of the imported file: code %d\n%s\n%s", code, stdout, stderr)
	}
}
