package backup

import (
	"fmt"
	"os"
	"path/filepath"
)

// ExposureWarning returns a warning when users other than root can reach
// the sets under target: target is searchable by others and so is every
// folder above it. A set holds every file of the Pi (/etc/shadow, SSH
// host keys, Wi-Fi passwords), and rsync sets keep each file's own
// permissions, so a 0644 file in the tree is readable by anyone who can
// reach the set. It returns "" when the target is private, and an error
// only when target cannot be inspected.
//
// Call it once a run has checked the target exists, and print the result
// as a warning; it never fails a backup (an NFS or SMB share may map
// permissions its own way).
func ExposureWarning(target string) (string, error) {
	abs, err := filepath.Abs(target)
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return "", fmt.Errorf("backup target: %w", err)
	}
	mode := fi.Mode().Perm()
	if mode&0o001 == 0 {
		return "", nil // others cannot enter it
	}
	// Others can enter target; can they get to it?
	for dir := filepath.Dir(abs); ; dir = filepath.Dir(dir) {
		di, err := os.Stat(dir)
		if err != nil {
			return "", fmt.Errorf("backup target: %w", err)
		}
		if di.Mode().Perm()&0o001 == 0 {
			return "", nil
		}
		if dir == filepath.Dir(dir) {
			break
		}
	}
	what := "can open sets whose names they know"
	if mode&0o004 != 0 {
		what = "can list and read the sets"
	}
	return fmt.Sprintf("backup folder %s (mode %04o) is open to every user of this system: they %s, which hold every file of the Pi including /etc/shadow and SSH keys; restrict it with: chmod 700 %s",
		abs, mode, what, abs), nil
}
