package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/pibackup/pibackup/internal/backup"
	"github.com/pibackup/pibackup/internal/backuprun"
	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/config"
	"github.com/pibackup/pibackup/internal/hooks"
	"github.com/pibackup/pibackup/internal/i18n"
	"github.com/pibackup/pibackup/internal/notify"
	"github.com/pibackup/pibackup/internal/payload"
	"github.com/pibackup/pibackup/internal/progress"
	"github.com/pibackup/pibackup/internal/runlog"
	"github.com/pibackup/pibackup/internal/services"
	"github.com/pibackup/pibackup/internal/size"
	"github.com/pibackup/pibackup/internal/store"
)

// defaultRunDir holds the marker of services a running backup has
// stopped. /run is a tmpfs: after a reboot the marker is gone, and so is
// the need to start anything.
const defaultRunDir = "/run/backupctl"

// backupOptions are the flags of `backupctl backup` that are not
// settings: what this one run does (dry run, a named snapshot, another
// source disk). Every setting (type, compression, keep, services,
// hooks, e-mail, language...) comes from config.AddFlags, one flag per
// option of the config table, so `-t tgz` here and `type = "tgz"` in a
// file are the same setting.
type backupOptions struct {
	name       string
	sourceDisk string
	dryRun     bool
	runDir     string
	cfg        *config.Flags
}

func (o *backupOptions) addFlags(f *pflag.FlagSet) {
	f.StringVarP(&o.name, "name", "M", "", "make a named snapshot (never removed by retention)")
	f.StringVar(&o.sourceDisk, "source-disk", "", "back up this unmounted disk (e.g. /dev/sdb) or image file (e.g. pi.img) instead of the running system")
	f.BoolVarP(&o.dryRun, "dry-run", "F", false, "check everything and print the plan; write nothing, run no hooks, stop no services")
	f.StringVar(&o.runDir, "run-dir", defaultRunDir, "folder for the marker of stopped services (see recover-services)")
	_ = f.MarkHidden("run-dir") // for tests; the default is right on a Pi
	o.cfg = config.AddFlags(f, config.CmdBackup)
}

// engineOptions turns the flags and the merged config into the engine's
// options.
func (o *backupOptions) engineOptions(target string, c *config.Config) (backup.Options, error) {
	t, err := backupset.ParseType(c.Type)
	if err != nil {
		return backup.Options{}, err
	}
	var cz backupset.Compression
	// gzip is raspiBackup's -z (DEFAULT_ZIP_BACKUP=1), which rsync sets
	// ignore: a converted config often has it next to type rsync. Any
	// other value goes to the engine, which refuses what a type lacks.
	if c.Compress != "" && (t != backupset.TypeRsync || c.Compress != string(backupset.CompressGzip)) {
		if cz, err = backupset.ParseCompression(c.Compress); err != nil {
			return backup.Options{}, fmt.Errorf("compress: %w", err)
		}
	}
	eo := backup.Options{
		Target: target, Type: t, Compression: cz, UsedPartitionsOnly: c.UsedPartitionsOnly,
		Snapshot: o.name, Excludes: c.Exclude, SourceDisk: o.sourceDisk, DryRun: o.dryRun,
		BootTar: c.BootTar, Hostname: c.Hostname, ToolVersion: versionString(), FullRead: c.FullRead,
		CopyBootFiles: !c.LinkBootFiles,
	}
	if c.Partitions != "" {
		if eo.Partitions, eo.AllPartitions, err = backup.ParsePartitions(c.Partitions); err != nil {
			return backup.Options{}, fmt.Errorf("-P: %w", err)
		}
	}
	if len(c.EncryptTo) > 0 || c.EncryptPassFile != "" {
		if eo.Encrypt, err = payload.NewSealer(c.EncryptTo, c.EncryptPassFile); err != nil {
			return backup.Options{}, err
		}
	}
	return eo, nil
}

