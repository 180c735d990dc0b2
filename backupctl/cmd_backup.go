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
	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/config"
	"github.com/pibackup/pibackup/internal/hooks"
	"github.com/pibackup/pibackup/internal/i18n"
	"github.com/pibackup/pibackup/internal/notify"
	"github.com/pibackup/pibackup/internal/progress"
	"github.com/pibackup/pibackup/internal/retention"
	"github.com/pibackup/pibackup/internal/runlog"
	"github.com/pibackup/pibackup/internal/services"
	"github.com/pibackup/pibackup/internal/size"
	"github.com/pibackup/pibackup/internal/verify"
)

// defaultRunDir holds the marker of services a running backup has
// stopped. /run is a tmpfs: after a reboot the marker is gone, and so is
// the need to start anything.
const defaultRunDir = "/run/backupctl"

// failedLogName is where the run log of the last failed run is kept in
// the host folder (the set it was in is removed).
const failedLogName = "backupctl-failed.log"

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
Without BACKUPDIR, backup-path from the configuration is used.

A run goes: checks (space, lock, source) → pre-backup hooks → services
stop → ready hooks → the set is written under <host>/tmp/, verified
against its manifest and moved into place → post-backup hooks (they see
BACKUP_RC) → services start again, always, also after an error or
cancellation → retention (only after a complete, verified set; named
snapshots are never deleted) → notifications. The run log
<host>-backup.backupctl.log is inside the set; a failed run's log is kept as <host>/` + failedLogName + `.
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
			return a.runBackup(cmd.Context(), backupRun{opts: eo, cfg: c, msg: i18n.New(lang),
				showProgress: c.Progress, runDir: o.runDir})
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
}

// backupOutcome collects what a run did, for the summary, the state file,
// the notification and the exit code.
type backupOutcome struct {
	start    time.Time
	host     string
	hostDir  string
	set      string // set name, "" if none was started
	setDir   string // the set's folder once complete
	res      *backup.Result
	err      error // the run failed: nothing new is complete
	stage    string
	typ      string
	left     string // the partial set could not be removed from this folder
	startErr error  // the set is complete but a service did not start
	retErr   error  // the set is complete but retention failed
	removed  []string
	kept     int
	logFile  string
}

// Stages of a run, for the exit code and the message of an error.
const (
	stagePrepare = "prepare"
	stageHook    = "hook"
	stageStop    = "stop"
	stageWrite   = "write"
)

