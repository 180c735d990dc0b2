// Command markerinit is the init of the test fixture's root filesystem.
// When a restored disk boots (kernel root=PARTUUID=... from the restored
// cmdline.txt), the kernel runs it as PID 1: it proves the root was found
// and is readable by printing a marker with the host name and the fstab
// line for /, then powers the VM off.
package main

import (
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

func main() {
	host, _ := os.ReadFile("/etc/hostname")
	fstab, _ := os.ReadFile("/etc/fstab")
	rootLine := ""
	for _, l := range strings.Split(string(fstab), "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && f[1] == "/" {
			rootLine = f[0]
		}
	}
	cmdline, _ := os.ReadFile("/proc/cmdline")
	if len(cmdline) == 0 {
		_ = unix.Mount("proc", "/proc", "proc", 0, "")
		cmdline, _ = os.ReadFile("/proc/cmdline")
	}
	if soakEnabled(string(cmdline)) {
		soak()
		unix.Sync()
		_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
		select {}
	}
	if typ, ok := liveType(string(cmdline)); ok {
		live(typ)
		unix.Sync()
		_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
		select {}
	}
	msg := fmt.Sprintf("PIBACKUP-MARKER-BOOTED host=%s fstab-root=%s cmdline=%q\n", strings.TrimSpace(string(host)), rootLine, strings.TrimSpace(string(cmdline)))
	if f, err := os.OpenFile("/dev/console", os.O_WRONLY, 0); err == nil {
		f.WriteString(msg)
		f.Close()
	}
	os.Stdout.WriteString(msg)
	unix.Sync()
	_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	select {}
}

// liveType is the backup type of pibackup.live=TYPE on the command line.
func liveType(cmdline string) (string, bool) {
	for _, f := range strings.Fields(cmdline) {
		if v, ok := strings.CutPrefix(f, "pibackup.live="); ok {
			return v, true
		}
	}
	return "", false
}
