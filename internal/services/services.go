// Package services stops services before a backup and starts them again
// afterwards, in reverse order, always: after success, after an error, after
// the context was cancelled by a signal, and after a panic. raspiBackup
// #919 is the failure this package exists to prevent (docker containers
// left stopped after a failed run).
//
// Every service is run as an argv, never through a shell: systemd units
// with `systemctl stop|start UNIT`, docker containers with
// `docker stop|start NAME`, anything else as the user's own argv.
//
// Units go through systemctl rather than D-Bus (go-systemd): systemctl
// already waits for the stop/start job and turns a failed job into an
// exit status, it is on every systemd system, and the same argv Runner
// then covers units, containers and commands, so one fake tests them all
// and one real-process test proves the restart path. D-Bus would add two
// modules to the Pi binary for no behaviour we lack.
package services

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Stopper is one thing to stop before the backup and start after it.
type Stopper interface {
	// Stop stops the service. A Stop that fails may have half-stopped it,
	// so Run still calls Start for it.
	Stop(ctx context.Context) error
	// Start starts the service again. It must be safe to call on a service
	// that is already running (systemctl and docker are).
	Start(ctx context.Context) error
	// String names the service for logs and errors.
	String() string
}

// Options configure Run.
type Options struct {
	Log *slog.Logger
	// StartTimeout bounds each Start; 0 means DefaultStartTimeout. Starts
	// run on a context detached from the caller's, so this timeout is
	// the only thing that can cut them short.
	StartTimeout time.Duration
}

// DefaultStartTimeout bounds one Start when Options.StartTimeout is 0. It
// is generous because a database may take a while to come back, and a
// start that is cut short leaves the service down.
const DefaultStartTimeout = 5 * time.Minute

// ErrStop is wrapped when a service could not be stopped; the backup was
// not run. raspiBackup returns RC 105 here.
var ErrStop = errors.New("stop service")

// ErrStart is wrapped when a service could not be started again.
// raspiBackup returns RC 106 here.
var ErrStart = errors.New("start service")

// Run stops services in order, calls fn, and then starts every service it
// tried to stop in reverse order. Starts happen however fn ends: on error,
// on a cancelled ctx, and on a panic (which is re-raised after the starts,
// so a crash stays a crash). Starts use a context that ignores ctx's
// cancellation — a Ctrl-C must not leave containers stopped — bounded by
// Options.StartTimeout.
//
// If a Stop fails, fn is not called: the services stopped so far (and the
// one that failed) are started again and the error wraps ErrStop. The
// returned error joins fn's error with any start errors (wrapping
// ErrStart).
//
// Run cannot help against SIGKILL or power loss; for SIGINT and SIGTERM
// the caller passes a signal.NotifyContext ctx and fn returns when it is
// cancelled.
func Run(ctx context.Context, opts Options, services []Stopper, fn func(context.Context) error) (err error) {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	timeout := opts.StartTimeout
	if timeout <= 0 {
		timeout = DefaultStartTimeout
	}
	attempted := 0 // services[:attempted] need a Start
	defer func() {
		p := recover()
		if p != nil {
			log.Error("panic during backup; starting services before re-panicking", "panic", fmt.Sprint(p))
		}
		startErr := startAll(context.WithoutCancel(ctx), log, timeout, services[:attempted])
		err = errors.Join(err, startErr)
		if p != nil {
			panic(p)
		}
	}()
	for _, s := range services {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%w %s: %w", ErrStop, s, err)
		}
		attempted++
		log.Info("stopping service", "service", s.String())
		if err := s.Stop(ctx); err != nil {
			return fmt.Errorf("%w %s: %w", ErrStop, s, err)
		}
	}
	return fn(ctx)
}

// startAll starts services in reverse order and goes on after failures:
// one service that will not start must not keep the others down.
func startAll(ctx context.Context, log *slog.Logger, timeout time.Duration, services []Stopper) error {
	var errs []error
	for i := len(services) - 1; i >= 0; i-- {
		s := services[i]
		log.Info("starting service", "service", s.String())
		sctx, cancel := context.WithTimeout(ctx, timeout)
		err := s.Start(sctx)
		cancel()
		if err != nil {
			log.Error("service did not start", "service", s.String(), "error", err)
			errs = append(errs, fmt.Errorf("%w %s: %w", ErrStart, s, err))
		}
	}
	return errors.Join(errs...)
}
