package blockdev

import "syscall"

// unixStat is the Sys() type of os.FileInfo on Linux.
type unixStat = syscall.Stat_t
