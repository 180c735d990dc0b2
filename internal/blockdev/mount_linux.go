package blockdev

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// MountRO mounts the filesystem on dev read-only at dir, with nothing on
// it usable as a device, a setuid program or a program at all. ext2/3/4
// get "noload": no journal replay, so a disk taken from a Pi that was not
// shut down cleanly is not written to; a kernel that refuses noload gets
// a plain read-only mount.
func MountRO(dev, dir, fstype string) error {
	flags := uintptr(unix.MS_RDONLY | unix.MS_NOATIME | unix.MS_NODEV | unix.MS_NOSUID | unix.MS_NOEXEC)
	var err error
	switch fstype {
	case "ext2", "ext3", "ext4":
		err = unix.Mount(dev, dir, "ext4", flags, "noload")
		if err != nil {
			err = unix.Mount(dev, dir, fstype, flags, "")
		}
	default:
		err = unix.Mount(dev, dir, fstype, flags, "")
	}
	if err != nil {
		return fmt.Errorf("mount %s (%s) read-only on %s: %w", dev, fstype, dir, err)
	}
	return nil
}

// MountTempRO mounts the filesystem on dev as MountRO does, at a new
// temporary folder, and returns it and a function that unmounts and
// removes it.
func MountTempRO(dev, fstype string) (string, func() error, error) {
	return mountTemp(dev, func(dir string) error { return MountRO(dev, dir, fstype) })
}

// MountExt4 mounts the ext4 on dev at a new temporary folder, read-write
// unless readOnly, and returns it and a function that unmounts and
// removes it. nodev and nosuid: device nodes and setuid files written
// into it are created but never usable through this mount (a restored
// archive's block device node must not reach a host disk).
func MountExt4(dev string, readOnly bool) (string, func() error, error) {
	var flags uintptr = unix.MS_NOATIME | unix.MS_NODEV | unix.MS_NOSUID
	if readOnly {
		flags |= unix.MS_RDONLY
	}
	return mountTemp(dev, func(dir string) error {
		if err := unix.Mount(dev, dir, "ext4", flags, ""); err != nil {
			return fmt.Errorf("mount %s on %s: %w", dev, dir, err)
		}
		return nil
	})
}

func mountTemp(dev string, mount func(dir string) error) (string, func() error, error) {
	dir, err := os.MkdirTemp("", "pibackup-mnt-")
	if err != nil {
		return "", nil, fmt.Errorf("mount %s: %w", dev, err)
	}
	if err := mount(dir); err != nil {
		os.Remove(dir)
		return "", nil, err
	}
	return dir, func() error {
		if err := Unmount(dir); err != nil {
			return err
		}
		return os.Remove(dir)
	}, nil
}

// Unmount unmounts dir. A just-finished tar or rsync may leave the
// filesystem busy for a moment (its children exiting), so a busy mount
// is tried again for up to five seconds.
func Unmount(dir string) error {
	var err error
	for i := 0; i < 50; i++ {
		if err = unix.Unmount(dir, 0); err == nil || !errors.Is(err, unix.EBUSY) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("unmount %s: %w", dir, err)
	}
	return nil
}
