// Package hooks runs the user's programs at fixed points of a backup or
// restore: raspiBackup's extension points (pre, ready, post for backups;
// pre, post for restores), without raspiBackup's way of doing it.
// raspiBackup sources raspiBackup_<name>_<point>.sh into its own shell;
// we exec a program with an argv and pass the facts as environment
// variables, so a hook cannot reach into our state and no string is ever
// handed to a shell.
//
// Hooks come from two places, run in this order at each event:
//  1. executables in <Dir>/<event>/ (default /etc/backupctl/hooks.d), in
//     lexical order, skipping names that start with "." or end in "~",
//     ".dpkg-old", ".dpkg-new", ".dpkg-dist" or ".rpmnew" as run-parts does;
//  2. argvs from the config file, in order.
package hooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Event is an extension point.
type Event string

// The events, in raspiBackup's order (hooks-for-own-scripts.md: pre,
// ready, backup, post, then services start):
//
//	pre-backup   before services are stopped; a failure aborts the backup
//	             and no service is touched (raspiBackup "pre", RC 134)
//	ready        services are stopped, nothing is read yet (raspiBackup
//	             "ready"); e.g. dump a database now that it is quiet. Unlike
//	             raspiBackup a failure here aborts too: nothing is written
//	             yet, and a backup without the dump the hook was meant to
//	             make is worse than a clear error
//	post-backup  after the set was moved into place, or after the run
//	             failed, before services start; BACKUP_RC tells which
//	pre-restore  before the target disk is touched (backupctl restore and
//	             clone); a failure aborts
//	post-restore after the restore or clone, also a failed one, with
//	             BACKUP_RC
const (
	PreBackup   Event = "pre-backup"
	Ready       Event = "ready"
	PostBackup  Event = "post-backup"
	PreRestore  Event = "pre-restore"
	PostRestore Event = "post-restore"
)

// Events lists every event.
var Events = []Event{PreBackup, Ready, PostBackup, PreRestore, PostRestore}

// Aborts reports whether a failing hook at e stops the operation: only
// the hooks that run before anything is written can; afterwards a hook's
// failure is reported, not acted on.
func (e Event) Aborts() bool { return e == PreBackup || e == Ready || e == PreRestore }

// DefaultDir is where packaged and admin hooks live.
const DefaultDir = "/etc/backupctl/hooks.d"

// DefaultTimeout bounds one hook when Options.Timeout is 0.
const DefaultTimeout = 10 * time.Minute

// Options configure a Runner.
type Options struct {
	// Dir holds one folder per event; "" means no folder hooks.
	Dir string
	// Commands are argvs from the config, per event.
	Commands map[Event][][]string
	// Timeout bounds each hook; 0 means DefaultTimeout. On timeout the
	// hook's process group gets SIGTERM, and SIGKILL 5 s later.
	Timeout time.Duration
	// Env is the base environment; nil means os.Environ().
	Env []string
	Log *slog.Logger
}

// Runner runs hooks.
type Runner struct {
	opts Options
	log  *slog.Logger
}

// New returns a Runner.
func New(opts Options) *Runner {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	return &Runner{opts: opts, log: log}
}

// Vars are the facts a hook gets, as environment variables named like
// raspiBackup's /tmp/raspiBackup.vars so ported scripts keep working.
type Vars struct {
	TargetDir  string // BACKUP_TARGETDIR: the set folder
	TargetFile string // BACKUP_TARGETFILE: the payload file (dd/tar), "" for rsync
	Type       string // BACKUP_TYPE: dd, ddz, tar, tgz, rsync
	RC         *int   // BACKUP_RC: 0 on success; unset before the outcome is known
	LogFile    string // LOG_FILE: the run log
	Host       string // BACKUP_HOSTNAME
	RestoreDev string // RESTORE_DEVICE, restore events only
}

// Environ returns vars as KEY=value strings, with BACKUP_EVENT set to e.
// Empty fields are left out, so a hook can test with ${VAR:-}.
func (v Vars) Environ(e Event) []string {
	env := []string{"BACKUP_EVENT=" + string(e)}
	add := func(k, val string) {
		if val != "" {
			env = append(env, k+"="+val)
		}
	}
	add("BACKUP_TARGETDIR", v.TargetDir)
	add("BACKUP_TARGETFILE", v.TargetFile)
	add("BACKUP_TYPE", v.Type)
	if v.RC != nil {
		add("BACKUP_RC", strconv.Itoa(*v.RC))
	}
	add("LOG_FILE", v.LogFile)
	add("BACKUP_HOSTNAME", v.Host)
	add("RESTORE_DEVICE", v.RestoreDev)
	return env
}

