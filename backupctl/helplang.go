package main

import (
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/pibackup/pibackup/internal/config"
	"github.com/pibackup/pibackup/internal/i18n"
)

// argsLang is the language of help and error lines: --lang in args, else
// LC_ALL, LC_MESSAGES or LANG. cobra prints help before a command reads
// its flags, so --lang is looked for in the raw arguments (up to "--",
// after which they belong to someone else). A bad --lang gives English
// here; the command that takes --lang reports it.
func argsLang(args []string, getenv func(string) string) i18n.Lang {
	var flag string
	for i, s := range args {
		if s == "--" {
			break
		}
		if v, ok := strings.CutPrefix(s, "--lang="); ok {
			flag = v
		} else if s == "--lang" && i+1 < len(args) {
			flag = args[i+1]
		}
	}
	l, err := i18n.Pick(flag, getenv)
	if err != nil {
		return i18n.English
	}
	return l
}

// usageDE is cobra's usage template in German (this tree uses no groups,
// aliases or examples, so those parts are left out).
const usageDE = `Aufruf:{{if .Runnable}}
  {{.UseLine}}{{end}}{{if .HasAvailableSubCommands}}
  {{.CommandPath}} [Befehl]{{end}}{{if .HasAvailableSubCommands}}

Befehle:{{range .Commands}}{{if (or .IsAvailableCommand (eq .Name "help"))}}
  {{rpad .Name .NamePadding }} {{.Short}}{{end}}{{end}}{{end}}{{if .HasAvailableLocalFlags}}

Optionen:
{{.LocalFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}{{if .HasAvailableInheritedFlags}}

Globale Optionen:
{{.InheritedFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}{{if .HasAvailableSubCommands}}

"{{.CommandPath}} [Befehl] --help" zeigt mehr zu einem Befehl.{{end}}
`

// translateHelp puts the summaries and flag help of the tree into p's
// language. cobra adds its help and completion commands and its --help
// and --version flags only when it runs, so they are added here first to
// be translated too. A text without a translation stays English (the
// help test walks the tree and fails on it).
func translateHelp(root *cobra.Command, p *i18n.Printer) {
	if p.Lang() == i18n.English {
		return
	}
	root.SetUsageTemplate(usageDE)
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		c.InitDefaultHelpFlag()
		c.InitDefaultVersionFlag()
		path := commandPath(c)
		if id := i18n.CLICommand(path); known(id, p) {
			c.Short = p.Sprintf(id)
		}
		translate := func(f *pflag.Flag) {
			if id, args, ok := flagHelpID(c, path, f.Name, p); ok {
				f.Usage = p.Sprintf(id, args...)
			}
		}
		c.PersistentFlags().VisitAll(translate)
		c.Flags().VisitAll(translate)
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
}

// commandPath is the path of c below the root ("" for the root).
func commandPath(c *cobra.Command) string {
	var parts []string
	for ; c.HasParent(); c = c.Parent() {
		parts = append([]string{c.Name()}, parts...)
	}
	return strings.Join(parts, " ")
}

// flagHelpID finds the message of flag name of the command at path: its
// own for this command, the setting's, or the one shared by all commands.
func flagHelpID(c *cobra.Command, path, name string, p *i18n.Printer) (i18n.ID, []any, bool) {
	switch name {
	case "help":
		return i18n.CLIFlagHelp, []any{c.Name()}, true
	case "version":
		return i18n.CLIFlagVersion, []any{c.Name()}, true
	}
	if id := i18n.CLIFlag(path, name); known(id, p) {
		return id, nil, true
	}
	if o, ok := config.OptionForFlag(name); ok && !isNotSetting(path, name) {
		return i18n.CLIOption(o.Key), nil, true
	}
	if id := i18n.CLIFlag("", name); known(id, p) {
		return id, nil, true
	}
	return "", nil, false
}

func known(id i18n.ID, p *i18n.Printer) bool {
	_, ok := i18n.Format(id, p.Lang())
	return ok
}
