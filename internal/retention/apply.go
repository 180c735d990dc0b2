package retention

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/store"
)

// ApplyOptions configure Apply.
type ApplyOptions struct {
	// Store holds the sets; the Set.Dir values are names in it (list
	// its FS). Nil opens Root.
	Store store.Store
	// Root is the OS path that the Set.Dir values are relative to: the
	// directory that was given to backupset.List as an os.DirFS. Only
	// when Store is nil.
	Root string
	Log  *slog.Logger
}

// Apply deletes the sets in remove so that an interrupted run never
// leaves a half-deleted set that looks valid. On a store that renames,
// each set is first renamed to <host>/tmp/<name>.deleting — one atomic
// step after which no listing sees it as a set — and only then removed;
// leftovers from an earlier interrupted run are removed first. On a
// store that cannot (S3), its manifest goes first: a set folder without
// one is a set in progress to every listing (backupset.ListOptions) and
// is removed by the next backup run; then the rest.
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
	st := opts.Store
	if st == nil {
		d, err := store.OpenDir(opts.Root)
		if err != nil {
			return nil, fmt.Errorf("retention: %w", err)
		}
		st = d
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
		dir := path.Clean(s.Dir)
		if !st.CanRename() {
			if err := deleteManifestFirst(ctx, st, dir, s.Name.Host); err != nil {
				errs = append(errs, fmt.Errorf("delete %s: %w", s, err))
				continue
			}
			log.Info("removed backup set", "set", s.String())
			done = append(done, s)
			continue
		}
		tmp := path.Join(path.Dir(dir), backupset.TmpDir)
		if !cleaned[tmp] {
			cleaned[tmp] = true
			if err := removeLeftovers(ctx, st, tmp, log); err != nil {
				errs = append(errs, err)
			}
		}
		if err := st.MkdirAll(ctx, tmp); err != nil {
			errs = append(errs, fmt.Errorf("delete %s: %w", s, err))
			continue
		}
		doomed := path.Join(tmp, backupset.DeletingName(path.Base(dir)))
		if err := st.Rename(ctx, dir, doomed); err != nil {
			errs = append(errs, fmt.Errorf("delete %s: move aside: %w", s, err))
			continue
		}
		if err := st.RemoveAll(ctx, doomed); err != nil {
			// The set is already invisible; the next run retries.
			errs = append(errs, fmt.Errorf("delete %s: remove %s: %w", s, doomed, err))
		}
		log.Info("removed backup set", "set", s.String())
		done = append(done, s)
	}
	for tmp := range cleaned {
		// An empty tmp/ goes, as after a backup. The host lock is held
		// (or nothing writes there: retention without a backup).
		if es, err := fs.ReadDir(st.FS(), tmp); err == nil && len(es) == 0 {
			st.RemoveAll(ctx, tmp)
		}
	}
	return done, errors.Join(errs...)
}

// deleteManifestFirst removes a set on a store that cannot rename: the
// manifest (under every name it may have), then the rest.
func deleteManifestFirst(ctx context.Context, st store.Store, dir, host string) error {
	for _, n := range backupset.ManifestNames(host) {
		if err := st.RemoveAll(ctx, path.Join(dir, n)); err != nil {
			return fmt.Errorf("remove its manifest: %w", err)
		}
	}
	if err := st.RemoveAll(ctx, dir); err != nil {
		// Without its manifest it is a set in progress now, which the
		// next backup run removes.
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	return nil
}

func removeLeftovers(ctx context.Context, st store.Store, tmp string, log *slog.Logger) error {
	entries, err := fs.ReadDir(st.FS(), tmp)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("look for interrupted deletes: %w", err)
	}
	var errs []error
	for _, e := range entries {
		if !backupset.IsDeleting(e.Name()) {
			continue
		}
		p := path.Join(tmp, e.Name())
		log.Info("finishing interrupted delete", "path", p)
		if err := st.RemoveAll(ctx, p); err != nil {
			errs = append(errs, fmt.Errorf("finish interrupted delete of %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}
