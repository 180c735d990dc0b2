package setfs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pibackup/pibackup/internal/blockdev"
)

// mountExt4 mounts the ext4 filesystem at [start, start+size) of img
// read-only on a new temporary folder, through a read-only loop device:
// noload skips the journal's replay, which would write; nodev and nosuid
// keep a device node or setuid file of the set from ever being usable
// through it. release unmounts it and detaches the loop device; lazy
// when files of it are still open and stay so until this process ends.
func mountExt4(ctx context.Context, img string, start, size int64) (dir string, release func(lazy bool), err error) {
	a, err := blockdev.AttachPartition(ctx, img, 0, start, size, true)
	if err != nil {
		return "", nil, err
	}
	dir, err = os.MkdirTemp("", "backupctl-mount-")
	if err != nil {
		a.Detach()
		return "", nil, err
	}
	flags := uintptr(unix.MS_RDONLY | unix.MS_NODEV | unix.MS_NOSUID | unix.MS_NOATIME)
	if err := unix.Mount(a.Path, dir, "ext4", flags, "noload"); err != nil {
		os.Remove(dir)
		a.Detach()
		return "", nil, fmt.Errorf("mount the image's root filesystem (%s) read-only: %w", a.Path, err)
	}
	return dir, func(lazy bool) {
		if lazy {
			// Detached now, freed when the open files close (at the
			// latest when this process ends); the loop device is
			// marked to detach itself then (LOOP_CLR_FD on a device
			// in use sets autoclear), without waiting for it.
			unix.Unmount(dir, unix.MNT_DETACH)
			os.Remove(dir)
			if f, err := os.Open(a.Path); err == nil {
				unix.IoctlSetInt(int(f.Fd()), unix.LOOP_CLR_FD, 0)
				f.Close()
			}
			return
		}
		// The FUSE server's last open files close as it ends; if one is
		// still open after a few tries, detach lazily.
		for i := 0; ; i++ {
			err := unix.Unmount(dir, 0)
			if err == nil {
				break
			}
			if !errors.Is(err, unix.EBUSY) || i == 20 {
				unix.Unmount(dir, unix.MNT_DETACH)
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		os.Remove(dir)
		a.Detach()
	}, nil
}
