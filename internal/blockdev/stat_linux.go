package blockdev

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// unixStat is the Sys() type of os.FileInfo on Linux.
type unixStat = syscall.Stat_t

// FreeBytes is the space available to unprivileged writers on the
// filesystem holding path (statfs f_bavail): what a backup or a restore
// test may count on.
func FreeBytes(path string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", path, err)
	}
	return int64(st.Bavail) * int64(st.Bsize), nil // Bsize is int32 on 32-bit ARM
}