const backupLong = `Back up a Raspberry Pi into raspiBackup's layout:
BACKUPDIR/<host>/<host>@<os>-<type>-backup-<YYYYMMDD-HHMMSS>[_<name>]/

Types: dd (image of the whole disk), ddz (compressed image), tar and tgz
(archive of the root filesystem plus an image of the boot partition), rsync
(a tree of the root filesystem; unchanged files are hardlinked to the
previous rsync set of the same host and OS release). With -P, each selected
partition is saved on its own as <part>.tar[.zst]/.tgz or <part>/.

Without --source-disk the running system is backed up; with it, an
unmounted disk or image (its root is mounted read-only in a private folder).
Without BACKUPDIR, backup-path from the configuration is used. BACKUPDIR
may be a server's folder, no mount needed: sftp://user@host[:port]/path,
smb://user@host/share/path or s3://bucket/prefix. A set on a server is
written under <host>/tmp/ and renamed (SFTP, SMB), or written in place
with its manifest last (S3); rsync sets need a local or mounted folder.

A run goes: checks (space, lock, source) → pre-backup hooks → services
stop → ready hooks → the set is written under <host>/tmp/, verified
against its manifest and moved into place → post-backup hooks (they see
BACKUP_RC) → services start again, always, also after an error or
cancellation → retention (only after a complete, verified set; named
snapshots are never deleted) → notifications. The run log
<host>-backup.backupctl.log is inside the set; a failed run's log is kept as <host>/` + backuprun.FailedLogName + `.
If backupctl itself is killed, ` + "`backupctl recover-services`" + ` starts
what it stopped (the systemd unit runs it as ExecStopPost).

Every configuration option is also a flag (see ` + "`backupctl config show`" + `).

Examples:
  backupctl backup /mnt/backup                         # rsync set of this Pi
  backupctl backup -t tgz -M "before upgrade" /mnt/backup
  backupctl backup -t tar -z zstd -u '/home/*/.cache' /mnt/backup
  backupctl backup -t dd --used-partitions-only --source-disk /dev/sdb /mnt/backup
  backupctl backup -P "*" -t tar --source-disk pi.img -F /mnt/backup
  backupctl backup -f /etc/backupctl/nas.conf -k 5 --service docker:nextcloud /mnt/nas
  backupctl backup -t tgz sftp://pi@nas.lan/srv/backup
` + exitStatusHelp

func (a *app) newBackupCmd() *cobra.Command {
	var o backupOptions
	cmd := &cobra.Command{
		Use:   "backup [flags] [BACKUPDIR]",
		Short: "Back up the running system or a disk into a raspiBackup-compatible set",
		Long:  backupLong,
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := a.loadConfig(o.cfg)
			if err != nil {
				return err
			}
			c := l.Config
			if err := c.Validate(); err != nil {
				return withCode(exitUsage, fmt.Errorf("configuration: %w", err))
			}
			lang, err := i18n.Pick(c.Lang, os.Getenv)
			if err != nil {
				return withCode(exitUsage, err)
			}
			var target string
			switch {
			case len(args) == 1:
				target = args[0]
			case l.Origins["backup-path"] != config.OriginDefault:
				target = c.BackupPath
			default:
				return withCode(exitUsage, errors.New("no backup folder: give BACKUPDIR or set backup-path in the configuration"))
			}
			eo, err := o.engineOptions(target, c)
			if err != nil {
				return withCode(exitUsage, err)
			}
			br := backupRun{opts: eo, cfg: c, msg: i18n.New(lang), showProgress: c.Progress, runDir: o.runDir}
			if store.IsURL(target) {
				// A local folder is opened by the engine, which says
				// what to do when it is missing.
				if br.store, err = a.openStore(cmd.Context(), target, c, nil); err != nil {
					return err
				}
				defer br.store.Close()
			}
			return a.runBackup(cmd.Context(), br)
		},
	}
	o.addFlags(cmd.Flags())
	return cmd
}

// backupRun is one `backupctl backup`: the engine's options and the
// operations around the engine.
type backupRun struct {
	opts         backup.Options
	cfg          *config.Config
	msg          *i18n.Printer
	showProgress bool
	runDir       string
	store        store.Store // a server's folder; nil: opts.Target is a local one
}

