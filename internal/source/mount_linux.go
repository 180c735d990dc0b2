package source

import (
	"golang.org/x/sys/unix"
)

const mountReadOnly = unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC

type sysMounter struct{}

func (sysMounter) Mount(source, target, fstype string, flags uintptr, data string) error {
	return unix.Mount(source, target, fstype, flags, data)
}

func (sysMounter) Unmount(target string) error {
	err := unix.Unmount(target, 0)
	if err == unix.EBUSY {
		// Something still has a file open (a restore that was cut
		// short). Detach it so the next mount does not fail.
		err = unix.Unmount(target, unix.MNT_DETACH)
	}
	return err
}
