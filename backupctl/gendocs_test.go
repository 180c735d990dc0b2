package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// gendocsRegistered tells whether commands.go lists gendocs yet.
func gendocsRegistered() bool {
	a := &app{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, c := range a.commands() {
		if c.Name() == "gendocs" {
			return true
		}
	}
	return false
}

// runGendocs writes the docs of the whole command tree: through run when
// gendocs is registered, otherwise from a root assembled the way run does
// it, so the generator is tested on the real tree either way.
func runGendocs(t *testing.T, args ...string) (code int, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	if gendocsRegistered() {
		code = run(context.Background(), append([]string{"gendocs"}, args...), strings.NewReader(""), &o, &e)
		return code, e.String()
	}
	a := &app{stdin: strings.NewReader(""), stdout: &o, stderr: &e, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	root := &cobra.Command{Use: "backupctl", Short: "test root", SilenceUsage: true, SilenceErrors: true}
	root.PersistentFlags().BoolP("verbose", "v", false, "log progress details to stderr")
	root.AddCommand(a.commands()...)
	root.AddCommand(a.newGendocsCmd())
	root.SetArgs(append([]string{"gendocs"}, args...))
	root.SetOut(&o)
	root.SetErr(&e)
	if err := root.ExecuteContext(context.Background()); err != nil {
		e.WriteString(err.Error())
		return exitFailure, e.String()
	}
	return exitOK, e.String()
}

func TestGendocsRegistered(t *testing.T) {
	if !gendocsRegistered() {
		t.Skip("gendocs is not in commands.go yet: add a.newGendocsCmd() to app.commands()")
	}
	var o, e bytes.Buffer
	if code := run(context.Background(), []string{"help"}, strings.NewReader(""), &o, &e); code != 0 {
		t.Fatalf("help: exit %d: %s", code, e.String())
	}
	if strings.Contains(o.String(), "gendocs") {
		t.Errorf("gendocs is hidden but `backupctl help` lists it:\n%s", o.String())
	}
}

func TestGendocs(t *testing.T) {
	oldVersion, oldDate := version, date
	version, date = "1.2.3", "2026-11-25T03:15:00Z"
	t.Cleanup(func() { version, date = oldVersion, oldDate })

	dir := t.TempDir()
	man, comp := filepath.Join(dir, "man"), filepath.Join(dir, "completions")
	if code, stderr := runGendocs(t, "--man", man, "--completions", comp); code != 0 {
		t.Fatalf("gendocs: exit %d: %s", code, stderr)
	}

	// One page per visible command, named like git's: backupctl-config-show.1.
	want := []string{"backupctl.1"}
	a := &app{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	var walk func(prefix string, cs []*cobra.Command)
	walk = func(prefix string, cs []*cobra.Command) {
		for _, c := range cs {
			if c.Hidden || c.Name() == "gendocs" {
				continue
			}
			want = append(want, prefix+"-"+c.Name()+".1")
			walk(prefix+"-"+c.Name(), c.Commands())
		}
	}
	walk("backupctl", a.commands())
	entries, err := os.ReadDir(man)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, e := range entries {
		got[e.Name()] = true
	}
	for _, w := range want {
		if !got[w] {
			t.Errorf("no man page %s (have %v)", w, sortedNames(got))
		}
	}
	for name := range got {
		if strings.Contains(name, "gendocs") {
			t.Errorf("man page %s for the hidden gendocs command", name)
		}
	}
	page, err := os.ReadFile(filepath.Join(man, "backupctl-backup.1"))
	if err != nil {
		t.Fatal(err)
	}
	th := regexp.MustCompile(`(?m)^\.TH "BACKUPCTL" "1" "Nov 2026" "backupctl 1\.2\.3" "backupctl manual"`)
	if !th.Match(page) {
		t.Errorf("backupctl-backup.1: want a .TH line with the build date and version, got:\n%.400s", page)
	}
	for _, s := range []string{".SH NAME", ".SH SYNOPSIS", ".SH OPTIONS", "--help", "<host>", "'/home/*/.cache'"} {
		if !bytes.Contains(page, []byte(s)) {
			t.Errorf("backupctl-backup.1 lacks %q", s)
		}
	}
	if bytes.Contains(page, []byte("Auto generated")) {
		t.Error("man page has cobra's dated auto-generated footer; builds would not be reproducible")
	}

	checks := []struct {
		file, marker, shell string
		args                []string
	}{
		{bashCompletionFile, "complete -o default -F __start_backupctl backupctl", "bash", []string{"-n"}},
		{zshCompletionFile, "#compdef backupctl", "zsh", []string{"-n"}},
		{fishCompletionFile, "complete -c backupctl", "fish", []string{"--no-execute"}},
	}
	for _, c := range checks {
		p := filepath.Join(comp, c.file)
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(data, []byte(c.marker)) {
			t.Errorf("%s lacks %q", c.file, c.marker)
		}
		// Parse the script with its shell, when that shell is here.
		if sh, err := exec.LookPath(c.shell); err == nil {
			if out, err := exec.Command(sh, append(c.args, p)...).CombinedOutput(); err != nil {
				t.Errorf("%s %v %s: %v\n%s", c.shell, c.args, c.file, err, out)
			}
		}
	}
}

func TestGendocsNeedsAFolder(t *testing.T) {
	code, stderr := runGendocs(t)
	if code == exitOK {
		t.Fatalf("gendocs without folders succeeded: %s", stderr)
	}
}

// The version line is what bug reports quote and what the package test
// checks after `dpkg -i`: name, version, commit and build date.
func TestVersionFormat(t *testing.T) {
	oldV, oldC, oldD := version, commit, date
	version, commit, date = "1.2.3", "abc1234", "2026-11-25T03:15:00Z"
	t.Cleanup(func() { version, commit, date = oldV, oldC, oldD })
	var o, e bytes.Buffer
	if code := run(context.Background(), []string{"--version"}, strings.NewReader(""), &o, &e); code != 0 {
		t.Fatalf("--version: exit %d: %s", code, e.String())
	}
	if got, want := o.String(), "backupctl 1.2.3 (commit abc1234, built 2026-11-25T03:15:00Z)\n"; got != want {
		t.Errorf("--version printed %q, want %q", got, want)
	}
}

func sortedNames(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