// runBackup builds the run (internal/backuprun holds its phases and
// their order, see backupLong) and turns its result into the summary,
// the state file, the notification and the exit code.
func (a *app) runBackup(ctx context.Context, br backupRun) error {
	r := &backuprun.Run{Opts: br.opts, Config: br.cfg, Msg: br.msg, Log: a.log, Out: a.stdout, Stderr: a.stderr,
		RunDir: br.runDir, Version: versionString(), Now: a.now, Store: br.store,
		Console: func(h slog.Handler) slog.Handler { return consoleOnly{h} },
		RC: func(ctx context.Context, err error, stage backuprun.Stage) int {
			return exitCode(backupError(ctx, br.msg, backuprun.Result{Err: err, Stage: stage}))
		}}
	if br.showProgress {
		c := &progress.Counter{}
		r.Progress = c
		stop := startBackupBar(a.stderr, c)
		defer stop()
	}
	defer r.Close()
	res, _ := r.Execute(ctx)
	if br.opts.DryRun {
		return backupError(ctx, br.msg, res)
	}
	return a.finishBackup(ctx, br, res)
}

// finishBackup ends a run: summary and close of the run log, the state
// file for `backupctl status`, the notification, the result line and the
// exit code.
func (a *app) finishBackup(ctx context.Context, br backupRun, out backuprun.Result) error {
	err := backupError(ctx, br.msg, out)
	code := exitCode(err)
	var bytes int64
	var result string
	if out.Engine != nil && out.Engine.Manifest != nil {
		for _, f := range out.Engine.Manifest.Files {
			bytes += f.Size
		}
		result = br.msg.Sprintf(i18n.BackupComplete, out.SetDir, len(out.Engine.Manifest.Files), size.Format(bytes))
	}
	if rl := out.RunLog; rl != nil {
		rl.Summary(context.WithoutCancel(ctx), runlog.Summary{Operation: "backup", Set: out.Set, Type: out.Type,
			Bytes: bytes, Removed: out.Removed, Err: err})
		if cerr := rl.Close(); cerr != nil {
			a.log.Info("close run log", "error", cerr)
		}
	}
	remote := out.Store != nil && out.Store.Local() == "" && out.Host != ""
	if fi, serr := os.Stat(out.HostDir); remote || serr == nil && fi.IsDir() {
		rec := backupset.RunRecord{Start: out.Start, End: a.now(), Set: out.Set, OK: err == nil, ExitCode: code, Log: out.LogFile}
		if err != nil {
			rec.Error = err.Error()
		}
		if u, uerr := readUsage(); uerr == nil {
			rec.RunUsage = u
		} else {
			a.log.Info("cannot measure the run's cost", "error", uerr)
		}
		change := func(s *backupset.State) { s.LastRun = &rec }
		var serr error
		if remote {
			serr = updateHostStateIn(context.WithoutCancel(ctx), out.Store, out.Host, change)
		} else {
			serr = updateHostState(out.HostDir, change)
		}
		if serr != nil {
			a.log.Info("cannot record the run for backupctl status", "error", serr)
		}
	}
	if result != "" {
		fmt.Fprintln(a.stdout, result)
		m := out.Engine.Manifest
		if why := backupset.RaspiBackupProblem(m.Type, backupset.Compression(m.Compression)); why != "" {
			fmt.Fprintln(a.stdout, br.msg.Sprintf(i18n.BackupNoRaspiBackup, why))
		}
		if out.RetErr == nil {
			if len(out.Removed) > 0 {
				fmt.Fprintln(a.stdout, br.msg.Sprintf(i18n.RetentionDeleted, len(out.Removed), out.Kept))
			} else if out.Kept > 0 {
				fmt.Fprintln(a.stdout, br.msg.Sprintf(i18n.RetentionNothing, out.Kept))
			}
		}
	}
	host := out.Host
	if host == "" {
		host, _ = os.Hostname()
	}
	m := notify.Message{Host: host, OK: err == nil, LogFile: out.LogFile,
		Subject: br.msg.Sprintf(i18n.SubjectOK, host)}
	if err != nil {
		m.Subject = br.msg.Sprintf(i18n.SubjectFailed, host)
		m.Body = err.Error() + "\n"
		if out.LogFile != "" {
			m.Body += br.msg.Sprintf(i18n.BackupFailedLog, out.LogFile) + "\n"
		}
	} else {
		m.Body = result + "\n"
		if len(out.Removed) > 0 {
			m.Body += br.msg.Sprintf(i18n.RetentionDeleted, len(out.Removed), out.Kept) + "\n"
		}
	}
	// The reminder status shows, in the notice too: most people read
	// the mail, few run status.
	if out.HostDir != "" {
		read := readHostState
		if remote {
			read = func(string) (backupset.State, error) { return readHostStateIn(out.Store, out.Host) }
		}
		if st, err := read(out.HostDir); err == nil {
			if line := restoreReminder(st.LastRestoreTest, br.cfg.RemindMonths, a.now(), br.msg); line != "" {
				m.Body += strings.TrimSpace(line) + "\n"
			}
		}
	}
	if nerr := notify.Send(context.WithoutCancel(ctx), a.log, out.Notifiers, m); nerr != nil {
		fmt.Fprintln(a.stderr, "backupctl: "+br.msg.Sprintf(i18n.NotifyFailed, nerr))
	}
	return err
}

