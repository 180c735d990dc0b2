package main

import (
	"context"
	"errors"

	"github.com/spf13/cobra"

	"github.com/pibackup/pibackup/internal/backup"
	"github.com/pibackup/pibackup/internal/backuprun"
	"github.com/pibackup/pibackup/internal/config"
	"github.com/pibackup/pibackup/internal/restore"
	"github.com/pibackup/pibackup/internal/restoretest"
	"github.com/pibackup/pibackup/internal/services"
	"github.com/pibackup/pibackup/internal/verify"
)

// Exit codes, one place for all commands; `backupctl help` lists them
// (exitStatusHelp).
const (
	exitOK        = 0
	exitFailure   = 1 // the operation failed; stderr says why
	exitUsage     = 2 // bad command line
	exitPreflight = 3 // a check before writing failed (space, target, lock); nothing was written
	exitVerify    = 4 // a set did not verify
	exitLocked    = 5 // another backupctl run holds the lock (the host folder's, or a restore or clone target's)
	exitCancelled = 130
)

// exitCode is the one place an error becomes an exit code (as restic's
// exitCodeForError): the engines say what went wrong with sentinels, this
// switch says what that means for a script. The order matters where an
// error wraps several: a cancel is a cancel whatever it interrupted, and
// a busy target or host is "locked" even when the command found it while
// checking before writing.
func exitCode(err error) int {
	var ce *codedError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ce):
		return ce.code
	case errors.Is(err, context.Canceled):
		return exitCancelled
	case errors.Is(err, backup.ErrLocked), errors.Is(err, restore.ErrTargetBusy):
		return exitLocked
	case errors.Is(err, verify.ErrFailed), errors.Is(err, backuprun.ErrNewSetBad):
		return exitVerify
	case errors.Is(err, errPreflight), errors.Is(err, backup.ErrPreflight), errors.Is(err, services.ErrStop),
		errors.Is(err, config.ErrInsecure), errors.Is(err, restoretest.ErrNoSpace):
		return exitPreflight
	}
	return exitFailure
}

// errPreflight marks an error the command met before it wrote anything:
// the set or target could not be opened or planned, the user did not
// confirm. Only the command knows that of an engine's error (the same
// error while writing is a failure), so it marks it (preflight).
var errPreflight = errors.New("a check before writing failed")

// preflight marks err as met before anything was written (errPreflight).
func preflight(err error) error { return markAs(errPreflight, err) }

// markAs returns err, which errors.Is also finds to be kind; the message
// stays err's. nil stays nil.
func markAs(kind, err error) error {
	if err == nil {
		return nil
	}
	return &kindError{err: err, kind: kind}
}

// kindError is err marked as kind (markAs).
type kindError struct{ err, kind error }

func (e *kindError) Error() string   { return e.err.Error() }
func (e *kindError) Unwrap() []error { return []error{e.err, e.kind} }

// codedError carries an exit code the CLI chose itself, for a command
// line it refuses (flag values, arguments, the configuration it reads),
// through cobra to run.
type codedError struct {
	code int
	err  error
}

func (e *codedError) Error() string { return e.err.Error() }
func (e *codedError) Unwrap() error { return e.err }

func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &codedError{code: code, err: err}
}

// onRun makes every command in the tree under c call started before it
// runs, so run tells cobra's own errors (unknown command or flag, bad
// flag value, wrong argument count: all found before a command runs)
// from the commands' errors without reading their English text.
func onRun(c *cobra.Command, started func()) {
	if f := c.RunE; f != nil {
		c.RunE = func(cmd *cobra.Command, args []string) error { started(); return f(cmd, args) }
	}
	if f := c.Run; f != nil {
		c.Run = func(cmd *cobra.Command, args []string) { started(); f(cmd, args) }
	}
	for _, sub := range c.Commands() {
		onRun(sub, started)
	}
}
