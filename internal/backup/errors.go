package backup

import (
	"errors"
)

// Errors callers branch on (backupctl maps them to exit codes).
var (
	// ErrPreflight wraps every failed check made before the first byte is
	// written: options, source, target, free space. Nothing was written.
	ErrPreflight = errors.New("pre-flight check failed")
	// ErrLocked means another run holds the host folder's lock.
	ErrLocked = errors.New("another backupctl run is backing up this host")
	// ErrNoSpace means the target ran full while writing; the partial set
	// was removed.
	ErrNoSpace = errors.New("no space left on the backup target")
	// ErrRsyncRemote refuses an rsync set on a server (it comes with
	// ErrPreflight: nothing was written).
	ErrRsyncRemote = errors.New("rsync sets need a local or mounted folder")
)