// runBackup runs one backup with everything around it; the order is the
// one in backupLong. Whatever happens after the services stopped, they
// are started again (services.Run) and the post-backup hooks run.
func (a *app) runBackup(ctx context.Context, br backupRun) error {
	deps := backup.Deps{Log: a.log, Out: a.stdout, Now: a.now}
	if br.showProgress {
		c := &progress.Counter{}
		deps.Progress = c
		stop := startBackupBar(a.stderr, c)
		defer stop()
	}
	if br.opts.DryRun {
		// A dry run is a plan: no hooks, no services, no mail.
		_, err := backup.Run(ctx, br.opts, deps)
		code, err := backupExit(ctx, br.msg, backupOutcome{err: err, stage: stagePrepare})
		return withCode(code, err)
	}
	// Validate passed, so these cannot fail.
	notifiers, _ := br.cfg.Notifiers()
	stoppers, _ := br.cfg.Stoppers(services.ExecRunner{})
	ho, _ := br.cfg.HookOptions()

	out := backupOutcome{start: a.now(), stage: stagePrepare}
	log := a.log // the run log once it is open; the closure below sees the switch
	deps.BeforeCommit = func(ctx context.Context, dir string, _ *backupset.Manifest) error {
		return verifyNewSet(ctx, dir, log, deps.Progress)
	}
	p, err := backup.Prepare(ctx, br.opts, deps)
	if p != nil {
		defer p.Close()
		if p.HostDir() != "" { // known once the source is identified
			out.host, out.hostDir, out.set, out.typ = p.Name().Host, p.HostDir(), p.Name().String(), string(p.Name().Type)
		}
	}
	var rl *runlog.Log
	if err == nil {
		rl, err = runlog.Open(runlog.Options{Path: filepath.Join(p.TmpDir(), backupset.RunLogName(p.Name().Host)),
			Console: consoleOnly{a.log.Handler()}, JSON: br.cfg.LogJSON, Secrets: br.cfg.Secrets()})
	}
	if err != nil {
		out.err = err
		return a.finishBackup(ctx, br, out, nil, notifiers)
	}
	log = rl.Logger
	p.SetLog(log)
	log.Info("backup run", "version", versionString(), "set", out.set, "target", br.opts.Target)
	// A backup holds every file of the system, secrets included: say so
	// when others can read the target. It never fails the run.
	if w, err := backup.ExposureWarning(br.opts.Target); err == nil && w != "" {
		fmt.Fprintf(a.stderr, "backupctl: warning: %s\n", w)
		log.Warn(w)
	}
	if br.cfg.NotifyStart {
		// Sent once the run is prepared (lock held, source and target
		// checked): a start notice is a promise of an outcome notice.
		m := notify.Message{Host: out.host, OK: true, Subject: br.msg.Sprintf(i18n.SubjectStarted, out.host),
			Body: br.msg.Sprintf(i18n.BackupStartedBody, out.set, br.opts.Target) + "\n"}
		if nerr := notify.Send(context.WithoutCancel(ctx), log, notifiers, m); nerr != nil {
			fmt.Fprintln(a.stderr, "backupctl: "+br.msg.Sprintf(i18n.NotifyFailed, nerr))
		}
	}
	ho.Log = log
	hk := hooks.New(ho)
	vars := hooks.Vars{TargetDir: p.FinalDir(), Type: string(p.Name().Type), Host: out.host, LogFile: rl.Path()}

	out.stage = stageHook
	if err := hk.Run(ctx, hooks.PreBackup, vars); err != nil {
		out.err = err
		out.logFile = keepFailedLog(log, rl.Path(), out.hostDir)
		return a.finishBackup(ctx, br, out, rl, notifiers)
	}
	out.stage = stageStop
	marker, err := writeServiceMarker(br.runDir, stoppers)
	if err != nil {
		out.err = err
		out.logFile = keepFailedLog(log, rl.Path(), out.hostDir)
		return a.finishBackup(ctx, br, out, rl, notifiers)
	}
	var runErr error // the backup's own outcome, apart from starting services
	fnRan := false
	svcErr := services.Run(ctx, services.Options{Log: log}, stoppers, func(ctx context.Context) (err error) {
		fnRan = true
		defer func() {
			runErr = err
			if err != nil {
				// Close removes the partial set with the log in it.
				vars.LogFile = keepFailedLog(log, rl.Path(), out.hostDir)
			}
			rc, _ := backupExit(ctx, br.msg, backupOutcome{err: err, stage: out.stage})
			vars.RC = &rc
			// The outcome is known; the hooks run even when ctx is
			// cancelled (they may have to undo what pre-backup did).
			_ = hk.Run(context.WithoutCancel(ctx), hooks.PostBackup, vars)
		}()
		out.stage = stageHook
		if err := hk.Run(ctx, hooks.Ready, vars); err != nil {
			return err
		}
		out.stage = stageWrite
		res, err := p.Write(ctx)
		if err != nil {
			return err
		}
		out.res, out.setDir = res, res.SetDir
		vars.LogFile = filepath.Join(res.SetDir, backupset.RunLogName(out.host))
		vars.TargetFile = p.Payload()
		return nil
	})
	if !fnRan {
		// A service did not stop (services.Run started the others again):
		// nothing was written, but post-backup may have to undo what
		// pre-backup did.
		runErr = svcErr
		vars.LogFile = keepFailedLog(log, rl.Path(), out.hostDir)
		rc, _ := backupExit(ctx, br.msg, backupOutcome{err: runErr, stage: out.stage})
		vars.RC = &rc
		_ = hk.Run(context.WithoutCancel(ctx), hooks.PostBackup, vars)
	}
	out.logFile = vars.LogFile
	out.err = runErr
	if startErr := errors.Join(unwrapStartErrors(svcErr)...); startErr != nil {
		out.startErr = startErr
	} else if marker != "" {
		// Only when every service is up again; otherwise
		// recover-services tries once more.
		os.Remove(marker)
	}
	if out.err == nil {
		a.applyRetention(ctx, br, &out, log) // still under the host lock
	}
	// A failed set goes now: its space is needed for the state file.
	if cerr := p.Close(); cerr != nil {
		out.left = filepath.Join(out.hostDir, backupset.TmpDir)
		log.Info("partial set left", "error", cerr)
	}
	return a.finishBackup(ctx, br, out, rl, notifiers)
}

