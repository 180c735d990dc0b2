package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pibackup/pibackup/internal/config"
	"github.com/pibackup/pibackup/internal/i18n"
)

// raspiBackupConf is where raspiBackup keeps its system config.
const raspiBackupConf = "/usr/local/etc/raspiBackup.conf"

// configSources are the standard config files for this user, plus -f.
func configSources(explicit string) config.Sources {
	home, _ := os.UserHomeDir() // no home (a service): no user file
	return config.DefaultSources(home, explicit)
}

// loadConfig merges the config files and flags and prints its warnings.
func (a *app) loadConfig(flags *config.Flags) (*config.Loaded, error) {
	l, err := config.Load(configSources(flags.File), flags)
	if err != nil {
		if errors.Is(err, config.ErrInsecure) {
			return nil, err // not the command line: the file's mode (exitCode)
		}
		return nil, withCode(exitUsage, err)
	}
	for _, w := range l.Warnings {
		fmt.Fprintf(a.stderr, "backupctl: warning: %s\n", w)
	}
	// From here on a failure is reported in the language the command
	// speaks; an invalid lang is the command's own error to report.
	if lang, err := i18n.Pick(l.Config.Lang, os.Getenv); err == nil {
		a.msg = i18n.New(lang)
	}
	if a.loaded != nil {
		if err := a.loaded(l); err != nil {
			return nil, err
		}
	}
	return l, nil
}

func (a *app) newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show the merged configuration, or import a raspiBackup config",
		Long: `Settings come from, in rising precedence:
  /etc/backupctl/backupctl.conf, /usr/local/etc/backupctl.conf,
  ~/.config/backupctl/config, ./backupctl.conf, -f FILE, command-line flags.
The files are TOML; every setting is also a flag of the same name (a
dotted key's flag has "-" for "."; ` + "`backupctl config show --help`" + ` lists
them all). Secrets (smtp.password, webhook.url, webhook.token...) are
refused in a file that group or others can read, and are never printed.

These flags are not settings; they say what one run does, to what, or
where its output goes, and have no key:
` + wrap(notSettingsHelp(), "  ", 76) + `
` + exitStatusHelp,
	}
	cmd.AddCommand(a.newConfigShowCmd(), a.newConfigImportCmd())
	return cmd
}

func (a *app) newConfigShowCmd() *cobra.Command {
	var flags *config.Flags
	cmd := &cobra.Command{
		Use:   "show [-f FILE] [--OPTION VALUE]...",
		Short: "Print the merged configuration with the origin of each value",
		Long: `Print every setting as TOML, each followed by where its value came from
(default, a file, or a flag). Secrets are masked. Flags given here are
merged as the backup command would merge them, so this shows what a run
with the same flags would use.

Examples:
  backupctl config show
  backupctl config show -f /etc/backupctl/nas.conf --keep 10
` + exitStatusHelp,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			l, err := a.loadConfig(flags)
			if err != nil {
				return err
			}
			if err := l.Config.Validate(); err != nil {
				fmt.Fprintf(a.stderr, "backupctl: warning: the configuration would not run: %v\n", err)
			}
			return config.Show(a.stdout, l)
		},
	}
	flags = config.AddFlags(cmd.Flags(), "")
	return cmd
}

func (a *app) newConfigImportCmd() *cobra.Command {
	var out string
	var force bool
	cmd := &cobra.Command{
		Use:   "import [-o FILE] [RASPIBACKUP_CONF]",
		Short: "Translate a raspiBackup.conf into a backupctl config",
		Long: `Read raspiBackup's DEFAULT_* settings (default file ` + raspiBackupConf + `)
and print the equivalent backupctl config, or write it to -o FILE (created
with mode 0600, never overwritten without --force). The file is parsed, not
sourced: nothing in it runs. Settings that have no equivalent, or that need
a shell to evaluate, are listed on stderr and left out.

Examples:
  backupctl config import
  backupctl config import -o /etc/backupctl/backupctl.conf /usr/local/etc/raspiBackup.conf
` + exitStatusHelp,
		Args: cobra.MaximumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			in := raspiBackupConf
			if len(args) == 1 {
				in = args[0]
			}
			return a.runConfigImport(in, out, force)
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "write the config to this file (mode 0600) instead of stdout")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite the -o file if it exists")
	return cmd
}

