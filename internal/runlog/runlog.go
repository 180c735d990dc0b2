// Package runlog writes the log of one backup or restore run into a file
// inside the set (<host>-backup.backupctl.log, backupset.RunLogName, next
// to raspiBackup's own raspiBackup.log),
// tees it to the console handler, ends it with one summary record, and
// masks secrets in every record on the way out.
//
// The file is opened while the set still lives in <host>/tmp/; an open file
// survives the rename of its directory on the same file system, so the
// caller can move the set into place and keep logging.
package runlog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"
)

// Options configure Open.
type Options struct {
	// Path is the log file, normally backupset.RunLogName(host) in the
	// set folder (the set's format names it, not this package).
	Path string
	// Console, if not nil, receives every record too (e.g. the stderr
	// handler the CLI already has). Its level filters what it shows; the
	// file gets Level.
	Console slog.Handler
	// Level of the file; nil means slog.LevelInfo.
	Level slog.Leveler
	// JSON selects slog's JSON handler for the file (one object a line,
	// for machines); the default is the text handler (for people).
	JSON bool
	// Secrets are masked in every record, console included.
	Secrets []string
	// Now returns the current time; nil means time.Now. Tests set it.
	Now func() time.Time
}

// Log is an open run log.
type Log struct {
	// Logger logs to the file and the console, with secrets masked.
	Logger *slog.Logger
	path   string
	file   *os.File
	start  time.Time
	now    func() time.Time
}

// Open creates (or appends to) the file Path with mode 0600: a log can
// name hosts, users and paths that other users of the Pi need not see.
func Open(opts Options) (*Log, error) {
	if opts.Path == "" {
		return nil, errors.New("run log: no file given")
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	p := opts.Path
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open run log: %w", err)
	}
	level := opts.Level
	if level == nil {
		level = slog.LevelInfo
	}
	ho := &slog.HandlerOptions{Level: level}
	var fh slog.Handler
	if opts.JSON {
		fh = slog.NewJSONHandler(f, ho)
	} else {
		fh = slog.NewTextHandler(f, ho)
	}
	h := fh
	if opts.Console != nil {
		h = slog.NewMultiHandler(fh, opts.Console)
	}
	h = NewMaskHandler(h, NewMasker(opts.Secrets...))
	return &Log{Logger: slog.New(h), path: p, file: f, start: now(), now: now}, nil
}

// Path is the log file's path as opened.
func (l *Log) Path() string { return l.path }

// Summary is the outcome of a run, logged as the last record.
type Summary struct {
	Operation string // "backup", "restore", "clone"
	Set       string // set folder name
	Type      string // dd, ddz, tar, tgz, rsync
	Bytes     int64  // payload bytes written, 0 if unknown
	Removed   []string
	Err       error // nil on success
}

// Summary logs s as one record with msg "summary" and the run's duration,
// at Info on success and Error on failure, so `grep summary` over a backup
// folder gives one line per run.
func (l *Log) Summary(ctx context.Context, s Summary) {
	attrs := []slog.Attr{
		slog.String("op", s.Operation),
		slog.Bool("ok", s.Err == nil),
		slog.String("set", s.Set),
		slog.String("type", s.Type),
		slog.Duration("duration", l.now().Sub(l.start).Round(time.Millisecond)),
	}
	if s.Bytes > 0 {
		attrs = append(attrs, slog.Int64("bytes", s.Bytes))
	}
	if len(s.Removed) > 0 {
		attrs = append(attrs, slog.Any("removed", s.Removed))
	}
	level := slog.LevelInfo
	if s.Err != nil {
		level = slog.LevelError
		attrs = append(attrs, slog.String("error", s.Err.Error()))
	}
	l.Logger.LogAttrs(ctx, level, "summary", attrs...)
}

// Close syncs and closes the file. The Logger must not be used afterwards
// for the file (console records would still pass, file records are lost).
func (l *Log) Close() error {
	serr := l.file.Sync()
	cerr := l.file.Close()
	if cerr != nil {
		return fmt.Errorf("close run log: %w", cerr)
	}
	if serr != nil {
		return fmt.Errorf("sync run log: %w", serr)
	}
	return nil
}
