package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"text/template"
	"time"

	"github.com/spf13/cobra"

	"github.com/pibackup/pibackup/internal/backuprun"
	"github.com/pibackup/pibackup/internal/config"
	"github.com/pibackup/pibackup/internal/i18n"
)

const (
	serviceUnit     = "backupctl.service"
	timerUnit       = "backupctl.timer"
	testServiceUnit = "backupctl-restore-test.service"
	testTimerUnit   = "backupctl-restore-test.timer"
	unitDir         = "etc/systemd/system"
)

// The restore test's units (schedule install --restore-test): its own
// service and timer, so a failed test shows as a failed unit and the
// backup's timer stays as it is. The test takes the backup's lock, so the
// two never run at once (the later one fails with exit 5 and the unit
// says so).
const testServiceTemplate = `# Written by ` + "`backupctl schedule install --restore-test`" + `; ` + "`backupctl schedule remove`" + ` deletes it.
# Restores the newest set of this host into a scratch image in /var/tmp and
# checks that it would start (see ` + "`backupctl help restore-test`" + `).
[Unit]
Description=Test that the newest backupctl backup restores
Wants=network-online.target
After=network-online.target local-fs.target remote-fs.target

[Service]
Type=oneshot
ExecStart={{.ExecStart}}
Nice=15
IOSchedulingClass=idle
CPUSchedulingPolicy=batch
SyslogIdentifier=backupctl-restore-test
`

const testTimerTemplate = `# Written by ` + "`backupctl schedule install --restore-test`" + `; ` + "`backupctl schedule remove`" + ` deletes it.
[Unit]
Description=Scheduled backupctl restore test

[Timer]
OnCalendar={{.OnCalendar}}
Persistent=true
RandomizedDelaySec=1h
FixedRandomDelay=true
AccuracySec=1min

[Install]
WantedBy=timers.target
`

// The unit templates follow packaging/systemd/ (a test checks that every
// directive there is here too); they are copies because go:embed cannot
// reach outside the package folder. What install fills in: the binary,
// the backup's flags, the calendar, and ExecStopPost, which starts the
// services of a backup that was killed (see recover-services).
const serviceTemplate = `# Written by ` + "`backupctl schedule install`" + `; ` + "`backupctl schedule remove`" + ` deletes it.
# Runs one backup with the settings of /etc/backupctl/backupctl.conf (and
# /usr/local/etc/backupctl.conf). Started by backupctl.timer; start it by
# hand with ` + "`systemctl start backupctl.service`" + ` to test the setup.
[Unit]
Description=Back up this Raspberry Pi with backupctl
# The backup target is usually a network share or a USB disk: wait for the
# network and for local mounts. Add RequiresMountsFor=/backup in a drop-in
# (systemctl edit backupctl.service) when the target is a mount point.
Wants=network-online.target
After=network-online.target local-fs.target remote-fs.target time-sync.target

[Service]
Type=oneshot
ExecStart={{.ExecStart}}
# backupctl starts the services it stopped itself, also after an error or
# SIGTERM; only a killed process cannot. This runs after every end of the
# service and does nothing unless a killed run left services stopped.
ExecStopPost={{.ExecStopPost}}
# backupctl stops and restarts services itself, always; give it time to do
# so after SIGTERM instead of killing it mid-restart.
KillMode=mixed
TimeoutStopSec=10min
# Stay out of the way of the services the Pi is there for.
Nice=10
IOSchedulingClass=idle
CPUSchedulingPolicy=batch
# Journal lines tagged backupctl (journalctl -t backupctl).
SyslogIdentifier=backupctl
`

const timerTemplate = `# Written by ` + "`backupctl schedule install`" + `; ` + "`backupctl schedule remove`" + ` deletes it.
# Persistent=true runs a missed backup after boot (a Pi that was off at
# the time); RandomizedDelaySec spreads many Pis backing up to the same NAS.
[Unit]
Description=Scheduled backupctl backup

[Timer]
OnCalendar={{.OnCalendar}}
Persistent=true
RandomizedDelaySec=30min
# Keep the spread the same every day for one Pi, so backups stay ~24h apart.
FixedRandomDelay=true
AccuracySec=1min

[Install]
WantedBy=timers.target
`

type scheduleOptions struct {
	cfg         *config.Flags
	root        string
	onCalendar  string
	restoreTest string
	binary      string
}

