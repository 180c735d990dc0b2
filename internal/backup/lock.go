package backup

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
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
	dir := r.lockDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("lock %s: %w", r.hostDir, err)
	}
	return lockPath(r.remoteLockFile(), r.hostDir)
}

// lockHeld says whether another run holds the host's lock.
func (r *runner) lockHeld() bool {
	if r.local != "" {
		return lockHeld(filepath.Join(r.local, r.host))
	}
	return lockFileHeld(r.remoteLockFile())
}

func (r *runner) lockDir() string {
	if r.deps.LockDir != "" {
		return r.deps.LockDir
	}
	return DefaultLockDir
}

// remoteLockFile is the lock of the host folder on a server: its name
// is a hash of the store's description (which holds no secret) and the
// host, so one URL spelled the same way always maps to one lock.
func (r *runner) remoteLockFile() string {
	sum := sha256.Sum256([]byte(r.st.String() + "\n" + r.host))
	return filepath.Join(r.lockDir(), "lock-"+hex.EncodeToString(sum[:12]))
}
