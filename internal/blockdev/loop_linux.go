package blockdev

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// attachLoop sets up a loop device over a byte range of file with the
// kernel's loop ioctls, not by running losetup: the recovery initramfs has
// no losetup, and this is one system call instead of a process. The
// device is not autocleared: callers mkfs, mount and unmount it across
// several opens and detach it themselves.
func attachLoop(file string, offset, size int64, readOnly bool) (string, error) {
	var loFlags uint32
	if readOnly {
		loFlags = unix.LO_FLAGS_READ_ONLY
	}
	dev, lf, err := configureLoop(file, offset, size, loFlags)
	if err != nil {
		return "", err
	}
	lf.Close()
	return dev, nil
}

// AttachAutoclear attaches [offset, offset+size) of file read-only to a
// free loop device with LO_FLAGS_AUTOCLEAR and returns the device and an
// open handle on it. With autoclear the kernel detaches the device once
// its last user is gone: the handle (close it right after mounting) and
// then the mount. So a process killed with SIGKILL leaks no loop device,
// only a read-only mount.
func AttachAutoclear(file string, offset, size int64) (dev string, handle *os.File, err error) {
	dev, handle, err = configureLoop(file, offset, size, unix.LO_FLAGS_READ_ONLY|unix.LO_FLAGS_AUTOCLEAR)
	if err != nil {
		return "", nil, fmt.Errorf("attach bytes %d+%d of %s to a loop device: %w", offset, size, file, err)
	}
	return dev, handle, nil
}

// configureLoop binds a free loop device to [offset, offset+size) of file
// with the loop flags loFlags (read-only when they say so) and returns
// the device and the handle it was configured through.
func configureLoop(file string, offset, size int64, loFlags uint32) (string, *os.File, error) {
	flag := os.O_RDWR
	if loFlags&unix.LO_FLAGS_READ_ONLY != 0 {
		flag = os.O_RDONLY
	}
	backing, err := os.OpenFile(file, flag|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", nil, err
	}
	defer backing.Close()
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", nil, fmt.Errorf("open loop control: %w", err)
	}
	defer ctl.Close()
	// Another process may take the free device between GET_FREE and
	// CONFIGURE; the kernel then answers EBUSY and we ask again.
	for tries := 0; tries < 20; tries++ {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return "", nil, fmt.Errorf("find a free loop device: %w", err)
		}
		dev := fmt.Sprintf("/dev/loop%d", n)
		if _, err := os.Stat(dev); errors.Is(err, os.ErrNotExist) {
			// Containers with a static /dev lack nodes for new loop devices.
			if err := unix.Mknod(dev, unix.S_IFBLK|0o660, int(unix.Mkdev(7, uint32(n)))); err != nil && !errors.Is(err, unix.EEXIST) {
				return "", nil, fmt.Errorf("create %s: %w", dev, err)
			}
		}
		lf, err := os.OpenFile(dev, flag|unix.O_CLOEXEC, 0)
		if err != nil {
			return "", nil, fmt.Errorf("open %s: %w", dev, err)
		}
		cfg := unix.LoopConfig{Fd: uint32(backing.Fd()), Size: 512}
		cfg.Info.Offset = uint64(offset)
		cfg.Info.Sizelimit = uint64(size)
		cfg.Info.Flags = loFlags
		copy(cfg.Info.File_name[:], file)
		err = unix.IoctlLoopConfigure(int(lf.Fd()), &cfg)
		if errors.Is(err, unix.EBUSY) {
			lf.Close()
			continue
		}
		if err != nil {
			lf.Close()
			return "", nil, fmt.Errorf("configure %s: %w", dev, err)
		}
		return dev, lf, nil
	}
	return "", nil, errors.New("every free loop device was taken by another process")
}

// detachLoop releases a loop device set up by attachLoop over file. When
// another process has the device open at that moment (a disk scanner, a
// udev probe, blkid), the kernel only marks it for autoclear and detaches
// it when that process closes it; detachLoop waits for that, so a caller
// that returns has left nothing attached.
func detachLoop(dev, file string) error {
	f, err := os.OpenFile(dev, os.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("detach %s: %w", dev, err)
	}
	err = unix.IoctlSetInt(int(f.Fd()), unix.LOOP_CLR_FD, 0)
	f.Close()
	if err != nil {
		return fmt.Errorf("detach %s: %w", dev, err)
	}
	// sysfs shows the backing file's absolute path with links resolved.
	if abs, err := filepath.Abs(file); err == nil {
		file = abs
	}
	if real, err := filepath.EvalSymlinks(file); err == nil {
		file = real
	}
	return waitDetached(dev, file, "/sys", 10*time.Second)
}

// waitDetached waits until the loop device dev no longer reads file
// (sysfs names its backing file while it is bound). The kernel offers no
// event for it, so it looks every 10 ms; the bound is only for a holder
// that never lets go.
func waitDetached(dev, file, sysfs string, bound time.Duration) error {
	backing := filepath.Join(sysfs, "block", filepath.Base(dev), "loop", "backing_file")
	deadline := time.Now().Add(bound)
	for {
		b, err := os.ReadFile(backing)
		// Unbound, or bound again by someone else to another file.
		if err != nil || strings.TrimSpace(string(b)) != file {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("detach %s: another process still has it open after %v; the kernel detaches it when that process closes it", dev, bound)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
