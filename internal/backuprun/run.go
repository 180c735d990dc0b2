// Package backuprun is one backup run with everything around the engine:
// checks, hooks, services, write, verify, retention and the start notice.
// The CLI maps flags onto a Run and the Result onto its output and exit
// code; the timer, the tests and the soak test drive the same code.
package backuprun

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

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
	"github.com/pibackup/pibackup/internal/store"
	"github.com/pibackup/pibackup/internal/verify"
)

// FailedLogName is where the run log of the last failed run is kept in
// the host folder (the set it was in is removed).
const FailedLogName = backupset.FailedRunLog

// Stage is the phase a run was in when it failed; the same error means
// another thing in another stage (a hook that fails before the write
// aborts the run; after it, it does not).
type Stage string

// Stages of a run.
const (
	StagePrepare Stage = "prepare"
	StageHook    Stage = "hook"
	StageStop    Stage = "stop"
	StageWrite   Stage = "write"
)

// ErrNewSetBad marks a set that was written but did not verify.
var ErrNewSetBad = errors.New("verify new set")

// Run is one backup: the engine's options, the merged configuration and
// the few things the caller provides. Build it, then call Execute once.
type Run struct {
	Opts     backup.Options
	Config   *config.Config // validated
	Msg      *i18n.Printer
	Log      *slog.Logger // the console; the run log also writes to it
	Out      io.Writer    // the engine's plan (dry run)
	Stderr   io.Writer    // warnings that never fail the run
	Progress progress.Reporter
	// Store is where the set goes (store.Open of BACKUPDIR); nil means
	// Opts.Target is a local folder. The caller closes it.
	Store store.Store
	// RunDir holds the marker of stopped services (see Marker), the
	// locks of runs into servers and, for those runs, the run log while
	// the run goes (it is uploaded into the set when the set is
	// committed, and stays here until the next run).
	RunDir  string
	Version string
	// RC turns an outcome into the exit code post-backup hooks see as
	// BACKUP_RC; the caller owns the codes.
	RC func(ctx context.Context, err error, stage Stage) int
	// Console, if set, wraps the console handler the run log copies to.
	Console func(slog.Handler) slog.Handler
	// Now is the clock of set names, retention and the result (nil:
	// time.Now); the soak test plays nights on a test clock.
	Now func() time.Time

	// Set while the run goes.
	notifiers []notify.Notifier
	stoppers  []services.Stopper
	hk        *hooks.Runner
	vars      hooks.Vars
	p         *backup.Prepared
	rl        *runlog.Log
	log       *slog.Logger
	res       Result
	// remoteLog: the run log is a local file (RunDir) that goes to the
	// server at the commit (and for a failed run, as FailedLogName).
	remoteLog bool
}

// Result is what a run did, for the summary, the state file, the
// notification and the exit code.
type Result struct {
	Start time.Time
	Host  string
	// Store is the store the run wrote to (nil if it never got one);
	// Host is the host folder's name in it.
	Store    store.Store
	HostDir  string
	Set      string // set name, "" if none was started
	SetDir   string // the set's folder once complete
	Engine   *backup.Result
	Err      error // the run failed: nothing new is complete
	Stage    Stage
	Type     string
	Left     string // the partial set could not be removed from this folder
	StartErr error  // the set is complete but a service did not start
	RetErr   error  // the set is complete but retention failed
	Removed  []string
	Kept     int
	LogFile  string
	// RunLog is the open run log (nil if none was opened); the caller
	// writes the summary and closes it.
	RunLog    *runlog.Log
	Notifiers []notify.Notifier
}

// Close removes what is left of a failed or cancelled set and releases
// the lock; the caller defers it, so the state file and the notice of a
// run that failed early are written under the lock, as for any other.
// Execute already closed a run that got to the write.
func (r *Run) Close() error {
	if r.p == nil {
		return nil
	}
	return r.p.Close()
}

