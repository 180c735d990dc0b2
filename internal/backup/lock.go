package backup

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	"github.com/pibackup/pibackup/internal/store"
)

// DefaultLockDir holds the locks of runs into servers.
const DefaultLockDir = "/run/backupctl"

// lock takes the host's lock: <host>/.backupctl.lock in a local folder,
// as raspiBackup's users know it; for a server, a local lock file named
// for the server's folder and the host, since every Pi has its own host
// folder and only the runs of this Pi can meet (store's package
// comment), and a lock on the server would outlive a killed run.
func (r *runner) lock() (unlock func(), err error) {
	if r.local != "" {
		return LockHost(filepath.Join(r.local, r.host))
	}
	return LockServer(r.deps.LockDir, r.st, r.host)
}

// LockServer takes the lock of host's folder in the server's store st,
// a local lock file under lockDir ("" is DefaultLockDir), failing at
// once with ErrLocked when another run holds it. Backup runs take it,
// and so does restore-test of a set on a server.
func LockServer(lockDir string, st store.Store, host string) (unlock func(), err error) {
	dir := cmp.Or(lockDir, DefaultLockDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("lock %s/%s: %w", st, host, err)
	}
	return lockPath(serverLockFile(dir, st, host), st.String()+"/"+host)
}

// lockHeld says whether another run holds the host's lock.
func (r *runner) lockHeld() bool {
	if r.local != "" {
		return lockHeld(filepath.Join(r.local, r.host))
	}
	return lockFileHeld(serverLockFile(cmp.Or(r.deps.LockDir, DefaultLockDir), r.st, r.host))
}

// serverLockFile is the lock of a host folder on a server: its name is
// a hash of the store's description (which holds no secret) and the
// host, so one URL spelled the same way always maps to one lock.
func serverLockFile(dir string, st store.Store, host string) string {
	return filepath.Join(dir, "lock-"+ServerKey(st, host))
}

// ServerKey names a host folder on a server in local file names (its
// lock, the run log kept here until the commit): a hash of the store's
// description (which holds no secret) and the host, so two runs for one
// Pi to two servers never share a local file.
func ServerKey(st store.Store, host string) string {
	sum := sha256.Sum256([]byte(st.String() + "\n" + host))
	return hex.EncodeToString(sum[:12])
}
