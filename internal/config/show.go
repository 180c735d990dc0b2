package config

import (
	"fmt"
	"io"
	"strings"
)

// Show writes the merged configuration as TOML with dotted keys, one
// option a line in table order, each followed by its origin. Secrets are
// masked. The output parses back as a config file (with masked secrets).
func Show(w io.Writer, l *Loaded) error {
	width := 0
	lines := make([]string, len(table))
	for i, o := range table {
		lines[i] = o.key + " = " + format(l.Config, o, false)
		width = max(width, len(lines[i]))
	}
	var b strings.Builder
	if len(l.Files) == 0 {
		b.WriteString("# no config file found; built-in defaults and flags\n")
	} else {
		b.WriteString("# read, in order: " + strings.Join(l.Files, ", ") + "\n")
	}
	for _, warn := range l.Warnings {
		b.WriteString("# warning: " + warn + "\n")
	}
	for i, o := range table {
		fmt.Fprintf(&b, "%-*s  # %s\n", width, lines[i], l.Origins[o.key])
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteTOML writes the given keys of c as a TOML file, secrets revealed:
// this is for the importer, whose output file the caller creates 0600.
func WriteTOML(w io.Writer, c *Config, keys []string) error {
	set := map[string]bool{}
	for _, k := range keys {
		set[k] = true
	}
	var b strings.Builder
	for _, o := range table {
		if !set[o.key] {
			continue
		}
		fmt.Fprintf(&b, "# %s\n%s = %s\n", o.help, o.key, format(c, o, true))
	}
	_, err := io.WriteString(w, b.String())
	return err
}
