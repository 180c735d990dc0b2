package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/pibackup/pibackup/internal/i18n"
)

// helpTexts builds the tree in lang, with cobra's own help and
// completion commands and flags, and returns every summary and flag
// help by "path" and "path --flag".
func helpTexts(t *testing.T, lang i18n.Lang) (map[string]string, *cobra.Command) {
	t.Helper()
	a := &app{stdout: io.Discard, stderr: io.Discard, msg: i18n.New(lang)}
	root := a.rootCmd()
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	texts := map[string]string{}
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		c.InitDefaultHelpFlag()
		c.InitDefaultVersionFlag()
		path := commandPath(c)
		texts[path] = c.Short
		c.Flags().VisitAll(func(f *pflag.Flag) { texts[path+" --"+f.Name] = f.Usage })
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
	return texts, root
}

// TestHelpTextsInCatalogue: the English summary and flag help of every
// command are the English texts of the catalogue (so a changed English
// text cannot leave an old German one behind), and in German every one
// is a German text of its own.
func TestHelpTextsInCatalogue(t *testing.T) {
	en, root := helpTexts(t, i18n.English)
	de, _ := helpTexts(t, i18n.German)
	if len(en) < 100 {
		t.Fatalf("only %d texts in the tree", len(en))
	}
	p := i18n.New(i18n.English)
	for key, text := range en {
		path, flag, isFlag := strings.Cut(key, " --")
		var want string
		if isFlag {
			c, _, err := root.Find(strings.Fields(path))
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			id, args, ok := flagHelpID(c, path, flag, p)
			if !ok {
				t.Errorf("%q: flag help %q is not in the catalogue", key, text)
				continue
			}
			want = p.Sprintf(id, args...)
		} else {
			want = p.Sprintf(i18n.CLICommand(path))
		}
		if want != text {
			t.Errorf("%q: the tree says %q, the catalogue's English %q", key, text, want)
		}
		if de[key] == text || de[key] == "" {
			t.Errorf("%q: German help is %q", key, de[key])
		}
	}
}

// runHelp runs backupctl with args and the locale env and returns stdout.
func runHelp(t *testing.T, env string, args ...string) string {
	t.Helper()
	t.Setenv("LC_ALL", "")
	t.Setenv("LC_MESSAGES", "")
	t.Setenv("LANG", env)
	var o, e bytes.Buffer
	if code := run(context.Background(), args, strings.NewReader(""), &o, &e); code != exitOK {
		t.Fatalf("%v: code %d\n%s", args, code, e.String())
	}
	return o.String()
}

// TestHelpGerman: `LANG=de_DE.UTF-8 backupctl --help` and `backupctl
// CMD --help --lang de` print no English summary or flag help; with
// LANG=C the help is English as before.
func TestHelpGerman(t *testing.T) {
	en, _ := helpTexts(t, i18n.English)
	de, _ := helpTexts(t, i18n.German)
	for _, tt := range []struct {
		env  string
		args []string
	}{
		{"de_DE.UTF-8", []string{"--help"}},
		{"C", []string{"backup", "--help", "--lang", "de"}},
		{"en_US.UTF-8", []string{"--lang=de", "status", "--help"}},
		{"de_AT.UTF-8", []string{"help", "config", "show"}},
	} {
		out := runHelp(t, tt.env, tt.args...)
		if !strings.Contains(out, "Aufruf:") || !strings.Contains(out, "Optionen:") {
			t.Errorf("%v: no German headings:\n%s", tt.args, out)
		}
		for key, text := range en {
			// Short words ("SMTP server") may be part of a German text.
			if strings.Contains(out, text) && de[key] != text && len(text) > 20 {
				t.Errorf("%v (LANG=%s) prints the English %q (%s)", tt.args, tt.env, text, key)
			}
		}
	}
	out := runHelp(t, "C", "--help")
	for _, key := range []string{"backup", "restore", "help", " --verbose"} {
		if k := strings.TrimPrefix(key, " "); !strings.Contains(out, en[k]) {
			t.Errorf("English help lacks %q:\n%s", en[k], out)
		}
	}
	if !strings.Contains(out, "Usage:") || strings.Contains(out, "Aufruf") {
		t.Errorf("LANG=C help is not English:\n%s", out)
	}
	out = runHelp(t, "C", "backup", "--help")
	if !strings.Contains(out, en["backup --keep"]) || !strings.Contains(out, en["backup --help"]) {
		t.Errorf("English backup help lacks its flag help:\n%s", out)
	}
}

// TestErrorLineGerman: the line that says why a command failed names the
// reason in German before the English details, also when only the
// config file sets lang; English is the error as it is.
func TestErrorLineGerman(t *testing.T) {
	dir := isolateConfig(t)
	t.Setenv("LC_ALL", "")
	t.Setenv("LC_MESSAGES", "")
	runErr := func(args ...string) (int, string) {
		var o, e bytes.Buffer
		code := run(context.Background(), args, strings.NewReader(""), &o, &e)
		return code, e.String()
	}
	t.Setenv("LANG", "C")
	if code, got := runErr("backup", "--nosuch"); code != exitUsage || got != "backupctl: unknown flag: --nosuch\n" {
		t.Errorf("English usage error: code %d, %q", code, got)
	}
	t.Setenv("LANG", "de_DE.UTF-8")
	if code, got := runErr("backup", "--nosuch"); code != exitUsage ||
		got != "backupctl: Aufruf falsch (backupctl --help zeigt die Befehle und Optionen): unknown flag: --nosuch\n" {
		t.Errorf("German usage error: code %d, %q", code, got)
	}

	// A check before writing fails: config import will not overwrite.
	out := filepath.Join(dir, "exists.conf")
	conf := filepath.Join(dir, "raspiBackup.conf")
	for _, f := range []string{out, conf} {
		if err := os.WriteFile(f, []byte("DEFAULT_KEEPBACKUPS=3\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	code, got := runErr("config", "import", "-o", out, conf)
	got = got[strings.LastIndex(strings.TrimSuffix(got, "\n"), "\n")+1:] // after import's notes
	if want := "backupctl: Prüfung vor dem Schreiben fehlgeschlagen, nichts wurde geschrieben: config import: " + out + " exists; use --force to overwrite it\n"; code != exitPreflight || got != want {
		t.Errorf("German preflight error: code %d, %q; want %q", code, got, want)
	}

	// Only the config file says German.
	t.Setenv("LANG", "C")
	if err := os.WriteFile(filepath.Join(dir, "backupctl.conf"), []byte("lang = \"de\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, got := runErr("backup"); code != exitUsage || !strings.HasPrefix(got, "backupctl: Aufruf falsch (backupctl --help zeigt die Befehle und Optionen): no backup folder") {
		t.Errorf("lang from the config file: code %d, %q", code, got)
	}
}

// TestGendocsEnglish: a packager's German locale does not make the
// packaged man pages German.
func TestGendocsEnglish(t *testing.T) {
	t.Setenv("LC_ALL", "")
	t.Setenv("LC_MESSAGES", "")
	t.Setenv("LANG", "de_DE.UTF-8")
	man := filepath.Join(t.TempDir(), "man")
	if code, stderr := runGendocs(t, "--man", man); code != exitOK {
		t.Fatalf("gendocs: code %d\n%s", code, stderr)
	}
	page, err := os.ReadFile(filepath.Join(man, "backupctl-backup.1"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(page), "Back up the running system or a disk") || strings.Contains(string(page), "Das laufende System") {
		t.Errorf("backupctl-backup.1 is not English:\n%s", page)
	}
}
