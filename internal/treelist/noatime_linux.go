package treelist

import "golang.org/x/sys/unix"

// oNoAtime keeps a listing from rewriting the atime of every file it reads.
const oNoAtime = unix.O_NOATIME
