package testfs

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
)

// RequireEnv names the environment variable that turns skips into failures.
// It holds a comma-separated list of capabilities, or "all". CI sets it to
// "all" so that a missing tool cannot silently turn a suite green.
const RequireEnv = "PIBACKUP_TEST_REQUIRE"

// capability describes what Require checks for one name.
type capability struct {
	root  bool     // effective uid 0
	files []string // paths that must exist (device nodes)
	tools []string // executables, searched on $PATH and in toolDirs
	pkg   string   // Debian package(s) that provide the tools
}

// capabilities is the table behind Require. It is a function rather than a
// package variable so that nothing can mutate it.
func capabilities() map[string]capability {
	return map[string]capability{
		"root": {root: true},
		// loop: attach image files as block devices (AttachLoop).
		"loop": {root: true, files: []string{"/dev/loop-control"}, tools: []string{"losetup"}, pkg: "mount"},
		// qemu: boot arm64 Pi images (qemu-system-aarch64 -M raspi3b / raspi4b / virt).
		"qemu": {tools: []string{"qemu-system-aarch64"}, pkg: "qemu-system-arm"},
		// sftp: OpenSSH's sftp-server, driven over pipes like restic does; no sshd needed.
		"sftp": {tools: []string{"sftp-server"}, pkg: "openssh-sftp-server"},
		// nfs: the kernel client's mount helper, to mount an NFS export as a target.
		"nfs": {root: true, tools: []string{"mount.nfs"}, pkg: "nfs-common"},
		// smb: a Samba server to test an SMB target against.
		"smb": {tools: []string{"smbd"}, pkg: "samba"},
		// mtools: read and write FAT images without mounting (vfat is not always mountable).
		"mtools": {tools: []string{"mcopy", "mmd", "mtype"}, pkg: "mtools"},
		"vfat":   {tools: []string{"mkfs.vfat", "fsck.vfat"}, pkg: "dosfstools"},
		"ext4":   {tools: []string{"mkfs.ext4", "e2fsck", "debugfs"}, pkg: "e2fsprogs"},
		"sfdisk": {tools: []string{"sfdisk"}, pkg: "fdisk"},
		"acl":    {tools: []string{"setfacl", "getfacl"}, pkg: "acl"},
		"attr":   {tools: []string{"setfattr", "getfattr"}, pkg: "attr"},
		"rsync":  {tools: []string{"rsync"}, pkg: "rsync"},
		// legacy-compressors: the tools raspiBackup's --tarCompressionTool
		// runs, to make the sets our pure-Go decoders must read.
		"legacy-compressors": {tools: []string{"bzip2", "xz", "lzip", "lzop", "lz4"}, pkg: "bzip2 xz-utils lzip lzop lz4"},
		// fuse: serve files through FUSE as root (Gate); the kernel module
		// is built in or loaded, no fusermount needed.
		"fuse": {root: true, files: []string{"/dev/fuse"}},
		// python3's tarfile writes archives GNU tar did not: tests rewrite
		// sets with it to check that readers agree with GNU tar.
		"python3": {tools: []string{"python3"}, pkg: "python3"},
		// pidisk: everything BuildPiDisk needs.
		"pidisk": {
			root:  true,
			files: []string{"/dev/loop-control"},
			tools: []string{"losetup", "mkfs.ext4", "e2fsck", "debugfs", "mkfs.vfat", "fsck.vfat", "mcopy", "mmd", "mtype", "sfdisk"},
			pkg:   "mount e2fsprogs dosfstools mtools fdisk",
		},
	}
}

// Require skips the test unless the capability what is available: "root",
// "loop", "qemu", "sftp", "nfs", "smb", "mtools", "vfat", "ext4", "sfdisk",
// "acl", "attr", "rsync", "fuse", "legacy-compressors", "python3" or "pidisk" (all that BuildPiDisk needs). The skip
// message names the Debian package to install.
//
// If PIBACKUP_TEST_REQUIRE lists what (or is "all"), a missing capability
// fails the test instead. An unknown name always fails: it is a typo in the
// test, not a missing tool.
func Require(t testing.TB, what string) {
	t.Helper()
	require(t, what, os.Getenv(RequireEnv), os.Geteuid())
}

// require is Require with its inputs made explicit, for tests.
func require(t testing.TB, what, env string, euid int) {
	t.Helper()
	c, ok := capabilities()[what]
	if !ok {
		t.Fatalf("testfs.Require: unknown capability %q", what)
		return
	}
	reason := missing(c, euid)
	if reason == "" {
		return
	}
	if required(env, what) {
		t.Fatalf("%s required by %s=%q but unavailable: %s", what, RequireEnv, env, reason)
		return
	}
	t.Skipf("skipping: %s unavailable: %s", what, reason)
}

// missing returns why c is unavailable, or "" if it is available.
func missing(c capability, euid int) string {
	var why []string
	if c.root && euid != 0 {
		why = append(why, "needs root (euid 0)")
	}
	for _, f := range c.files {
		if _, err := os.Stat(f); err != nil {
			why = append(why, fmt.Sprintf("%s missing", f))
		}
	}
	var tools []string
	for _, tool := range c.tools {
		if _, err := lookTool(tool); err != nil {
			tools = append(tools, tool)
		}
	}
	if len(tools) > 0 {
		why = append(why, fmt.Sprintf("%s not found (apt-get install %s)", strings.Join(tools, ", "), c.pkg))
	}
	return strings.Join(why, "; ")
}

// required reports whether the PIBACKUP_TEST_REQUIRE value env names what.
func required(env, what string) bool {
	names := strings.Split(env, ",")
	for i := range names {
		names[i] = strings.TrimSpace(names[i])
	}
	return slices.Contains(names, "all") || slices.Contains(names, what)
}
