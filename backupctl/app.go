package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pibackup/pibackup/internal/config"
	"github.com/pibackup/pibackup/internal/i18n"
)

// Build information, set with -ldflags "-X main.version=... -X main.commit=... -X main.date=...".
var (
	version = "dev"
	commit  = ""
	date    = ""
)

// app is what every subcommand gets: the streams and a logger, never
// globals, so tests run the CLI in-process.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	log            *slog.Logger
	// msg is the language of help and of the line that says why a command
	// failed: --lang or the locale, then the lang setting once a command
	// has loaded its configuration.
	msg *i18n.Printer
	// loaded, if set, sees every merged configuration a command loads,
	// and its error ends the command there: the settings test stops each
	// command right after its flags and files are merged.
	loaded func(*config.Loaded) error
	clock  func() time.Time // nil: the real clock; see testNowEnv
}

const quickStart = `

QUICK START (as root; details: /usr/share/doc/backupctl/USAGE.md.gz)
  USB disk:  mount it (fstab, LABEL=...) on /mnt/usb-backup; backupctl backup /mnt/usb-backup
  NAS:       mount the NFS/SMB share (fstab, _netdev) on /mnt/nas; backupctl backup -t tgz /mnt/nas
  SFTP:      sshfs backup@server:/srv/pi-backups /mnt/sftp-backup; backupctl backup -t tgz /mnt/sftp-backup
  Nightly:   set backup-path in /etc/backupctl/backupctl.conf; systemctl enable --now backupctl.timer
  Restore:   boot the recovery card, or backupctl restore SETDIR --to /dev/sdX
`

const exitStatusHelp = `
EXIT STATUS
  0    success
  1    the operation failed (one line on stderr says why)
  2    bad command line
  3    a check before writing failed (free space, target, source); nothing was written
  4    a set did not verify
  5    another run holds the lock: a backup of this host, or a restore or clone onto this target
  130  cancelled by a signal; partial output was removed
`

func versionString() string {
	c, d := commit, date
	if c == "" {
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				switch s.Key {
				case "vcs.revision":
					c = s.Value
				case "vcs.time":
					d = s.Value
				}
			}
		}
	}
	return fmt.Sprintf("backupctl %s (commit %s, built %s)", version, orDash(c), orDash(d))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr,
		log: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		msg: i18n.New(argsLang(args, os.Getenv))}
	clock, testClock, err := clockFrom(os.Getenv, time.Now)
	if err != nil {
		fmt.Fprintf(stderr, "backupctl: %s\n", err)
		return exitUsage
	}
	if testClock {
		// Sets dated by a test clock on a real Pi would be pruned on the
		// wrong days: say so on every run.
		fmt.Fprintf(stderr, "backupctl: warning: test clock in use (%s=%s)\n", testNowEnv, os.Getenv(testNowEnv))
	}
	a.clock = clock
	root := a.rootCmd()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	started := false
	onRun(root, func() { started = true })
	err = root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	if !started {
		// cobra failed before any command ran: an unknown command or
		// flag, a bad flag value, the wrong number of arguments.
		err = withCode(exitUsage, err)
	}
	code := exitCode(err)
	line := strings.TrimSpace(a.errorLine(code, err))
	if hint := flagHint(err); hint != "" {
		line += "; " + hint
	}
	fmt.Fprintf(stderr, "backupctl: %s\n", line)
	return code
}

// exitReasons name, per exit code, why a command failed; in English the
// error says it, in German the reason comes before the English details.
var exitReasons = map[int]i18n.ID{
	exitFailure:   i18n.CLIErrFailed,
	exitUsage:     i18n.CLIErrUsage,
	exitPreflight: i18n.CLIErrPreflight,
	exitVerify:    i18n.CLIErrVerify,
	exitLocked:    i18n.CLIErrLocked,
	exitCancelled: i18n.CLIErrCancelled,
}

// errorLine is the line that says why a command failed, in the user's
// language. A result line a command has translated itself is printed as
// it is.
func (a *app) errorLine(code int, err error) string {
	var done *msgError
	if errors.As(err, &done) {
		return err.Error()
	}
	return a.msg.Sprintf(exitReasons[code], a.msg.Translate(err))
}

// rootCmd builds the command tree: backupctl, its persistent flags and
// every subcommand.
func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "backupctl",
		Short:         "Back up, verify, list, restore and clone Raspberry Pi systems (raspiBackup-compatible)",
		Long:          "backupctl backs up a running Raspberry Pi into raspiBackup's backup layout\n(dd, ddz, tar, tgz and rsync sets) and restores, verifies, lists and clones them." + quickStart + exitStatusHelp,
		Version:       versionString(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate("{{.Version}}\n")
	var verbose bool
	root.PersistentFlags().BoolVarP(&verbose, "verbose", "v", false, "log progress details to stderr")
	root.PersistentPreRun = func(*cobra.Command, []string) {
		if verbose {
			a.log = slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
		}
	}
	root.AddCommand(a.commands()...)
	if a.msg != nil {
		translateHelp(root, a.msg)
	}
	return root
}