// backupError is the one line the user reads about a run's outcome; it
// wraps the run's error, so exitCode finds the exit code in it. Where the
// run's stage decides what an error means (a hook that fails before the
// write aborts the run; after it, it does not), it is marked here.
func backupError(ctx context.Context, msg *i18n.Printer, out backuprun.Result) error {
	err := out.Err
	switch {
	case err == nil && out.StartErr != nil:
		return &msgError{msg.Sprintf(i18n.BackupServicesDown, filepath.Base(out.SetDir), out.StartErr), out.StartErr}
	case err == nil && out.RetErr != nil:
		return &msgError{msg.Sprintf(i18n.RetentionFailed, filepath.Base(out.SetDir), out.RetErr), out.RetErr}
	case err == nil:
		return nil
	case (errors.Is(err, context.Canceled) || ctx.Err() != nil) && out.Left != "":
		return &msgError{msg.Sprintf(i18n.BackupCancelledLeft, out.Left, err), markAs(context.Canceled, err)}
	case errors.Is(err, context.Canceled), ctx.Err() != nil:
		return translated(msg, i18n.BackupCancelled, err, markAs(context.Canceled, err))
	case errors.Is(err, backup.ErrLocked):
		return translated(msg, i18n.BackupLocked, err, err)
	case errors.Is(err, backup.ErrPreflight):
		detail := strings.TrimPrefix(err.Error(), backup.ErrPreflight.Error()+": ")
		return translated(msg, i18n.BackupPreflight, detail, err)
	case errors.Is(err, hooks.ErrHookFailed) && out.Stage == backuprun.StageHook:
		return translated(msg, i18n.BackupHookAborted, err, preflight(err))
	case errors.Is(err, services.ErrStop):
		return translated(msg, i18n.BackupPreflight, err, err)
	case errors.Is(err, backuprun.ErrNewSetBad):
		return translated(msg, i18n.BackupNotVerified, err, err)
	}
	if out.Left != "" {
		return &msgError{msg.Sprintf(i18n.BackupFailedLeft, out.Left, err), err}
	}
	return translated(msg, i18n.BackupFailed, err, err)
}

// msgError is a translated result line that still wraps the error it
// reports, so errors.Is works on it.
type msgError struct {
	msg string
	err error
}

func (e *msgError) Error() string { return e.msg }
func (e *msgError) Unwrap() error { return e.err }

// translated formats message id with detail and wraps err.
func translated(msg *i18n.Printer, id i18n.ID, detail any, err error) error {
	return &msgError{msg: msg.Sprintf(id, detail), err: err}
}

// consoleOnly passes the run log's records to the console except the
// summary record: the console gets the result line instead.
type consoleOnly struct{ slog.Handler }

func (h consoleOnly) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "summary" {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h consoleOnly) WithAttrs(as []slog.Attr) slog.Handler {
	return consoleOnly{h.Handler.WithAttrs(as)}
}

func (h consoleOnly) WithGroup(name string) slog.Handler {
	return consoleOnly{h.Handler.WithGroup(name)}
}

