// Package source opens the places where backups live (a local folder, a
// USB disk or partition, an NFS export, an SMB share, an SFTP server, an
// S3 bucket) and
// hands each one out as an fs.FS, so that backupset.List and the restore
// engine read every kind of source through the same interface.
//
// A Source is opened from a Spec, which is what the user typed in the
// recovery UI or what the kernel command line and recovery.conf say (see
// ParseURL). Opening a network source can fail for reasons the user can
// fix; those errors wrap the sentinels below so the UI can say what to do.
package source

import (
	"errors"
	"io/fs"
)

// Source is an opened backup location.
type Source interface {
	// FS is the backup folder named by the Spec's Path. Every
	// implementation supports fs.ReadDirFS and fs.StatFS, and files it
	// opens implement io.ReaderAt and io.Seeker.
	FS() fs.FS
	// LocalDir is the same folder as a local path when the kernel has it
	// mounted (dir, usb, nfs), and "" for sources read in user space
	// (sftp, smb). rsync sets made by backupctl restore from any source
	// (their metadata travels in the set); raspiBackup's need a LocalDir.
	LocalDir() string
	// Device is the block device whose partition holds the backups
	// ("/dev/sda"), or "" for network sources. A restore must never
	// target it.
	Device() string
	// String describes the source for the user. It never holds a secret.
	String() string
	// Close unmounts or disconnects. It is safe to call more than once.
	Close() error
}

// Errors the UI explains to the user. They are wrapped, so test with
// errors.Is.
var (
	// ErrAuth: the server rejected the user name, password or key.
	ErrAuth = errors.New("authentication failed: check user name, password or key")
	// ErrUnreachable: no connection to the server (address, port, network).
	ErrUnreachable = errors.New("server unreachable: check the address, the port and that the network is up")
	// ErrHostKeyMismatch: the server's key is not the one pinned for it.
	ErrHostKeyMismatch = errors.New("host key does not match the pinned key: possible man-in-the-middle; check known_host")
	// ErrConnectionLost: an open network source stopped answering
	// mid-read (cable pulled, server down).
	ErrConnectionLost = errors.New("connection to the server lost: check the network and the server, then start again")
	// ErrNotFound: the device, label, share or folder does not exist.
	ErrNotFound = errors.New("not found")
	// ErrUnsupported: this source kind cannot be used in this build or on
	// this system (for example, no kernel NFS client).
	ErrUnsupported = errors.New("not supported here")
)

// HostKeyError is returned when an SFTP server's host key is not pinned
// yet. The connection was dropped before any credential was sent; show
// Fingerprint to the user and dial again with Spec.KnownHost set to it.
type HostKeyError struct {
	Addr        string // host:port
	KeyType     string // ssh-ed25519, ...
	Fingerprint string // SHA256:... as ssh-keygen -l prints it
}

func (e *HostKeyError) Error() string {
	return "unknown host key for " + e.Addr + ": " + e.KeyType + " " + e.Fingerprint
}