func (a *app) runConfigImport(in, out string, force bool) error {
	data, err := os.ReadFile(in)
	if err != nil {
		return preflight(fmt.Errorf("config import: %w", err))
	}
	imp, err := config.ImportRaspiBackup(string(data))
	if err != nil {
		return fmt.Errorf("config import %s: %w", in, err)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# backupctl config imported from %s\n", in)
	for _, n := range imp.Notes {
		fmt.Fprintf(&b, "# note: %s\n", n)
	}
	if err := config.WriteTOML(&b, imp.Config, imp.Set); err != nil {
		return err
	}
	a.reportImport(imp)
	if len(imp.Unknown) > 0 {
		fmt.Fprintf(a.stderr, "backupctl: unknown keys (not raspiBackup settings): %s\n", strings.Join(imp.Unknown, ", "))
	}
	if out == "" {
		if len(imp.Config.Secrets()) > 0 {
			fmt.Fprintln(a.stderr, "backupctl: warning: the output holds a secret; store it with mode 0600 (or use -o)")
		}
		_, err := a.stdout.Write(b.Bytes())
		return err
	}
	flag := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if force {
		flag = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(out, flag, 0o600)
	if errors.Is(err, os.ErrExist) {
		return preflight(fmt.Errorf("config import: %s exists; use --force to overwrite it", out))
	}
	if err != nil {
		return preflight(fmt.Errorf("config import: %w", err))
	}
	// An existing file keeps its mode on O_TRUNC; make sure it is private.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("config import: %w", err)
	}
	if _, err := f.Write(b.Bytes()); err != nil {
		f.Close()
		return fmt.Errorf("config import: write %s: %w", out, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("config import: write %s: %w", out, err)
	}
	fmt.Fprintf(a.stderr, "backupctl: wrote %s (%d settings)\n", out, len(imp.Set))
	return nil
}

// reportImport says on stderr what became of every key of the file: each
// key not imported with why (those with a value first: they are what
// changes), the ones left at backupctl's defaults, and a count.
func (a *app) reportImport(imp *config.Import) {
	var imported, same int
	var defaults []string
	for _, empty := range []bool{false, true} {
		for _, k := range imp.Keys {
			isEmpty := k.Value == "" || k.Value == "0"
			if !k.Dropped || isEmpty != empty {
				continue
			}
			if empty {
				fmt.Fprintf(a.stderr, "backupctl: not imported: %s (empty or 0, nothing is lost): %s\n", k.Key, k.Why)
			} else {
				fmt.Fprintf(a.stderr, "backupctl: not imported: %s: %s\n", k.Key, k.Why)
			}
		}
	}
	for _, s := range imp.Skipped {
		if !strings.HasPrefix(s, "DEFAULT_") && !strings.HasPrefix(s, "VERSION_CONFIG") {
			fmt.Fprintf(a.stderr, "backupctl: not imported: %s\n", s) // lines that are no assignment
		}
	}
	for _, k := range imp.Keys {
		switch {
		case len(k.To) > 0:
			imported++
		case !k.Dropped:
			same++
			defaults = append(defaults, k.Key)
		}
	}
	if len(defaults) > 0 {
		fmt.Fprintf(a.stderr, "backupctl: as backupctl's defaults (empty, off or the same value): %s\n", strings.Join(defaults, ", "))
	}
	fmt.Fprintf(a.stderr, "backupctl: %d raspiBackup keys: %d imported, %d as backupctl's defaults, %d not imported\n",
		len(imp.Keys), imported, same, len(imp.Keys)-imported-same)
}
