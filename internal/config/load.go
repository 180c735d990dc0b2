package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/spf13/pflag"
)

// Sources are the files Load reads, lowest precedence first.
type Sources struct {
	System   []string // each read if present
	User     string   // read if present
	Local    string   // read if present
	Explicit string   // -f FILE: must exist
}

// System config files, in the order they are read: the packaged one, then
// the local admin's, as raspiBackup reads /usr/local/etc.
var systemFiles = []string{"/etc/backupctl/backupctl.conf", "/usr/local/etc/backupctl.conf"}

// DefaultSources returns the standard files for a user whose home is home
// ("" to skip the user file) and the file named by -f ("" for none).
func DefaultSources(home, explicit string) Sources {
	s := Sources{System: systemFiles, Local: "backupctl.conf", Explicit: explicit}
	if xdg := os.Getenv("XDG_CONFIG_HOME"); xdg != "" && filepath.IsAbs(xdg) {
		s.User = filepath.Join(xdg, "backupctl", "config")
	} else if home != "" {
		s.User = filepath.Join(home, ".config", "backupctl", "config")
	}
	return s
}

// Origin of the defaults in Loaded.Origins.
const OriginDefault = "default"

// Loaded is the merged configuration and where each value came from.
type Loaded struct {
	Config *Config
	// Origins maps each key to "default", the file that set it last, or
	// "flag --name".
	Origins map[string]string
	// Files lists the files read, in order.
	Files []string
	// Warnings are problems that do not stop a run: unknown keys (maybe
	// from a newer version), secrets on the command line.
	Warnings []string
}

// ErrInsecure is wrapped when a file holding a secret is readable by
// group or others.
var ErrInsecure = errors.New("secret in a file others can read")

// Load reads the sources in order and applies flags on top. flags may be
// nil. A missing optional file is skipped; a file that does not parse, a
// value of the wrong type, or a secret in a file others can read is an
// error naming the file.
func Load(src Sources, flags *Flags) (*Loaded, error) {
	l := &Loaded{Config: Defaults(), Origins: map[string]string{}}
	for _, o := range table {
		l.Origins[o.key] = OriginDefault
	}
	type file struct {
		path     string
		required bool
	}
	var files []file
	for _, p := range src.System {
		files = append(files, file{p, false})
	}
	if src.User != "" {
		files = append(files, file{src.User, false})
	}
	if src.Local != "" {
		files = append(files, file{src.Local, false})
	}
	if src.Explicit != "" {
		files = append(files, file{src.Explicit, true})
	}
	for _, f := range files {
		data, mode, err := readFile(f.path)
		if errors.Is(err, fs.ErrNotExist) && !f.required {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read config: %w", err)
		}
		set, warnings, err := apply(l.Config, string(data))
		if err != nil {
			return nil, fmt.Errorf("config %s: %w", f.path, err)
		}
		for _, w := range warnings {
			l.Warnings = append(l.Warnings, f.path+": "+w)
		}
		if err := checkSecrets(f.path, mode, set, l.Config); err != nil {
			return nil, err
		}
		for _, k := range set {
			l.Origins[k] = f.path
		}
		l.Files = append(l.Files, f.path)
	}
	if flags != nil {
		if err := flags.apply(l); err != nil {
			return nil, err
		}
	}
	return l, nil
}

func readFile(path string) ([]byte, fs.FileMode, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	if fi.IsDir() {
		return nil, 0, fmt.Errorf("%s is a folder, not a config file", path)
	}
	data, err := os.ReadFile(path)
	return data, fi.Mode(), err
}

// checkSecrets refuses a secret that others could read: raspiBackup's
// conf ships 0600 for the same reason, and a mail password readable by
// every user of the Pi is a password for everyone.
func checkSecrets(path string, mode fs.FileMode, set []string, c *Config) error {
	if mode.Perm()&0o077 == 0 {
		return nil
	}
	for _, k := range set {
		if o, _ := lookup(k); o.secret(c) {
			return fmt.Errorf("%w: %s sets %s but has mode %04o; run: chmod 600 %s", ErrInsecure, path, k, mode.Perm(), path)
		}
	}
	return nil
}