func (a *app) newScheduleCmd() *cobra.Command {
	var o scheduleOptions
	cmd := &cobra.Command{
		Use:   "schedule install|remove [--on-calendar EXPR] [-- BACKUP FLAGS...]",
		Short: "Install or remove the systemd timer that runs backups",
		Long: `install writes /etc/systemd/system/backupctl.service and backupctl.timer,
reloads systemd and enables the timer. Everything after -- is passed to
` + "`backupctl backup`" + ` (BACKUPDIR included, or set backup-path in
/etc/backupctl/backupctl.conf). remove disables the timer and deletes both
files. With --root DIR the files are written under DIR and systemctl is
not run (for images and tests).

--on-calendar takes a systemd calendar expression (man systemd.time),
e.g. "daily", "Sun *-*-* 05:00", "Mon..Fri 22:30"; it is checked with
systemd-analyze when that is installed.

Examples:
  backupctl schedule install -- -t rsync -k 5 /mnt/backup
  backupctl schedule install --on-calendar "Sun *-*-* 05:00" -- -f /etc/backupctl/nas.conf
  backupctl schedule install --restore-test weekly -- /mnt/backup
  backupctl schedule remove

--restore-test adds backupctl-restore-test.service and .timer, which run
` + "`backupctl restore-test`" + ` on the newest set (of the backup folder given
after --, else of backup-path) on their own calendar.
` + exitStatusHelp,
		Args: func(cmd *cobra.Command, args []string) error {
			dash := cmd.ArgsLenAtDash()
			verbs := args
			if dash >= 0 {
				verbs = args[:dash]
			}
			if len(verbs) != 1 || (verbs[0] != "install" && verbs[0] != "remove") {
				return fmt.Errorf("accepts install or remove, then -- and the backup's flags; got %q", verbs)
			}
			if verbs[0] == "remove" && dash >= 0 && len(args) > dash {
				return errors.New("remove takes no backup flags")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := a.loadConfig(o.cfg)
			if err != nil {
				return err
			}
			o.onCalendar, o.restoreTest = l.Config.ScheduleOnCalendar, l.Config.ScheduleRestoreTest
			lang, err := i18n.Pick(l.Config.Lang, os.Getenv)
			if err != nil {
				return withCode(exitUsage, err)
			}
			msg := i18n.New(lang)
			var backupArgs []string
			if dash := cmd.ArgsLenAtDash(); dash >= 0 {
				backupArgs = args[dash:]
			}
			if args[0] == "remove" {
				return a.scheduleRemove(cmd.Context(), o, msg)
			}
			return a.scheduleInstall(cmd.Context(), o, backupArgs, msg)
		},
	}
	cmd.Flags().StringVar(&o.root, "root", "/", "write the units under this folder instead of / (then systemctl is not run)")
	cmd.Flags().StringVar(&o.binary, "binary", "", "backupctl binary the service runs (default: this one)")
	o.cfg = config.AddFlags(cmd.Flags(), config.CmdSchedule)
	return cmd
}

// unitValues are what the templates are filled with.
type unitValues struct {
	ExecStart, ExecStopPost, OnCalendar string
}

// renderTestUnits renders the restore test's service and timer. The
// backup's BACKUPDIR, when its arguments end in one, is the test's too.
func renderTestUnits(binary string, backupArgs []string, onCalendar string) (service, timer string, err error) {
	if strings.ContainsAny(onCalendar, "\n\r") || strings.TrimSpace(onCalendar) == "" {
		return "", "", fmt.Errorf("--restore-test %q: want one calendar expression", onCalendar)
	}
	exec := []string{systemdQuote(binary), "restore-test"}
	if n := len(backupArgs); n > 0 && filepath.IsAbs(backupArgs[n-1]) && (n == 1 || !strings.HasPrefix(backupArgs[n-2], "-") || strings.Contains(backupArgs[n-2], "=")) {
		exec = append(exec, systemdQuote(backupArgs[n-1]))
	}
	v := unitValues{ExecStart: strings.Join(exec, " "), OnCalendar: strings.ReplaceAll(onCalendar, "%", "%%")}
	var sb, tb strings.Builder
	if err := template.Must(template.New("service").Parse(testServiceTemplate)).Execute(&sb, v); err != nil {
		return "", "", err
	}
	if err := template.Must(template.New("timer").Parse(testTimerTemplate)).Execute(&tb, v); err != nil {
		return "", "", err
	}
	return sb.String(), tb.String(), nil
}

// renderUnits renders the service and the timer. Pure, for tests.
func renderUnits(binary string, backupArgs []string, onCalendar string) (service, timer string, err error) {
	if !filepath.IsAbs(binary) {
		return "", "", fmt.Errorf("binary %q: systemd needs an absolute path", binary)
	}
	if strings.ContainsAny(onCalendar, "\n\r") || strings.TrimSpace(onCalendar) == "" {
		return "", "", fmt.Errorf("--on-calendar %q: want one calendar expression", onCalendar)
	}
	exec := []string{systemdQuote(binary), "backup"}
	for _, a := range backupArgs {
		exec = append(exec, systemdQuote(a))
	}
	v := unitValues{
		ExecStart:    strings.Join(exec, " "),
		ExecStopPost: systemdQuote(binary) + " recover-services",
		OnCalendar:   strings.ReplaceAll(onCalendar, "%", "%%"),
	}
	var sb, tb strings.Builder
	if err := template.Must(template.New("service").Parse(serviceTemplate)).Execute(&sb, v); err != nil {
		return "", "", err
	}
	if err := template.Must(template.New("timer").Parse(timerTemplate)).Execute(&tb, v); err != nil {
		return "", "", err
	}
	return sb.String(), tb.String(), nil
}

// plainWord is an argument systemd takes as it is.
var plainWord = regexp.MustCompile(`^[A-Za-z0-9_@+=:,./-]+$`)

// systemdQuote quotes one ExecStart argument for systemd's own splitting
// (systemd.service "Command lines"): double quotes with C escapes, "%%"
// for a literal % (specifiers) and "$$" for a literal $ (variables).
func systemdQuote(s string) string {
	if plainWord.MatchString(s) {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '%':
			b.WriteString("%%")
		case '$':
			b.WriteString("$$")
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func (a *app) scheduleInstall(ctx context.Context, o scheduleOptions, backupArgs []string, msg *i18n.Printer) error {
	bin := o.binary
	if bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("schedule: find this binary: %w; give --binary", err)
		}
		if bin, err = filepath.EvalSymlinks(exe); err != nil {
			return fmt.Errorf("schedule: %w", err)
		}
	}
	if err := checkCalendar(ctx, o.onCalendar); err != nil {
		return withCode(exitUsage, err)
	}
	service, timer, err := renderUnits(bin, backupArgs, o.onCalendar)
	if err != nil {
		return withCode(exitUsage, fmt.Errorf("schedule: %w", err))
	}
	dir := filepath.Join(o.root, unitDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return preflight(fmt.Errorf("schedule: %w", err))
	}
	sp, tp := filepath.Join(dir, serviceUnit), filepath.Join(dir, timerUnit)
	if err := backuprun.WriteFileAtomic(sp, []byte(service), 0o644); err != nil {
		return fmt.Errorf("schedule: %w", err)
	}
	if err := backuprun.WriteFileAtomic(tp, []byte(timer), 0o644); err != nil {
		return fmt.Errorf("schedule: %w", err)
	}
	enable := [][]string{{"daemon-reload"}, {"enable", "--now", timerUnit}}
	if o.restoreTest != "" {
		if err := checkCalendar(ctx, o.restoreTest); err != nil {
			return withCode(exitUsage, fmt.Errorf("--restore-test: %w", err))
		}
		ts, tt, err := renderTestUnits(bin, backupArgs, o.restoreTest)
		if err != nil {
			return withCode(exitUsage, fmt.Errorf("schedule: %w", err))
		}
		tsp, ttp := filepath.Join(dir, testServiceUnit), filepath.Join(dir, testTimerUnit)
		if err := backuprun.WriteFileAtomic(tsp, []byte(ts), 0o644); err != nil {
			return fmt.Errorf("schedule: %w", err)
		}
		if err := backuprun.WriteFileAtomic(ttp, []byte(tt), 0o644); err != nil {
			return fmt.Errorf("schedule: %w", err)
		}
		enable = append(enable, []string{"enable", "--now", testTimerUnit})
		fmt.Fprintln(a.stdout, msg.Sprintf(i18n.ScheduleInstalled, tsp, ttp, o.restoreTest))
	}
	if isRealRoot(o.root) {
		for _, argv := range enable {
			if err := systemctl(ctx, argv...); err != nil {
				return fmt.Errorf("schedule: units written, but %w", err)
			}
		}
	}
	fmt.Fprintln(a.stdout, msg.Sprintf(i18n.ScheduleInstalled, sp, tp, o.onCalendar))
	return nil
}

func (a *app) scheduleRemove(ctx context.Context, o scheduleOptions, msg *i18n.Printer) error {
	dir := filepath.Join(o.root, unitDir)
	sp, tp := filepath.Join(dir, serviceUnit), filepath.Join(dir, timerUnit)
	tsp, ttp := filepath.Join(dir, testServiceUnit), filepath.Join(dir, testTimerUnit)
	if isRealRoot(o.root) {
		// A timer that is not enabled is fine: remove is idempotent.
		_ = systemctl(ctx, "disable", "--now", timerUnit)
		if _, err := os.Stat(ttp); err == nil {
			_ = systemctl(ctx, "disable", "--now", testTimerUnit)
		}
	}
	var errs []error
	for _, p := range []string{tp, sp, ttp, tsp} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("schedule remove: %w", err)
	}
	if isRealRoot(o.root) {
		if err := systemctl(ctx, "daemon-reload"); err != nil {
			return fmt.Errorf("schedule remove: %w", err)
		}
	}
	fmt.Fprintln(a.stdout, msg.Sprintf(i18n.ScheduleRemoved, sp, tp))
	return nil
}

func isRealRoot(root string) bool {
	r, err := filepath.Abs(root)
	return err == nil && r == "/"
}

func systemctl(ctx context.Context, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "systemctl", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("systemctl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// checkCalendar lets systemd-analyze judge the expression when it is
// installed; the timer would otherwise fail only at daemon-reload.
func checkCalendar(ctx context.Context, expr string) error {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "systemd-analyze", "calendar", "--", expr).CombinedOutput()
	if err != nil {
		return fmt.Errorf("--on-calendar %q: %s", expr, strings.TrimSpace(string(out)))
	}
	return nil
}
