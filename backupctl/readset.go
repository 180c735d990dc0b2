package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/config"
	"github.com/pibackup/pibackup/internal/payload"
	"github.com/pibackup/pibackup/internal/store"
)

// readFolder is a set folder (or, for mount, a host folder) that mount,
// extract and diff read: a local path or a server's URL, opened the
// same way for both. Its files are read through fsys (ranged reads on a
// server); encrypted payloads are decrypted by the reading package
// (payload.SetFS) with the command's keys.
type readFolder struct {
	fsys  fs.FS
	name  string // the folder's name: a set's or a host's
	local string // its path on this machine, "" on a server
	where string // for messages: the path or the redacted URL
	// manifestLast: on this store a set folder without a manifest is
	// being written (S3), not a set.
	manifestLast bool
	close        func() error
}

// keyProblem says whether err is a set's key missing or wrong: found
// before anything is read out, so the command stops with a preflight.
func keyProblem(err error) bool {
	return errors.Is(err, payload.ErrNoKey) || errors.Is(err, payload.ErrWrongKey)
}

// openReadFolder opens arg, a set folder or (hostOK) a host folder, as a
// local path or URL/HOST/SET (URL/HOST) on a server.
func (a *app) openReadFolder(ctx context.Context, arg string, c *config.Config, hostOK bool) (*readFolder, error) {
	if !store.IsURL(arg) {
		abs, err := filepath.Abs(arg)
		if err != nil {
			return nil, withCode(exitUsage, err)
		}
		if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
			return nil, preflight(fmt.Errorf("%s is not a backup set folder", arg))
		}
		return &readFolder{fsys: os.DirFS(abs), name: filepath.Base(abs), local: abs, where: abs, close: func() error { return nil }}, nil
	}
	_, name := splitURL(arg)
	if _, err := backupset.Parse(name); err != nil && hostOK {
		// A host folder: the store is opened at it.
		st, err := a.openStore(ctx, arg, c, nil)
		if err != nil {
			return nil, err
		}
		return &readFolder{fsys: st.FS(), name: name, where: store.Redact(arg), manifestLast: !st.CanRename(), close: st.Close}, nil
	}
	set, err := a.openSetURL(ctx, arg, c, nil)
	if err != nil {
		return nil, preflight(err)
	}
	return &readFolder{fsys: set.fsys, name: set.name, where: store.Redact(arg), close: set.st.Close}, nil
}