// apply decodes TOML text onto c and returns the keys it set, in table
// order, and warnings for keys it does not know.
func apply(c *Config, text string) (set, warnings []string, err error) {
	var raw map[string]any
	if _, err := toml.Decode(text, &raw); err != nil {
		return nil, nil, err
	}
	flat := map[string]any{}
	flatten("", raw, flat)
	keys := make([]string, 0, len(flat))
	for k := range flat {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	seen := map[string]bool{}
	for _, k := range keys {
		o, ok := lookup(k)
		if !ok {
			warnings = append(warnings, "unknown key "+k+suggest(k))
			continue
		}
		if err := setTOML(c, o, flat[k]); err != nil {
			return nil, nil, err
		}
		seen[k] = true
	}
	for _, o := range table {
		if seen[o.key] {
			set = append(set, o.key)
		}
	}
	return set, warnings, nil
}

// flatten turns nested tables into dotted keys; a table that is itself an
// option's value does not exist (no option is a table), so every map is
// descended into.
func flatten(prefix string, m map[string]any, out map[string]any) {
	for k, v := range m {
		key := k
		if prefix != "" {
			key = prefix + "." + k
		}
		if sub, ok := v.(map[string]any); ok {
			flatten(key, sub, out)
			continue
		}
		out[key] = v
	}
}

// suggest names a known key that looks like k (same key with _ for -, or
// the same last part), for the typos people make.
func suggest(k string) string {
	norm := strings.ToLower(strings.ReplaceAll(k, "_", "-"))
	last := norm[strings.LastIndex(norm, ".")+1:]
	for _, o := range table {
		if o.key == norm || strings.HasSuffix(o.key, "."+last) || o.key == last {
			return " (did you mean " + o.key + "?)"
		}
	}
	return ""
}

// Flags are the command-line flags derived from the option table.
type Flags struct {
	// File is the value of -f/--config.
	File  string
	fs    *pflag.FlagSet
	vals  map[string]*flagValue
	order []string
}

// AddFlags registers on fs the flags of the options that command takes
// (see the Cmd constants), plus -f/--config FILE; command "" takes every
// option (`config show`). List options are repeatable and never split on
// commas (a command line may contain one).
func AddFlags(fs *pflag.FlagSet, command string) *Flags {
	f := &Flags{fs: fs, vals: map[string]*flagValue{}}
	fs.StringVarP(&f.File, "config", "f", "", "read this config file last (after the system, user and ./backupctl.conf files)")
	probe := Defaults()
	for _, o := range table {
		if !o.forCommand(command) {
			continue
		}
		v := &flagValue{typ: typeName(o.field(probe))}
		fl := fs.VarPF(v, o.flagName(), o.short, o.help)
		if v.typ == "bool" {
			fl.NoOptDefVal = "true"
		}
		// --help shows "(default X)" for a default that is not zero.
		fl.DefValue = plain(probe, o)
		f.vals[o.key] = v
		f.order = append(f.order, o.key)
	}
	return f
}

// typeName is the type pflag shows in --help.
func typeName(p any) string {
	switch k := kindOf(p); k {
	case "bool", "int":
		return k
	case "list":
		return "stringArray"
	}
	return "string"
}

func (f *Flags) apply(l *Loaded) error {
	for _, k := range f.order {
		v := f.vals[k]
		if len(v.vals) == 0 {
			continue
		}
		o, _ := lookup(k)
		if err := setString(l.Config, o, v.vals); err != nil {
			return err
		}
		l.Origins[k] = "flag --" + o.flagName()
		if o.secret(l.Config) {
			l.Warnings = append(l.Warnings, fmt.Sprintf("--%s on the command line is visible to other users (ps); put it in a chmod 600 config file", o.flagName()))
		}
	}
	return nil
}

// flagValue collects a flag's raw values; they are parsed in apply, after
// the files, so errors name the flag and origins stay right.
type flagValue struct {
	typ  string
	vals []string
}

func (v *flagValue) String() string {
	if len(v.vals) == 0 {
		return ""
	}
	return v.vals[len(v.vals)-1]
}

func (v *flagValue) Set(s string) error {
	v.vals = append(v.vals, s)
	return nil
}

func (v *flagValue) Type() string { return v.typ }
