package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/pibackup/pibackup/internal/config"
)

// errStop ends a command right after its configuration is merged.
var errStop = errors.New("stop after the configuration")

// settingFlag is one setting flag found on one command.
type settingFlag struct {
	path string // command path below backupctl
	opt  config.Option
}

// walkFlags calls fn for every flag defined on every command of the
// tree (persistent flags once, on the command that defines them).
func walkFlags(root *cobra.Command, fn func(path string, f *pflag.Flag)) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if c.HasParent() && c.Parent().PersistentFlags().Lookup(f.Name) == f {
				return
			}
			fn(commandPath(c), f)
		})
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	root.InitDefaultHelpFlag()
	root.InitDefaultVersionFlag()
	walk(root)
}

// TestEverySettingIsKeyAndFlag walks every flag of every command of the
// tree run builds. Each is either a setting of the config table — the
// same short flag, taken by the commands the table names — or on the
// short notSettings list. Then each setting flag of each command is set
// in a config file, on the command line, and in both: the command must
// merge the same value the file and the flag describe, and the flag
// must win.
func TestEverySettingIsKeyAndFlag(t *testing.T) {
	dir := isolateConfig(t)
	a := &app{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard, log: slog.New(slog.NewTextHandler(io.Discard, nil))}

	var settings []settingFlag
	usedNot := map[string]bool{}
	onCommand := map[string][]string{} // key -> command paths that have its flag
	walkFlags(a.rootCmd(), func(path string, f *pflag.Flag) {
		if isNotSetting(path, f.Name) {
			usedNot[f.Name] = true
			return
		}
		o, ok := config.OptionForFlag(f.Name)
		if !ok {
			t.Errorf("backupctl %s --%s is neither a setting of the config table nor in notSettings", path, f.Name)
			return
		}
		if f.Shorthand != o.Short {
			t.Errorf("backupctl %s --%s has short flag %q; the table says %q", path, f.Name, f.Shorthand, o.Short)
		}
		if path != "config show" && !slices.Contains(o.Commands, path) {
			t.Errorf("backupctl %s --%s: the table does not list %q for %s", path, f.Name, path, o.Key)
		}
		onCommand[o.Key] = append(onCommand[o.Key], path)
		settings = append(settings, settingFlag{path, o})
	})

	// The exceptions are few, each with a reason, and each still exists.
	var flags int
	for _, n := range notSettings {
		flags += len(n.flags)
		if n.why == "" {
			t.Errorf("notSettings: %q has no reason", n.flags)
		}
		for _, f := range n.flags {
			if !usedNot[f] {
				t.Errorf("notSettings: no command has --%s any more", f)
			}
			if _, ok := config.OptionForFlag(f); ok && slices.Contains(n.commands, "*") {
				t.Errorf("notSettings: --%s is a setting too", f)
			}
		}
	}
	if len(notSettings) > 22 || flags > 28 {
		t.Errorf("notSettings has %d reasons for %d flags; a flag belongs there only when a config file must not set it", len(notSettings), flags)
	}
	// Every option is a flag of config show and of each command the
	// table names.
	for _, o := range config.Options() {
		for _, c := range append([]string{"config show"}, o.Commands...) {
			if !slices.Contains(onCommand[o.Key], c) {
				t.Errorf("%s: the table names command %q, which has no --%s", o.Key, c, o.Flag)
			}
		}
	}

	// Arguments that get each command as far as merging its config.
	setDir := t.TempDir()
	args := map[string][]string{
		"restore":          {setDir, "--to", filepath.Join(dir, "x.img")},
		"clone":            {"--to", filepath.Join(dir, "x.img")},
		"retention":        {dir},
		"status":           {dir},
		"schedule":         {"install"},
		"recover-services": {"--run-dir", t.TempDir()},
		"mount":            {setDir, t.TempDir()},
		"list":             {dir},
		"verify":           {setDir},
		"extract":          {setDir, "/etc/fstab", "--to", t.TempDir()},
		"diff":             {setDir, setDir},
	}
	n := 0
	paths := map[string]bool{}
	for _, s := range settings {
		paths[s.path] = true
		o := s.opt
		file1, flag1, want1 := sample(o, 1)
		_, flag2, want2 := sample(o, 2)
		conf := filepath.Join(t.TempDir(), "c.conf")
		if err := os.WriteFile(conf, []byte(o.Key+" = "+file1+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name       string
			extra      []string
			want, from string
		}{
			{"file", []string{"-f", conf}, want1, conf},
			{"flag", []string{"--" + o.Flag + "=" + flag1}, want1, "flag --" + o.Flag},
			{"both", []string{"-f", conf, "--" + o.Flag + "=" + flag2}, want2, "flag --" + o.Flag},
		} {
			l, err := loadVia(a, s.path, append(slices.Clone(args[s.path]), tc.extra...))
			if err != nil {
				t.Errorf("backupctl %s, %s by %s: %v", s.path, o.Key, tc.name, err)
				continue
			}
			got, err := l.Config.Value(o.Key)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want || l.Origins[o.Key] != tc.from {
				t.Errorf("backupctl %s, %s by %s: got %s from %q; want %s from %q", s.path, o.Key, tc.name, got, l.Origins[o.Key], tc.want, tc.from)
			}
			n++
		}
	}
	t.Logf("%d setting flags on %d commands, %d runs; %d flags for %d reasons are not settings", len(settings), len(paths), n, flags, len(notSettings))
}

// loadVia runs backupctl PATH ARGS on a fresh tree and returns the
// configuration the command merged.
func loadVia(a *app, path string, args []string) (*config.Loaded, error) {
	var got *config.Loaded
	b := *a
	b.loaded = func(l *config.Loaded) error {
		got = l
		return errStop
	}
	root := b.rootCmd()
	root.SetArgs(append(strings.Fields(path), args...))
	root.SetOut(io.Discard)
	root.SetErr(io.Discard)
	err := root.Execute()
	if got == nil {
		return nil, fmt.Errorf("the configuration was never merged: %v", err)
	}
	return got, nil
}

// sample returns the i-th (1 or 2) test value of o as a TOML value, as a
// flag value, and as Config.Value renders it; the two differ, and the
// first is not the default.
func sample(o config.Option, i int) (toml, flag, want string) {
	switch o.Type {
	case "bool":
		def, _ := strconv.ParseBool(o.Default)
		v := strconv.FormatBool(def == (i == 2)) // 1: not the default
		return v, v, v
	case "int":
		v := strconv.Itoa(5 + 2*i)
		return v, v, v
	case "duration":
		v := fmt.Sprintf("%dm", 5+2*i)
		return strconv.Quote(v), v, strconv.Quote(v + "0s")
	case "list":
		v := fmt.Sprintf("entry %d", i)
		return "[" + strconv.Quote(v) + "]", v, "[" + strconv.Quote(v) + "]"
	}
	v := fmt.Sprintf("value-%d", i)
	if len(o.Choices) >= 2 {
		v = o.Choices[i-1]
	}
	return strconv.Quote(v), v, strconv.Quote(v)
}