// Execute runs the phases in order: prepare (space, lock, source), run
// log, start notice, pre-backup hooks, services stop, ready hooks, write
// and verify, post-backup hooks, services start (always, also after an
// error or cancellation), retention (only after a complete, verified
// set), removal of a partial set. The error is Result.Err. The caller
// defers Close.
func (r *Run) Execute(ctx context.Context) (Result, error) {
	if r.Now == nil {
		r.Now = time.Now
	}
	deps := backup.Deps{Log: r.Log, Out: r.Out, Progress: r.Progress, Now: r.Now, Store: r.Store, LockDir: r.RunDir, ContentCheck: verify.ContentCheck, ImageCheck: verify.ImageCheck}
	if r.Opts.DryRun {
		// A dry run is a plan: no hooks, no services, no mail.
		_, err := backup.Run(ctx, r.Opts, deps)
		r.res = Result{Err: err, Stage: StagePrepare}
		return r.res, err
	}
	// Validate passed, so these cannot fail.
	r.notifiers, _ = r.Config.Notifiers()
	r.stoppers, _ = r.Config.Stoppers(services.ExecRunner{})
	r.res = Result{Start: r.Now(), Stage: StagePrepare, Notifiers: r.notifiers}
	r.log = r.Log
	if err := r.prepare(ctx, deps); err != nil {
		r.res.Err = err
		return r.res, err
	}
	r.warnExposure()
	r.notifyStart(ctx)
	r.res.Stage = StageHook
	if err := r.PreHooks(ctx); err != nil {
		r.res.Err = err
		r.res.LogFile = r.keepFailedLog()
		return r.res, err
	}
	r.res.Stage = StageStop
	marker, err := WriteMarker(r.RunDir, r.stoppers)
	if err != nil {
		r.res.Err = err
		r.res.LogFile = r.keepFailedLog()
		return r.res, err
	}
	runErr, svcErr := r.withServicesStopped(ctx)
	r.res.LogFile = r.vars.LogFile
	r.res.Err = runErr
	if startErr := errors.Join(unwrapStartErrors(svcErr)...); startErr != nil {
		r.res.StartErr = startErr
	} else if marker != "" {
		// Only when every service is up again; otherwise
		// recover-services tries once more.
		os.Remove(marker)
	}
	if r.res.Err == nil {
		r.Retention(ctx) // still under the host lock
	}
	// A failed set goes now: its space is needed for the state file.
	if cerr := r.p.Close(); cerr != nil {
		r.res.Left = r.res.HostDir
		if r.res.Store != nil && r.res.Store.CanRename() {
			r.res.Left = r.res.HostDir + "/" + backupset.TmpDir
			if r.res.Store.Local() != "" {
				r.res.Left = filepath.Join(r.res.HostDir, backupset.TmpDir)
			}
		}
		r.log.Info("partial set left", "error", cerr)
	}
	if r.res.Err != nil && r.remoteLog {
		r.res.LogFile = r.keepFailedLog() // the log up to here
	}
	return r.res, r.res.Err
}

// LocalRunLog is where a run to a server keeps its log: uploaded into
// the set at the commit, and kept here for what is logged after it.
// Keyed by server and host, so runs of one Pi to two servers at the same
// time keep their logs apart.
func LocalRunLog(runDir string, st store.Store, host string) string {
	return filepath.Join(runDir, backup.ServerKey(st, host)+"-"+backupset.RunLogName(host))
}

// prepare checks the source and target, takes the lock and opens the run
// log inside the new set.
func (r *Run) prepare(ctx context.Context, deps backup.Deps) error {
	deps.BeforeCommit = func(ctx context.Context, set backup.Staged) error {
		if err := r.Verify(ctx, set); err != nil {
			return err
		}
		if r.remoteLog {
			// The log goes with the set; what is logged after the
			// commit stays in the local copy.
			return r.upload(ctx, path.Join(set.Rel, backupset.RunLogName(r.res.Host)))
		}
		return nil
	}
	p, err := backup.Prepare(ctx, r.Opts, deps)
	r.p = p
	if p != nil && p.HostDir() != "" { // known once the source is identified
		r.res.Host, r.res.HostDir, r.res.Set, r.res.Type = p.Name().Host, p.HostDir(), p.Name().String(), string(p.Name().Type)
		r.res.Store = p.Store()
	}
	if err != nil {
		return err
	}
	console := r.Log.Handler()
	if r.Console != nil {
		console = r.Console(console)
	}
	logPath := filepath.Join(p.TmpDir(), backupset.RunLogName(p.Name().Host))
	if p.Store().Local() == "" {
		// A server's file is written once, start to end: the log is
		// kept here and uploaded at the commit.
		r.remoteLog = true
		if err := os.MkdirAll(r.RunDir, 0o700); err != nil {
			return fmt.Errorf("run log: %w", err)
		}
		logPath = LocalRunLog(r.RunDir, p.Store(), p.Name().Host)
		os.Remove(logPath) // the last run's
	}
	rl, err := runlog.Open(runlog.Options{Path: logPath,
		Console: console, JSON: r.Config.LogJSON, Secrets: r.Config.Secrets()})
	if err != nil {
		return err
	}
	r.rl, r.res.RunLog, r.log = rl, rl, rl.Logger
	p.SetLog(r.log)
	r.log.Info("backup run", "version", r.Version, "set", r.res.Set, "target", store.Redact(r.Opts.Target))
	ho, _ := r.Config.HookOptions()
	ho.Log = r.log
	r.hk = hooks.New(ho)
	r.vars = hooks.Vars{TargetDir: p.FinalDir(), Type: r.res.Type, Host: r.res.Host, LogFile: rl.Path()}
	return nil
}