// ErrHookFailed is wrapped by every hook failure; with errors.Is a caller
// tells a hook failure from its own.
var ErrHookFailed = errors.New("hook failed")

// Hook is one program to run.
type Hook struct {
	Argv   []string
	Source string // file path, or "config" for config commands
}

// List returns the hooks for e in run order. A missing event folder is
// not an error.
func (r *Runner) List(e Event) ([]Hook, error) {
	var hooks []Hook
	if r.opts.Dir != "" {
		dir := filepath.Join(r.opts.Dir, string(e))
		entries, err := os.ReadDir(dir)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("list %s hooks: %w", e, err)
		}
		names := make([]string, 0, len(entries))
		for _, de := range entries {
			names = append(names, de.Name())
		}
		sort.Strings(names) // ReadDir sorts already; make the contract explicit
		for _, name := range names {
			if skipName(name) {
				continue
			}
			p := filepath.Join(dir, name)
			fi, err := os.Stat(p) // follow symlinks, as run-parts does
			if err != nil {
				r.log.Warn("skipping hook", "path", p, "error", err)
				continue
			}
			if !fi.Mode().IsRegular() {
				continue
			}
			if fi.Mode().Perm()&0o111 == 0 {
				r.log.Warn("skipping hook that is not executable", "path", p)
				continue
			}
			hooks = append(hooks, Hook{Argv: []string{p}, Source: p})
		}
	}
	for _, argv := range r.opts.Commands[e] {
		if len(argv) == 0 || argv[0] == "" {
			continue
		}
		hooks = append(hooks, Hook{Argv: argv, Source: "config"})
	}
	return hooks, nil
}

func skipName(name string) bool {
	if strings.HasPrefix(name, ".") || strings.HasSuffix(name, "~") {
		return true
	}
	for _, s := range []string{".dpkg-old", ".dpkg-new", ".dpkg-dist", ".dpkg-tmp", ".rpmnew", ".rpmsave"} {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	return false
}

// Run runs the hooks for e. At an event that Aborts, the first failing
// hook stops the run and Run returns its error; elsewhere every hook runs
// and the failures come back joined, for the caller to report. Each
// failure wraps ErrHookFailed and names the hook, its exit status and the
// last lines of its output.
func (r *Runner) Run(ctx context.Context, e Event, vars Vars) error {
	hooks, err := r.List(e)
	if err != nil {
		return err
	}
	var errs []error
	for _, h := range hooks {
		if err := r.runOne(ctx, e, h, vars); err != nil {
			if e.Aborts() {
				return err
			}
			r.log.Warn("hook failed; going on", "event", string(e), "hook", h.Argv[0], "error", err)
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (r *Runner) runOne(ctx context.Context, e Event, h Hook, vars Vars) error {
	ctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.Argv[0], h.Argv[1:]...)
	base := r.opts.Env
	if base == nil {
		base = os.Environ()
	}
	cmd.Env = append(append([]string(nil), base...), vars.Environ(e)...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.Stdin = nil // /dev/null: a hook must not wait for a terminal
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	r.log.Info("running hook", "event", string(e), "hook", h.Argv[0])
	start := time.Now()
	err := cmd.Run()
	for _, line := range strings.Split(strings.TrimRight(out.String(), "\n"), "\n") {
		if line != "" {
			r.log.Info("hook output", "hook", filepath.Base(h.Argv[0]), "line", line)
		}
	}
	if err == nil {
		r.log.Info("hook done", "event", string(e), "hook", h.Argv[0], "duration", time.Since(start).Round(time.Millisecond))
		return nil
	}
	why := err.Error()
	if ctx.Err() == context.DeadlineExceeded {
		why = fmt.Sprintf("timed out after %s", r.opts.Timeout)
	}
	return fmt.Errorf("%w: %s hook %s: %s%s", ErrHookFailed, e, h.Argv[0], why, tail(out.String(), 3))
}

// tail returns the last n non-empty lines of s, prefixed for an error.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) == 1 && lines[0] == "" {
		return ""
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return " (output: " + strings.Join(lines, " | ") + ")"
}