// unwrapStartErrors picks the errors of services that did not start
// again out of services.Run's joined error.
func unwrapStartErrors(err error) []error {
	if err == nil {
		return nil
	}
	var out []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			out = append(out, unwrapStartErrors(e)...)
		}
		return out
	}
	if errors.Is(err, services.ErrStart) {
		return []error{err}
	}
	return nil
}

// verifyNewSet checks the complete set in tmp against its manifest
// (sizes, SHA-256 sums, archive and tree integrity) before it is moved
// into place: retention deletes older sets only after this passed.
func verifyNewSet(ctx context.Context, dir string, log *slog.Logger, pr progress.Reporter) error {
	start := time.Now()
	rep, err := verify.Dir(ctx, dir, verify.Options{Log: log, Progress: pr})
	if err != nil {
		return fmt.Errorf("%w: %w", errNewSetBad, err)
	}
	log.Info("new set verified", "bytes", rep.Bytes, "duration", time.Since(start).Round(time.Millisecond))
	return nil
}

// errNewSetBad marks a set that was written but did not verify.
var errNewSetBad = errors.New("verify new set")

// keepFailedLog hard-links the run log out of the set that is about to
// be removed, to <host>/backupctl-failed.log, and returns its new path
// (the old one if that fails). The open file keeps being written.
func keepFailedLog(log *slog.Logger, path, hostDir string) string {
	if hostDir == "" {
		return path
	}
	dst := filepath.Join(hostDir, failedLogName)
	os.Remove(dst)
	if err := os.Link(path, dst); err != nil {
		log.Info("cannot keep the log of the failed run", "error", err)
		return path
	}
	return dst
}

// applyRetention deletes old sets of this host by the configured policy.
// The new set is complete and verified; Plan keeps the newest set of every
// series and snapshots, and Apply refuses snapshots and sets in progress.
func (a *app) applyRetention(ctx context.Context, br backupRun, out *backupOutcome, log *slog.Logger) {
	policy := br.cfg.RetentionPolicy()
	root := br.opts.Target
	l, err := backupset.List(os.DirFS(root), ".")
	if err != nil {
		out.retErr = fmt.Errorf("list %s: %w", root, err)
		return
	}
	var mine []backupset.Set
	for _, s := range l.Sets {
		if s.Name.Host == out.host {
			mine = append(mine, s)
		}
	}
	keep, remove := retention.Plan(mine, a.now(), policy)
	out.kept = len(keep)
	if len(remove) == 0 {
		return
	}
	for _, s := range remove {
		log.Info("retention: deleting", "set", s.Dir)
	}
	done, err := retention.Apply(ctx, retention.ApplyOptions{Root: root, Log: log}, remove)
	for _, s := range done {
		out.removed = append(out.removed, filepath.Base(s.Dir))
	}
	out.kept += len(remove) - len(done)
	if err != nil {
		out.retErr = err
	}
}