func (a *app) newRecoverServicesCmd() *cobra.Command {
	var runDir string
	var flags *config.Flags
	cmd := &cobra.Command{
		Use:   "recover-services",
		Short: "Start the services a killed backup left stopped",
		Long: `A backup stops the configured services and always starts them again,
also after an error or a cancellation (SIGTERM, Ctrl-C). Only a process
that is killed outright (SIGKILL, out of memory) cannot. While services
are stopped, the backup keeps a marker in ` + defaultRunDir + ` with the
commands that start them; this command runs those commands (in reverse
order) and removes the marker. Without a marker it does nothing, so it is
safe to run any time: the systemd unit runs it as ExecStopPost, after
every backup however it ended. It refuses while the backup that wrote the
marker is still running.
` + exitStatusHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Services come first: a config that does not load (edited
			// while the backup ran) costs the language, not the restart.
			var lang string
			if l, err := a.loadConfig(flags); err != nil {
				fmt.Fprintf(a.stderr, "backupctl: warning: %v; starting the services anyway\n", err)
			} else {
				lang = l.Config.Lang
			}
			l, err := i18n.Pick(lang, os.Getenv)
			if err != nil {
				return withCode(exitUsage, err)
			}
			return a.recoverServices(cmd.Context(), runDir, i18n.New(l))
		},
	}
	cmd.Flags().StringVar(&runDir, "run-dir", defaultRunDir, "folder of the marker")
	flags = config.AddFlags(cmd.Flags(), config.CmdRecoverServices)
	_ = cmd.Flags().MarkHidden("run-dir")
	return cmd
}

func (a *app) recoverServices(ctx context.Context, runDir string, msg *i18n.Printer) error {
	p := filepath.Join(runDir, backuprun.MarkerName)
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		fmt.Fprintln(a.stdout, msg.Sprintf(i18n.ServicesNothing))
		return nil
	}
	if err != nil {
		return fmt.Errorf("recover services: %w", err)
	}
	var m backuprun.Marker
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("recover services: %s: %w", p, err)
	}
	if m.PID != os.Getpid() && backupctlRunning(m.PID) {
		return markAs(backup.ErrLocked, fmt.Errorf("recover services: the backup that stopped them (PID %d) is still running; it starts them itself", m.PID))
	}
	r := services.ExecRunner{}
	var errs []error
	for i := len(m.Start) - 1; i >= 0; i-- {
		a.log.Info("starting", "command", m.Start[i])
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), services.DefaultStartTimeout)
		_, err := r.Run(sctx, m.Start[i])
		cancel()
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("recover services: %w", err)
	}
	if err := os.Remove(p); err != nil {
		return fmt.Errorf("recover services: %w", err)
	}
	fmt.Fprintln(a.stdout, msg.Sprintf(i18n.ServicesRecovered, len(m.Start), m.PID))
	return nil
}

// backupctlRunning reports whether pid is a live backupctl process (a
// reused PID of another program does not count).
func backupctlRunning(pid int) bool {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	argv0, _, _ := strings.Cut(string(b), "\x00")
	return strings.Contains(filepath.Base(argv0), "backupctl")
}

// startBackupBar draws a one-line progress bar on w every 500ms until stop is
// called, and clears it then.
func startBackupBar(w io.Writer, c *progress.Counter) (stop func()) {
	start := time.Now()
	var lastPhase string
	var phaseStart time.Time
	stopPoll := progress.Poll(500*time.Millisecond, func(now time.Time) {
		phase, d, total, _ := c.Snapshot()
		if phase != lastPhase {
			lastPhase, phaseStart = phase, now
		}
		fmt.Fprint(w, "\r\033[K"+backupBarLine(phase, d, total, now.Sub(phaseStart), now.Sub(start)))
	})
	return func() {
		stopPoll()
		fmt.Fprint(w, "\r\033[K")
	}
}

// backupBarLine renders one progress line: phase, bar, bytes, rate, ETA.
func backupBarLine(phase string, done, total int64, inPhase, overall time.Duration) string {
	rate := 0.0
	if s := inPhase.Seconds(); s > 0 {
		rate = float64(done) / s
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-24.24s ", phase)
	if total > 0 {
		frac := min(float64(done)/float64(total), 1)
		n := int(frac * 20)
		fmt.Fprintf(&b, "[%s%s] %3.0f%% ", strings.Repeat("#", n), strings.Repeat(".", 20-n), frac*100)
	}
	fmt.Fprintf(&b, "%s %s/s", size.Format(done), size.Format(int64(rate)))
	if total > done && rate > 0 {
		eta := time.Duration(float64(total-done)/rate) * time.Second
		fmt.Fprintf(&b, " ETA %s", eta.Round(time.Second))
	}
	fmt.Fprintf(&b, " (%s)", overall.Round(time.Second))
	return b.String()
}
