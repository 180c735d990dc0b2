package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/pibackup/pibackup/internal/backupset"
)

// deletingSuffix marks a set being deleted inside <host>/tmp/. The suffix
// keeps the name from parsing as a set (nothing may follow the timestamp
// but "_snapshot"), so listings ignore it, and tmp/ is where raspiBackup
// and we already expect incomplete things.
const deletingSuffix = ".deleting"

// ApplyOptions configure Apply.
type ApplyOptions struct {
	// Root is the OS path that the Set.Dir values are relative to: the
	// directory that was given to backupset.List as an os.DirFS.
	Root string
	Log  *slog.Logger
}

// Apply deletes the sets in remove. Each set is first renamed to
// <host>/tmp/<name>.deleting — one atomic step after which no listing sees
// it as a set — and only then removed, so an interrupted run leaves either
// the complete set or an invisible leftover, never a half-deleted set that
// looks valid. Leftovers from an earlier interrupted run are removed first.
//
// Apply refuses snapshots and sets in progress even if the caller put them
// in remove. Call it only after the new backup succeeded and was moved into
// place. It returns the sets it removed and the errors joined; it goes on
// after a failure so that one bad set does not block pruning the rest.
func Apply(ctx context.Context, opts ApplyOptions, remove []backupset.Set) ([]backupset.Set, error) {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var done []backupset.Set
	var errs []error
	cleaned := map[string]bool{}
	for _, s := range remove {
		if err := ctx.Err(); err != nil {
			errs = append(errs, fmt.Errorf("retention stopped: %w", err))
			break
		}
		if s.InProgress || s.Name.Snapshot != "" {
			errs = append(errs, fmt.Errorf("BUG: retention asked to delete %s, a snapshot or a set in progress; skipped", s))
			continue
		}
		dir := filepath.Join(opts.Root, filepath.FromSlash(s.Dir))
		hostDir := filepath.Dir(dir)
		tmp := filepath.Join(hostDir, backupset.TmpDir)
		if !cleaned[tmp] {
			cleaned[tmp] = true
			if err := removeLeftovers(tmp, log); err != nil {
				errs = append(errs, err)
			}
		}
		if err := os.MkdirAll(tmp, 0o755); err != nil {
			errs = append(errs, fmt.Errorf("delete %s: %w", s, err))
			continue
		}
		doomed := filepath.Join(tmp, filepath.Base(dir)+deletingSuffix)
		if err := os.Rename(dir, doomed); err != nil {
			errs = append(errs, fmt.Errorf("delete %s: move aside: %w", s, err))
			continue
		}
		if err := os.RemoveAll(doomed); err != nil {
			// The set is already invisible; the next run retries.
			errs = append(errs, fmt.Errorf("delete %s: remove %s: %w", s, doomed, err))
		}
		log.Info("removed backup set", "set", s.String())
		done = append(done, s)
	}
	return done, errors.Join(errs...)
}

func removeLeftovers(tmp string, log *slog.Logger) error {
	entries, err := os.ReadDir(tmp)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("look for interrupted deletes: %w", err)
	}
	var errs []error
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), deletingSuffix) {
			continue
		}
		p := filepath.Join(tmp, e.Name())
		log.Info("finishing interrupted delete", "path", p)
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, fmt.Errorf("finish interrupted delete of %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}
