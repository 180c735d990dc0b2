// Package testfs is the judge of every backup and restore test in the
// project: it builds Raspberry Pi–like disks and trees full of the metadata
// a backup can lose (owners, modes, xattrs, ACLs, capabilities, hardlinks,
// device nodes, sparse files, nanosecond timestamps) and compares two trees
// exactly.
//
// The package is Linux-only. Helpers that take a testing.TB (Require,
// AttachLoop, MountExt4) register their own cleanup; the others (Populate,
// BuildPiDisk, Compare, ExtractFile, ReadRootFile) are plain functions so
// that `make demo` and benchmarks can use them too. Building a disk needs
// root because the root file system is populated through a real ext4 mount:
// that way the kernel, not a user-space tool, writes the xattrs and ACLs, as
// it will on a real Pi.
//
// External tools used: losetup, mkfs.ext4, e2fsck, debugfs (e2fsprogs),
// mkfs.vfat, fsck.vfat (dosfstools), mcopy, mmd, mtype (mtools) and sfdisk
// (fdisk).
package testfs
