package main

import (
	"slices"
	"strings"
)

// notSetting is a flag that is not a setting: it says what one
// invocation does, to what, or where its output goes, so a config file
// that set it would change every run in a way no one asked for.
type notSetting struct {
	flags    []string
	commands []string // command paths below backupctl; "*" for every command
	why      string
}

// notSettings lists every flag that has no config key. Every other flag
// of every command is an option of the config table (internal/config),
// with one key, one type and one meaning wherever it appears; the
// settings test walks the command tree and checks both ways. Keep this
// list short: a flag belongs here only when a config file must not set it.
var notSettings = []notSetting{
	{[]string{"config"}, []string{"*"}, "names the config file itself"},
	{[]string{"help"}, []string{"*"}, "cobra's help"},
	{[]string{"version"}, []string{""}, "prints the version"},
	{[]string{"verbose"}, []string{""}, "how much this invocation prints on the terminal"},
	{[]string{"dry-run"}, []string{"backup", "restore", "clone", "retention"}, "a preview of this run; set in a file, no backup would ever be written"},
	{[]string{"to", "root-to"}, []string{"restore", "clone", "extract"}, "the target of this restore, clone or extract (and of a clone's root)"},
	{[]string{"size", "root-size"}, []string{"restore", "clone"}, "the size of the new image file this run creates"},
	{[]string{"yes"}, []string{"restore", "clone"}, "confirms this overwrite; a file must not confirm every overwrite"},
	{[]string{"keep-ids"}, []string{"restore"}, "whether this target replaces the source's card (same ids) or runs beside it"},
	{[]string{"partitions"}, []string{"restore"}, "which partitions of this set to restore (the partitions setting says what backup saves)"},
	{[]string{"source-disk", "source-root-disk"}, []string{"backup", "clone"}, "the disk of this run instead of the running system"},
	{[]string{"name"}, []string{"backup"}, "names one snapshot, which retention never removes; a file would make every set one"},
	{[]string{"json"}, []string{"list", "diff", "restore-test"}, "the output format of this run, for scripts"},
	{[]string{"list"}, []string{"verify"}, "the output of this run"},
	{[]string{"output", "force"}, []string{"config import"}, "where this import writes, and whether it may overwrite"},
	{[]string{"record-restore-test"}, []string{"status"}, "records one test restore, now"},
	{[]string{"man", "completions"}, []string{"gendocs"}, "where the documents go"},
	{[]string{"root"}, []string{"schedule"}, "writes the units under another root (images, tests)"},
	{[]string{"binary"}, []string{"schedule"}, "the binary this installation's units run"},
	{[]string{"run-dir"}, []string{"backup", "recover-services"}, "hidden, for tests: the marker folder is /run/backupctl on a Pi"},
	{[]string{"systemctl"}, []string{"status"}, "hidden, for tests: the systemctl binary"},
}

// isNotSetting reports whether flag of the command at path (below
// backupctl, "" for backupctl itself) is in notSettings.
func isNotSetting(path, flag string) bool {
	for _, n := range notSettings {
		if slices.Contains(n.flags, flag) && (slices.Contains(n.commands, "*") || slices.Contains(n.commands, path)) {
			return true
		}
	}
	return false
}

// notSettingsHelp lists notSettings for `backupctl config --help`.
func notSettingsHelp() string {
	var b strings.Builder
	seen := map[string]bool{}
	for _, n := range notSettings {
		for _, f := range n.flags {
			if seen[f] || f == "help" || f == "version" {
				continue
			}
			seen[f] = true
			b.WriteString(" --" + f)
		}
	}
	return strings.TrimSpace(b.String())
}

// wrap fills words into lines of at most width bytes, each starting with
// indent.
func wrap(text, indent string, width int) string {
	var lines []string
	line := indent
	for _, w := range strings.Fields(text) {
		if line != indent && len(line)+1+len(w) > width {
			lines = append(lines, line)
			line = indent
		}
		if line != indent {
			line += " "
		}
		line += w
	}
	return strings.Join(append(lines, line), "\n")
}
