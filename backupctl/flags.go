package main

import (
	"slices"
	"strings"
)

// notSetting is a flag that is not a setting: it says what one
// invocation does, to what, or where its output goes, so a config file
// that set it would change every run in a way no one asked for.
type notSetting struct {
	flag     string
	commands []string // command paths below backupctl; "*" for every command
	why      string
}

// notSettings lists every flag that has no config key. Every other flag
// of every command is an option of the config table (internal/config),
// with one key, one type and one meaning wherever it appears; the
// settings test walks the command tree and checks both ways. Keep this
// list short: a flag belongs here only when a config file must not set it.
var notSettings = []notSetting{
	{"config", []string{"*"}, "names the config file itself"},
	{"help", []string{"*"}, "cobra's help"},
	{"version", []string{""}, "prints the version"},
	{"verbose", []string{""}, "how much this invocation prints on the terminal"},
	{"dry-run", []string{"backup", "restore", "clone", "retention"}, "a preview of this run; set in a file, no backup would ever be written"},
	{"to", []string{"restore", "clone", "extract"}, "the target of this restore, clone or extract"},
	{"size", []string{"restore", "clone"}, "the size of the new image file this run creates"},
	{"yes", []string{"restore", "clone"}, "confirms this overwrite; a file must not confirm every overwrite"},
	{"keep-ids", []string{"restore"}, "whether this target replaces the source's card (same ids) or runs beside it"},
	{"partitions", []string{"restore"}, "which partitions of this set to restore (the partitions setting says what backup saves)"},
	{"source-disk", []string{"backup", "clone"}, "the disk of this run instead of the running system"},
	{"name", []string{"backup"}, "names one snapshot, which retention never removes; a file would make every set one"},
	{"json", []string{"list", "diff", "restore-test"}, "the output format of this run, for scripts"},
	{"list", []string{"verify"}, "the output of this run"},
	{"output", []string{"config import"}, "where this import writes"},
	{"force", []string{"config import"}, "overwrites the file this import writes"},
	{"record-restore-test", []string{"status"}, "records one test restore, now"},
	{"man", []string{"gendocs"}, "where the documents go"},
	{"completions", []string{"gendocs"}, "where the documents go"},
	{"root", []string{"schedule"}, "writes the units under another root (images, tests)"},
	{"binary", []string{"schedule"}, "the binary this installation's units run"},
	{"run-dir", []string{"backup", "recover-services"}, "hidden, for tests: the marker folder is /run/backupctl on a Pi"},
	{"systemctl", []string{"status"}, "hidden, for tests: the systemctl binary"},
}

// isNotSetting reports whether flag of the command at path (below
// backupctl, "" for backupctl itself) is in notSettings.
func isNotSetting(path, flag string) bool {
	for _, n := range notSettings {
		if n.flag == flag && (slices.Contains(n.commands, "*") || slices.Contains(n.commands, path)) {
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
		if seen[n.flag] || n.flag == "help" || n.flag == "version" {
			continue
		}
		seen[n.flag] = true
		b.WriteString(" --" + n.flag)
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
