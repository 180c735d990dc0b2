//go:build !linux

package blockdev

import (
	"errors"
	"fmt"
	"os"
)

// The safety checks read Linux's mountinfo and sysfs; elsewhere the
// calls that need the kernel say so instead of guessing.

// FreeBytes is Linux-only.
func FreeBytes(path string) (int64, error) {
	return 0, fmt.Errorf("statfs %s: %w", path, errors.ErrUnsupported)
}

func devOf(path string) (major, minor int, err error) {
	return 0, 0, fmt.Errorf("stat %s: %w", path, errors.ErrUnsupported)
}

// rdevOf gives an impossible device number, which ByDevNum refuses.
func rdevOf(os.FileInfo) (major, minor int) { return -1, -1 }

func attachLoop(file string, offset, size int64, readOnly bool) (string, error) {
	return "", fmt.Errorf("loop devices: %w", errors.ErrUnsupported)
}

func detachLoop(dev, file string) error {
	return fmt.Errorf("detach %s: %w", dev, errors.ErrUnsupported)
}

// AttachAutoclear is Linux-only.
func AttachAutoclear(file string, offset, size int64) (string, *os.File, error) {
	return "", nil, fmt.Errorf("loop devices: %w", errors.ErrUnsupported)
}

// MountRO is Linux-only.
func MountRO(dev, dir, fstype string) error {
	return fmt.Errorf("mount %s: %w", dev, errors.ErrUnsupported)
}

// MountTempRO is Linux-only.
func MountTempRO(dev, fstype string) (string, func() error, error) {
	return "", nil, fmt.Errorf("mount %s: %w", dev, errors.ErrUnsupported)
}

// MountExt4 is Linux-only.
func MountExt4(dev string, readOnly bool) (string, func() error, error) {
	return "", nil, fmt.Errorf("mount %s: %w", dev, errors.ErrUnsupported)
}

// Unmount is Linux-only.
func Unmount(dir string) error {
	return fmt.Errorf("unmount %s: %w", dir, errors.ErrUnsupported)
}

// RereadPartitions is Linux-only.
func RereadPartitions(f *os.File) error {
	return fmt.Errorf("re-read the partition table of %s: %w", f.Name(), errors.ErrUnsupported)
}