// finishBackup ends a run: summary and close of the run log, the state
// file for `backupctl status`, the notification, the result line and the
// exit code.
func (a *app) finishBackup(ctx context.Context, br backupRun, out backupOutcome, rl *runlog.Log, notifiers []notify.Notifier) error {
	code, err := backupExit(ctx, br.msg, out)
	var bytes int64
	var result string
	if out.res != nil && out.res.Manifest != nil {
		for _, f := range out.res.Manifest.Files {
			bytes += f.Size
		}
		result = br.msg.Sprintf(i18n.BackupComplete, out.setDir, len(out.res.Manifest.Files), size.Format(bytes))
	}
	if rl != nil {
		rl.Summary(context.WithoutCancel(ctx), runlog.Summary{Operation: "backup", Set: out.set, Type: out.typ,
			Bytes: bytes, Removed: out.removed, Err: err})
		if cerr := rl.Close(); cerr != nil {
			a.log.Info("close run log", "error", cerr)
		}
	}
	if fi, serr := os.Stat(out.hostDir); serr == nil && fi.IsDir() {
		rec := runRecord{Start: out.start, End: a.now(), Set: out.set, OK: err == nil, ExitCode: code, Log: out.logFile}
		if err != nil {
			rec.Error = err.Error()
		}
		if u, uerr := readUsage(); uerr == nil {
			rec.runUsage = u
		} else {
			a.log.Info("cannot measure the run's cost", "error", uerr)
		}
		if serr := updateHostState(out.hostDir, func(s *hostState) { s.LastRun = &rec }); serr != nil {
			a.log.Info("cannot record the run for backupctl status", "error", serr)
		}
	}
	if result != "" {
		fmt.Fprintln(a.stdout, result)
		m := out.res.Manifest
		if why := backupset.RaspiBackupProblem(m.Type, backupset.Compression(m.Compression)); why != "" {
			fmt.Fprintln(a.stdout, br.msg.Sprintf(i18n.BackupNoRaspiBackup, why))
		}
		if out.retErr == nil {
			if len(out.removed) > 0 {
				fmt.Fprintln(a.stdout, br.msg.Sprintf(i18n.RetentionDeleted, len(out.removed), out.kept))
			} else if out.kept > 0 {
				fmt.Fprintln(a.stdout, br.msg.Sprintf(i18n.RetentionNothing, out.kept))
			}
		}
	}
	host := out.host
	if host == "" {
		host, _ = os.Hostname()
	}
	m := notify.Message{Host: host, OK: err == nil, LogFile: out.logFile,
		Subject: br.msg.Sprintf(i18n.SubjectOK, host)}
	if err != nil {
		m.Subject = br.msg.Sprintf(i18n.SubjectFailed, host)
		m.Body = err.Error() + "\n"
		if out.logFile != "" {
			m.Body += br.msg.Sprintf(i18n.BackupFailedLog, out.logFile) + "\n"
		}
	} else {
		m.Body = result + "\n"
		if len(out.removed) > 0 {
			m.Body += br.msg.Sprintf(i18n.RetentionDeleted, len(out.removed), out.kept) + "\n"
		}
	}
	// The reminder status shows, in the notice too: most people read
	// the mail, few run status.
	if out.hostDir != "" {
		if st, err := readHostState(out.hostDir); err == nil {
			if line := restoreReminder(st.LastRestoreTest, br.cfg.RemindMonths, a.now(), br.msg); line != "" {
				m.Body += strings.TrimSpace(line) + "\n"
			}
		}
	}
	if nerr := notify.Send(context.WithoutCancel(ctx), a.log, notifiers, m); nerr != nil {
		fmt.Fprintln(a.stderr, "backupctl: "+br.msg.Sprintf(i18n.NotifyFailed, nerr))
	}
	return withCode(code, err)
}

