package restore

import (
	"github.com/pibackup/pibackup/internal/backupset"
)

// The argv builders below are pure so that every flag is table-tested
// (argv_test.go) without running the tool; runner.go executes them.

// smallFS is the size below which mke2fs picks its "small" usage type:
// 1 KiB blocks, one inode per 4 KiB and 128-byte inodes. 128-byte inodes
// cannot hold nanosecond timestamps or much xattr space, so a small root
// would lose metadata the source had; we ask for the default type instead.
const smallFS = 512 << 20

// mkfsExt4Args formats dev as the root filesystem. label and uuid are
// optional. size is the partition size in bytes.
func mkfsExt4Args(dev, label, uuid string, size int64) []string {
	args := []string{"-F", "-q"}
	if size < smallFS {
		args = append(args, "-T", "default")
	}
	// 256-byte inodes, as every Raspberry Pi OS root has (nanosecond
	// times, inline xattrs); the default for anything but "small".
	args = append(args, "-I", "256")
	if label != "" {
		args = append(args, "-L", label)
	}
	if uuid != "" {
		args = append(args, "-U", uuid)
	}
	return append(args, dev)
}

// tarExtractArgs extracts a GNU tar stream from stdin into dir, keeping
// numeric owners, permissions, xattrs (all namespaces: security.capability
// too) and ACLs, as raspiBackup's restore does plus the metadata its tar
// may carry.
func tarExtractArgs(dir string) []string {
	return []string{
		"--extract",
		"--numeric-owner",
		"--xattrs", "--xattrs-include=*",
		"--acls",
		"--same-permissions",
		"--same-owner",
		"--file=-",
		"--directory=" + dir,
	}
}

// rsyncRestoreArgs copies the tree of an rsync set (src, the set folder)
// onto the new root (dst), leaving out the set's own metadata files.
// -x is not used: the set folder is one tree by construction.
func rsyncRestoreArgs(src, dst, host string) []string {
	args := []string{"-aHAX", "--numeric-ids", "--sparse"}
	for _, p := range backupset.OwnFilePatterns(host) {
		args = append(args, "--exclude="+p)
	}
	return append(args,
		"--exclude=/*.logr", "--exclude=/*.msgr", // raspiBackup restore logs
		withSlash(src), withSlash(dst))
}

// cloneRsyncArgs syncs a live root (src) onto the clone (dst): -x stays on
// the root filesystem (so /boot/firmware, /proc and any mount below are
// left out, like raspiBackup's and rpi-clone's excludes), --delete makes
// a second run remove what is gone, and the clone marker and /etc/fstab
// (written by syncFstab with the clone's ids) are left alone.
func cloneRsyncArgs(src, dst string, excludes []string) []string {
	args := []string{"-aHAXx", "--numeric-ids", "--sparse", "--delete", "--force", "--stats",
		"--exclude=/" + cloneMarker, "--exclude=/etc/fstab"}
	for _, e := range excludes {
		args = append(args, "--exclude="+e)
	}
	return append(args, withSlash(src), withSlash(dst))
}

// imageRootRsyncArgs copies the root filesystem of a dd image, mounted
// read-only at src, into the fresh, smaller root at dst: everything, with
// numeric owners, hardlinks, ACLs, xattrs and device nodes (-a has -D);
// -x keeps to that one filesystem; --stats for the bytes copied.
func imageRootRsyncArgs(src, dst string) []string {
	return []string{"-aHAXx", "--numeric-ids", "--sparse", "--stats", withSlash(src), withSlash(dst)}
}

func withSlash(p string) string {
	if p == "" || p[len(p)-1] != '/' {
		return p + "/"
	}
	return p
}

// e2fsckArgs checks an ext4 filesystem: fix answers yes to every repair
// (after our own writes), otherwise nothing is changed.
func e2fsckArgs(dev string, fix bool) []string {
	if fix {
		return []string{"-f", "-y", dev}
	}
	return []string{"-f", "-n", dev}
}

// resize2fsArgs grows (or shrinks) the filesystem on dev to fill it.
func resize2fsArgs(dev string) []string { return []string{dev} }

// tune2fsUUIDArgs gives the filesystem on dev a new UUID.
func tune2fsUUIDArgs(dev, uuid string) []string { return []string{"-U", uuid, dev} }

// mkswapArgs makes a swap area (partition-oriented sets).
func mkswapArgs(dev, label, uuid string) []string {
	args := []string{}
	if label != "" {
		args = append(args, "-L", label)
	}
	if uuid != "" {
		args = append(args, "-U", uuid)
	}
	return append(args, dev)
}
