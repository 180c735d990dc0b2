package blockdev

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// attachLoop sets up a loop device over a byte range of file with the
// kernel's loop ioctls, not by running losetup: the recovery initramfs has
// no losetup, and this is one system call instead of a process. The
// device is not autocleared: callers mkfs, mount and unmount it across
// several opens and detach it themselves.
func attachLoop(file string, offset, size int64, readOnly bool) (string, error) {
	flag := os.O_RDWR
	var loFlags uint32
	if readOnly {
		flag, loFlags = os.O_RDONLY, unix.LO_FLAGS_READ_ONLY
	}
	backing, err := os.OpenFile(file, flag|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", err
	}
	defer backing.Close()
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", fmt.Errorf("open loop control: %w", err)
	}
	defer ctl.Close()
	// Another process may take the free device between GET_FREE and
	// CONFIGURE; the kernel then answers EBUSY and we ask again.
	for tries := 0; tries < 20; tries++ {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return "", fmt.Errorf("find a free loop device: %w", err)
		}
		dev := fmt.Sprintf("/dev/loop%d", n)
		lf, err := os.OpenFile(dev, flag|unix.O_CLOEXEC, 0)
		if err != nil {
			return "", fmt.Errorf("open %s: %w", dev, err)
		}
		cfg := unix.LoopConfig{Fd: uint32(backing.Fd()), Size: 512}
		cfg.Info.Offset = uint64(offset)
		cfg.Info.Sizelimit = uint64(size)
		cfg.Info.Flags = loFlags
		copy(cfg.Info.File_name[:], file)
		err = unix.IoctlLoopConfigure(int(lf.Fd()), &cfg)
		lf.Close()
		if errors.Is(err, unix.EBUSY) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("configure %s: %w", dev, err)
		}
		return dev, nil
	}
	return "", errors.New("every free loop device was taken by another process")
}

// detachLoop releases a loop device set up by attachLoop.
func detachLoop(dev string) error {
	f, err := os.OpenFile(dev, os.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("detach %s: %w", dev, err)
	}
	defer f.Close()
	if err := unix.IoctlSetInt(int(f.Fd()), unix.LOOP_CLR_FD, 0); err != nil {
		return fmt.Errorf("detach %s: %w", dev, err)
	}
	return nil
}