// warnExposure says when others can read the target: a backup holds
// every file of the system, secrets included. It never fails the run.
func (r *Run) warnExposure() {
	if r.p.Store().Local() == "" {
		return // a server's permissions are not ours to read
	}
	if w, err := backup.ExposureWarning(r.Opts.Target); err == nil && w != "" {
		fmt.Fprintf(r.Stderr, "backupctl: warning: %s\n", w)
		r.log.Warn(w)
	}
}

// notifyStart is sent once the run is prepared (lock held, source and
// target checked): a start notice is a promise of an outcome notice.
func (r *Run) notifyStart(ctx context.Context) {
	if !r.Config.NotifyStart {
		return
	}
	m := notify.Message{Host: r.res.Host, OK: true, Subject: r.Msg.Sprintf(i18n.SubjectStarted, r.res.Host),
		Body: r.Msg.Sprintf(i18n.BackupStartedBody, r.res.Set, store.Redact(r.Opts.Target)) + "\n"}
	if nerr := notify.Send(context.WithoutCancel(ctx), r.log, r.notifiers, m); nerr != nil {
		fmt.Fprintln(r.Stderr, "backupctl: "+r.Msg.Sprintf(i18n.NotifyFailed, nerr))
	}
}

// PreHooks runs the pre-backup hooks; one that fails aborts the run.
func (r *Run) PreHooks(ctx context.Context) error {
	return r.hk.Run(ctx, hooks.PreBackup, r.vars)
}

// withServicesStopped stops the services, runs ready hooks and the
// write, runs the post-backup hooks and starts the services again
// (services.Run does, whatever happened). runErr is the backup's own
// outcome, svcErr services.Run's.
func (r *Run) withServicesStopped(ctx context.Context) (runErr, svcErr error) {
	fnRan := false
	svcErr = services.Run(ctx, services.Options{Log: r.log}, r.stoppers, func(ctx context.Context) (err error) {
		fnRan = true
		defer func() {
			runErr = err
			r.PostHooks(ctx, err)
		}()
		r.res.Stage = StageHook
		if err := r.hk.Run(ctx, hooks.Ready, r.vars); err != nil {
			return err
		}
		r.res.Stage = StageWrite
		return r.Write(ctx)
	})
	if !fnRan {
		// A service did not stop (services.Run started the others again):
		// nothing was written, but post-backup may have to undo what
		// pre-backup did.
		runErr = svcErr
		r.PostHooks(ctx, runErr)
	}
	return runErr, svcErr
}

// Write writes the set into tmp, verifies it (Verify, through the
// engine's BeforeCommit) and moves it into place.
func (r *Run) Write(ctx context.Context) error {
	res, err := r.p.Write(ctx)
	if err != nil {
		return err
	}
	r.res.Engine, r.res.SetDir = res, res.SetDir
	r.vars.LogFile = filepath.Join(res.SetDir, backupset.RunLogName(r.res.Host))
	if r.remoteLog {
		r.vars.LogFile = r.rl.Path() // the full log is the local one
	}
	r.vars.TargetFile = r.p.Payload()
	return nil
}

// PostHooks runs the post-backup hooks with the outcome in BACKUP_RC.
// They run even when ctx is cancelled (they may have to undo what
// pre-backup did); a failed run's log is kept first, since Close removes
// the partial set with the log in it.
func (r *Run) PostHooks(ctx context.Context, err error) {
	if err != nil {
		r.vars.LogFile = r.keepFailedLog()
	}
	if r.RC != nil {
		rc := r.RC(ctx, err, r.res.Stage)
		r.vars.RC = &rc
	}
	_ = r.hk.Run(context.WithoutCancel(ctx), hooks.PostBackup, r.vars)
}

