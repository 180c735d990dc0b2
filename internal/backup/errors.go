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
	// ErrNoHostName: the source root has no /etc/hostname and no host
	// name was given; the host name names the host folder (with
	// ErrPreflight).
	ErrNoHostName = errors.New("cannot tell the host name")
	// ErrBadHostName: the host name cannot name a folder (with
	// ErrPreflight).
	ErrBadHostName = errors.New("host name cannot name a folder")
	// ErrBootNotMounted: the running system's boot partition is not
	// mounted, so which disk to back up is not known (with ErrPreflight).
	ErrBootNotMounted = errors.New("no boot partition mounted at /boot/firmware or /boot")
	// ErrSourceMounted: a partition of the source disk given is mounted;
	// its image would not be consistent (with ErrPreflight).
	ErrSourceMounted = errors.New("a partition of the source disk is mounted")
)
