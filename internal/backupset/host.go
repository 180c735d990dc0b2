package backupset

import "strings"

// The files backupctl keeps in a host folder (BACKUPDIR/<host>/) next to
// the sets. None of them parses as a set name, so listings pass them by.
const (
	// LockFile is the flock two runs of one host meet on in a local
	// folder (a server's lock is a local file, backup.LockServer).
	LockFile = ".backupctl.lock"
	// StateFile records the last run and the last test restore
	// (state.go); it lives next to the sets so it moves with them and
	// needs no /var.
	StateFile = ".backupctl-state.json"
	// FailedRunLog is where the run log of the last failed run is kept:
	// the set it was written in is removed.
	FailedRunLog = "backupctl-failed.log"
)

// DeletingSuffix marks a set being deleted inside <host>/tmp/ (TmpDir):
// retention renames a set to tmp/<name>.deleting, one atomic step after
// which no listing sees it, and only then removes it. The suffix keeps the
// name from parsing as a set (nothing may follow the timestamp but
// "_snapshot"), so listings ignore it, and tmp/ is where raspiBackup and
// we already expect incomplete things.
const DeletingSuffix = ".deleting"

// DeletingName is the name in tmp/ of the set folder set while it is
// being deleted.
func DeletingName(set string) string { return set + DeletingSuffix }

// IsDeleting reports whether name, in tmp/, is a set whose delete was
// interrupted.
func IsDeleting(name string) bool { return strings.HasSuffix(name, DeletingSuffix) }
