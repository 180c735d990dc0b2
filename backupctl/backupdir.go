package main

import (
	"context"
	"io/fs"
	"path"
	"strings"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/config"
	"github.com/pibackup/pibackup/internal/store"
)

// BACKUPDIR, and a set folder in it, may be a local folder or a
// server's URL (sftp://, smb://, s3://); internal/store opens both.

// openStore opens the backup folder dir. c supplies what a server needs
// (keys, known hosts, the SMB password); nil loads the configuration
// files and flags (the command's config flags, or nil for none).
func (a *app) openStore(ctx context.Context, dir string, c *config.Config, flags *config.Flags) (store.Store, error) {
	o := store.Options{Log: a.log}
	if store.IsURL(dir) {
		if c == nil {
			explicit := ""
			if flags != nil {
				explicit = flags.File
			}
			// Warnings were printed when the command loaded it.
			l, err := config.Load(configSources(explicit), flags)
			if err != nil {
				return nil, withCode(exitUsage, err)
			}
			c = l.Config
		}
		var err error
		if o, err = c.StoreOptions(a.log); err != nil {
			return nil, withCode(exitPreflight, err)
		}
	}
	st, err := store.Open(ctx, dir, o)
	if err != nil {
		return nil, withCode(exitPreflight, err)
	}
	return st, nil
}

// splitURL splits a URL naming a folder in a backup folder into the
// URL of its parent and its name: sftp://h/backup/pi/SET is
// sftp://h/backup/pi and SET.
func splitURL(u string) (parent, name string) {
	u = strings.TrimRight(u, "/")
	i := strings.LastIndex(u, "/")
	if i < 0 || strings.HasSuffix(u[:i], "/") { // "s3://bucket": no parent
		return u, "."
	}
	return u[:i], u[i+1:]
}

// listOptions are how sets are told from sets in progress in st.
func listOptions(st store.Store) backupset.ListOptions {
	return backupset.ListOptions{ManifestLast: !st.CanRename()}
}

// readHostStateIn reads the state file of host in a server's store.
func readHostStateIn(st store.Store, host string) (hostState, error) {
	name := path.Join(host, stateFileName)
	b, err := fs.ReadFile(st.FS(), name)
	return parseHostState(name, b, err)
}

// updateHostStateIn is updateHostState on a server. Create makes only
// new files, so the old state file is removed before the new one takes
// its name. On a store that renames, the new file is complete before
// that (create, then remove and rename): a run killed in between leaves
// the old state or none, never half a file. On one that cannot (S3),
// the new content is written in place after the remove: an object is
// whole or absent, and a lost state file costs only the last run's
// record and a reminder (status then says "no run recorded").
func updateHostStateIn(ctx context.Context, st store.Store, host string, change func(*hostState)) error {
	b, err := changedState(readHostStateIn(st, host))(change)
	if err != nil {
		return err
	}
	name := path.Join(host, stateFileName)
	if !st.CanRename() {
		if err := st.RemoveAll(ctx, name); err != nil {
			return err
		}
		return store.WriteFile(ctx, st, name, b)
	}
	tmp := name + ".new"
	if err := st.RemoveAll(ctx, tmp); err != nil {
		return err
	}
	if err := store.WriteFile(ctx, st, tmp, b); err != nil {
		return err
	}
	if err := st.RemoveAll(ctx, name); err != nil {
		return err
	}
	return st.Rename(ctx, tmp, name)
}
