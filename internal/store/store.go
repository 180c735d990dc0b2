// Package store is where backupctl keeps its sets: a local folder (a
// mounted USB disk, NFS or CIFS mount included), an SFTP server, an SMB
// share or an S3 bucket. backupctl opens one from BACKUPDIR — a path or
// a URL (see Open) — and writes, lists, verifies and deletes sets
// through the Store interface, so no mount is needed for a server.
//
// A Store is a file store, not a set writer: the set protocol (where a
// set is written, when it becomes visible, what the next run cleans up)
// is the backup engine's. It picks one of two protocols from CanRename:
//
//   - stores that rename (local, SFTP, SMB): the set is written under
//     <host>/tmp/<set>/ and the folder is renamed to <host>/<set> when it
//     is complete and verified, as on a local disk;
//   - stores that cannot (S3): the set is written in place at
//     <host>/<set>/ and its manifest is written last; a set folder
//     without a manifest is incomplete, never listed as a set, and is
//     removed by the next run.
//
// Only one backupctl writes into a host folder at a time: every Pi has
// its own host folder, and the runs of one Pi exclude each other with a
// local lock, so a Store needs no server-side locking.
package store

import (
	"context"
	"errors"
	"io"
	"io/fs"
)

// Store is an opened backup folder (the one holding host folders). Names
// are slash-separated paths relative to it that pass fs.ValidPath; a
// Store refuses any other name.
type Store interface {
	// FS reads the folder. It implements fs.ReadDirFS and fs.StatFS, and
	// the files it opens implement io.ReaderAt and io.Seeker (ranged
	// reads on S3), so verify, list and restore read every store alike.
	FS() fs.FS
	// Create makes a new file. The file must not exist (fs.ErrExist);
	// missing parent folders are made. What was written is durable
	// (fsync'ed, upload completed) when Close returns nil. Until then a
	// reader may see a partial file (filesystems) or nothing (S3). Abort
	// discards the file.
	Create(ctx context.Context, name string) (File, error)
	// MkdirAll makes a folder and its parents. Stores without folders
	// (S3) do nothing.
	MkdirAll(ctx context.Context, name string) error
	// CanRename says whether Rename works (see the package comment).
	CanRename() bool
	// Rename renames a file or a folder in one step; the new name must
	// not exist. It returns ErrNoRename when CanRename is false.
	Rename(ctx context.Context, oldname, newname string) error
	// RemoveAll removes name and everything below it. A name that does
	// not exist is no error.
	RemoveAll(ctx context.Context, name string) error
	// Local is the folder's path on this machine when it is a local (or
	// mounted) folder, else "". rsync sets need one: they are made by
	// rsync with --link-dest, which needs hardlinks and a filesystem.
	Local() string
	// String describes the store for messages and logs. It never holds
	// a secret.
	String() string
	// Close disconnects. It is safe to call more than once.
	Close() error
}

// File is a file being written into a store.
type File interface {
	io.Writer
	// Close completes the file; see Store.Create.
	Close() error
	// Abort discards what was written (the partial file is removed, a
	// multipart upload aborted). It is safe after Close failed.
	Abort() error
}

// ErrNoRename is returned by Rename on stores that cannot rename.
var ErrNoRename = errors.New("this store cannot rename; sets are made visible by writing their manifest last")

// ErrUnsupported is returned by Open for a kind of store this build
// cannot write to.
var ErrUnsupported = errors.New("backup folder kind not supported")

// checkName refuses names that are not clean relative paths, so no name
// leads a write out of the folder.
func checkName(op, name string) error {
	if !fs.ValidPath(name) || name == "." {
		return &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	return nil
}