// Verify checks the complete set against its manifest (sizes, SHA-256
// sums, archive and tree integrity) before it is committed: retention
// deletes older sets only after this passed. It reads the set back
// through the store, so on a server every byte makes a second trip: what
// the server stored is what was hashed while writing (docs/FORMAT.md).
func (r *Run) Verify(ctx context.Context, set backup.Staged) error {
	start := time.Now()
	rep, err := verify.Set(ctx, set.FS, set.Name, verify.Options{LocalDir: set.LocalDir, Log: r.log, Progress: r.Progress, Proofs: set.Proofs, TreesListed: true})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNewSetBad, err)
	}
	args := []any{"bytes", rep.Bytes, "duration", time.Since(start).Round(time.Millisecond)}
	if len(set.Proofs) > 0 {
		// Their bytes were read back from the disk while they were
		// written, not now (backup.Deps.ContentCheck).
		args = append(args, "read_back_while_written", strings.Join(slices.Sorted(maps.Keys(set.Proofs)), ","))
	}
	r.log.Info("new set verified", args...)
	return nil
}

// Retention deletes old sets of this host by the configured policy. The
// new set is complete and verified; Plan keeps the newest set of every
// series and snapshots, and Apply refuses snapshots and sets in progress.
func (r *Run) Retention(ctx context.Context) {
	st := r.p.Store()
	l, err := backupset.ListOptions{ManifestLast: !st.CanRename()}.List(st.FS(), ".")
	if err != nil {
		r.res.RetErr = fmt.Errorf("list %s: %w", st, err)
		return
	}
	var mine []backupset.Set
	for _, s := range l.Sets {
		if s.Name.Host == r.res.Host {
			mine = append(mine, s)
		}
	}
	keep, remove := retention.Plan(mine, r.Now(), r.Config.RetentionPolicy())
	r.res.Kept = len(keep)
	if len(remove) == 0 {
		return
	}
	for _, s := range remove {
		r.log.Info("retention: deleting", "set", s.Dir)
	}
	done, err := retention.Apply(ctx, retention.ApplyOptions{Store: st, Log: r.log}, remove)
	for _, s := range done {
		r.res.Removed = append(r.res.Removed, filepath.Base(s.Dir))
	}
	r.res.Kept += len(remove) - len(done)
	if err != nil {
		r.res.RetErr = err
	}
}

// keepFailedLog hard-links the run log out of the set that is about to
// be removed, to <host>/backupctl-failed.log (backupset.FailedRunLog),
// and returns its new path (the old one if that fails). The open file
// keeps being written.
func (r *Run) keepFailedLog() string {
	p := r.rl.Path()
	if r.res.HostDir == "" {
		return p
	}
	if r.remoteLog {
		// On a server: a copy of the log so far (Execute copies it once
		// more at its end); the full log stays in RunDir.
		if err := r.upload(context.Background(), path.Join(r.res.Host, FailedLogName)); err != nil {
			r.log.Info("cannot keep the log of the failed run", "error", err)
			return p
		}
		return r.res.HostDir + "/" + FailedLogName
	}
	dst := filepath.Join(r.res.HostDir, FailedLogName)
	os.Remove(dst)
	if err := os.Link(p, dst); err != nil {
		r.log.Info("cannot keep the log of the failed run", "error", err)
		return p
	}
	return dst
}

// upload copies the local run log to name in the store, replacing what
// is there: Create refuses an existing name, and a log is no set, so a
// remove and a create are enough.
func (r *Run) upload(ctx context.Context, name string) error {
	st := r.p.Store()
	b, err := os.ReadFile(r.rl.Path())
	if err != nil {
		return err
	}
	if err := st.RemoveAll(ctx, name); err != nil {
		return err
	}
	return store.WriteFile(ctx, st, name, b)
}

// unwrapStartErrors picks the errors of services that did not start
// again out of services.Run's joined error. Each of them wraps
// services.ErrStart and the command's error side by side ("%w %s: %w"):
// it is kept whole, so the message names the service and says why.
func unwrapStartErrors(err error) []error {
	if err == nil {
		return nil
	}
	var out []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		if slices.Contains(j.Unwrap(), services.ErrStart) {
			return []error{err}
		}
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