// backupExit maps a run's outcome to an exit code and the one line the
// user reads.
func backupExit(ctx context.Context, msg *i18n.Printer, out backupOutcome) (int, error) {
	err := out.err
	switch {
	case err == nil && out.startErr != nil:
		return exitFailure, &msgError{msg.Sprintf(i18n.BackupServicesDown, filepath.Base(out.setDir), out.startErr), out.startErr}
	case err == nil && out.retErr != nil:
		return exitFailure, &msgError{msg.Sprintf(i18n.RetentionFailed, filepath.Base(out.setDir), out.retErr), out.retErr}
	case err == nil:
		return exitOK, nil
	case (errors.Is(err, context.Canceled) || ctx.Err() != nil) && out.left != "":
		return exitCancelled, &msgError{msg.Sprintf(i18n.BackupCancelledLeft, out.left, err), err}
	case errors.Is(err, context.Canceled), ctx.Err() != nil:
		return exitCancelled, translated(msg, i18n.BackupCancelled, err, err)
	case errors.Is(err, backup.ErrLocked):
		return exitLocked, translated(msg, i18n.BackupLocked, err, err)
	case errors.Is(err, backup.ErrPreflight):
		detail := strings.TrimPrefix(err.Error(), backup.ErrPreflight.Error()+": ")
		return exitPreflight, translated(msg, i18n.BackupPreflight, detail, err)
	case errors.Is(err, hooks.ErrHookFailed) && out.stage == stageHook:
		return exitPreflight, translated(msg, i18n.BackupHookAborted, err, err)
	case errors.Is(err, services.ErrStop):
		return exitPreflight, translated(msg, i18n.BackupPreflight, err, err)
	case errors.Is(err, errNewSetBad):
		return exitVerify, translated(msg, i18n.BackupNotVerified, err, err)
	}
	if out.left != "" {
		return exitFailure, &msgError{msg.Sprintf(i18n.BackupFailedLeft, out.left, err), err}
	}
	return exitFailure, translated(msg, i18n.BackupFailed, err, err)
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

// serviceMarker records the services a running backup has stopped, as the
// commands that start them, so `backupctl recover-services` can start
// them after backupctl itself was killed (SIGKILL, OOM, power loss of
// the USB disk hanging the process until systemd kills it). A killed
// process can restart nothing; the systemd unit's ExecStopPost can.
type serviceMarker struct {
	PID     int        `json:"pid"`
	Started time.Time  `json:"started"`
	Start   [][]string `json:"start"` // in stop order; started in reverse
}

const serviceMarkerName = "services-stopped.json"

// startArgv returns the commands that start s.
func startArgv(s services.Stopper) ([][]string, bool) {
	switch v := s.(type) {
	case services.Unit:
		return [][]string{services.UnitArgv(v.Systemctl, "start", v.Name)}, true
	case services.Container:
		return [][]string{services.ContainerArgv(v.Docker, "start", v.Name)}, true
	case services.Commands:
		return v.StartCmds, true
	}
	return nil, false
}

// writeServiceMarker writes the marker before any service stops; with no
// services it writes nothing and returns "".
func writeServiceMarker(dir string, stoppers []services.Stopper) (string, error) {
	if len(stoppers) == 0 {
		return "", nil
	}
	m := serviceMarker{PID: os.Getpid(), Started: time.Now()}
	for _, s := range stoppers {
		argvs, ok := startArgv(s)
		if !ok {
			return "", fmt.Errorf("BUG: no start command known for %s", s)
		}
		m.Start = append(m.Start, argvs...)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("services marker: %w", err)
	}
	p := filepath.Join(dir, serviceMarkerName)
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return "", err
	}
	if err := writeFileAtomic(p, append(b, '\n'), 0o600); err != nil {
		return "", fmt.Errorf("services marker: %w", err)
	}
	return p, nil
}

// writeFileAtomic writes data to a temporary file next to p and renames
// it over p, so a reader never sees half a file.
func writeFileAtomic(p string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), p)
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
	p := filepath.Join(runDir, serviceMarkerName)
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		fmt.Fprintln(a.stdout, msg.Sprintf(i18n.ServicesNothing))
		return nil
	}
	if err != nil {
		return fmt.Errorf("recover services: %w", err)
	}
	var m serviceMarker
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("recover services: %s: %w", p, err)
	}
	if m.PID != os.Getpid() && backupctlRunning(m.PID) {
		return withCode(exitLocked, fmt.Errorf("recover services: the backup that stopped them (PID %d) is still running; it starts them itself", m.PID))
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
// called.
func startBackupBar(w io.Writer, c *progress.Counter) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(finished)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		var lastPhase string
		var phaseStart time.Time
		for {
			select {
			case <-done:
				fmt.Fprint(w, "\r\033[K")
				return
			case now := <-t.C:
				phase, d, total, _ := c.Snapshot()
				if phase != lastPhase {
					lastPhase, phaseStart = phase, now
				}
				fmt.Fprint(w, "\r\033[K"+backupBarLine(phase, d, total, now.Sub(phaseStart), now.Sub(start)))
			}
		}
	}()
	return func() {
		close(done)
		<-finished
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
