package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"

	"golang.org/x/sys/unix"
)

// live is the running-system backup the QEMU test asks for with
// pibackup.live=TYPE: it brings the system up the way systemd would for
// a backup (liveSystem), runs backupctl as the timer would, prints its
// exit code and powers off.
func live(typ string) {
	say, done, ok := liveSystem()
	if !ok {
		return
	}
	cmd := exec.Command("/usr/local/sbin/backupctl", "backup", "-v", "-t", typ, "/mnt/backups")
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C"}
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	err := cmd.Run()
	rc := 0
	if err != nil {
		rc = -1
		if ee, ok := err.(*exec.ExitError); ok {
			rc = ee.ExitCode()
		}
		say("backupctl: %v", err)
	}
	done()
	say("PIBACKUP-LIVE-RESULT rc=%d", rc)
}

// liveSystem brings the system up the way systemd would for a backup
// (proc, sys, dev, tmpfs on /run and /tmp, the root read-write, the boot
// partition at its fstab mount point, the backup disk /dev/vdb on /mnt),
// with stdout and stderr on the console. say prints a line on the
// console; done syncs and unmounts the backup disk. ok is false when the
// system did not come up (a PIBACKUP-LIVE-RESULT rc=-1 line says why).
func liveSystem() (say func(format string, a ...any), done func(), ok bool) {
	// The console node may not exist on the root: mount /dev first.
	_ = unix.Mount("devtmpfs", "/dev", "devtmpfs", 0, "")
	// The kernel mounted the root read-only (no "rw" on the command
	// line); a Pi's systemd remounts it read-write from fstab, and a live
	// backup must cope with a root that changes under it.
	rootErr := unix.Mount("", "/", "", unix.MS_REMOUNT, "")
	console, err := os.OpenFile("/dev/console", os.O_WRONLY, 0)
	if err == nil {
		os.Stdout, os.Stderr = console, console
	}
	say = func(format string, a ...any) { fmt.Fprintf(os.Stdout, format+"\n", a...) }
	if rootErr != nil {
		say("PIBACKUP-LIVE-RESULT rc=-1 remount / read-write: %v", rootErr)
		return say, nil, false
	}
	mounts := []struct{ src, dir, fs, data string }{
		{"sysfs", "/sys", "sysfs", ""},
		{"tmpfs", "/run", "tmpfs", "mode=0755"},
		{"tmpfs", "/tmp", "tmpfs", "mode=1777"},
		{"/dev/vda1", bootMountPoint(), "vfat", ""},
		{"/dev/vdb", "/mnt", "ext4", ""},
	}
	for _, m := range mounts {
		if err := unix.Mount(m.src, m.dir, m.fs, 0, m.data); err != nil {
			say("PIBACKUP-LIVE-RESULT rc=-1 mount %s on %s: %v", m.src, m.dir, err)
			return say, nil, false
		}
	}
	done = func() {
		unix.Sync()
		if err := unix.Unmount("/mnt", 0); err != nil {
			say("unmount /mnt: %v", err)
		}
	}
	return say, done, true
}

// bootMountPoint is where fstab mounts the FAT boot partition.
func bootMountPoint() string {
	fstab, _ := os.ReadFile("/etc/fstab")
	for _, l := range strings.Split(string(fstab), "\n") {
		if f := strings.Fields(l); len(f) >= 3 && f[2] == "vfat" {
			return f[1]
		}
	}
	return "/boot/firmware"
}
