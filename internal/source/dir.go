package source

import (
	"fmt"
	"io/fs"
	"os"
)

// Dir is a backup folder that is already on the local file system.
type Dir struct {
	path   string
	device string
	fsys   fs.FS
	close  func() error
}

var _ Source = (*Dir)(nil)

// OpenDir opens the folder p. device, when not "", is the disk that holds
// it (see Source.Device).
func OpenDir(p, device string) (*Dir, error) {
	fi, err := os.Stat(p)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, fmt.Errorf("backup folder %s: %w", p, ErrNotFound)
		}
		return nil, fmt.Errorf("backup folder: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("backup folder %s is not a folder", p)
	}
	return &Dir{path: p, device: device, fsys: os.DirFS(p)}, nil
}

// FS implements Source.
func (d *Dir) FS() fs.FS { return d.fsys }

// LocalDir implements Source.
func (d *Dir) LocalDir() string { return d.path }

// Device implements Source.
func (d *Dir) Device() string { return d.device }

func (d *Dir) String() string { return d.path }

// Close implements Source. It runs the cleanup set by the opener (an
// unmount), once.
func (d *Dir) Close() error {
	c := d.close
	d.close = nil
	if c != nil {
		return c()
	}
	return nil
}
