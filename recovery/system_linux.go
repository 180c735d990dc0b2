package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pibackup/pibackup/internal/bootcmdline"
)

// system is the kernel as the recovery sees it; the paths are fields so
// tests can point them at temp files.
type system struct {
	Cmdline string // /proc/cmdline
	Kmsg    string // /dev/kmsg
	Dev     string // /dev
	RunDir  string // /run/recovery: mount points
	Uptime  string // /proc/uptime
	Sys     string // /sys
}

func newSystem() *system {
	return &system{Cmdline: "/proc/cmdline", Kmsg: "/dev/kmsg", Dev: "/dev", RunDir: "/run/recovery", Uptime: "/proc/uptime", Sys: "/sys"}
}

func (s *system) cmdline() string {
	b, err := os.ReadFile(s.Cmdline)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// lateDiskBuses are the sysfs globs of the buses whose disks the kernel
// finds after it started init: USB (enumeration, usb-storage's delay),
// MMC/SD, NVMe and SCSI hosts probe asynchronously. Disks on other buses
// (virtio-blk, ...) are there before init runs.
var lateDiskBuses = []string{"bus/usb/devices/usb*", "class/mmc_host/*", "class/nvme/*", "class/scsi_host/*"}

// disksMayComeLate says whether a disk missing now may still appear: only
// then is waiting for the boot disk worth it. Without such a bus (QEMU
// virt with no disk) the wait would only hold the UI back (issue 20).
func (s *system) disksMayComeLate() bool {
	for _, g := range lateDiskBuses {
		if m, _ := filepath.Glob(filepath.Join(s.Sys, g)); len(m) > 0 {
			return true
		}
	}
	return false
}

// uptime is the seconds since the kernel started as /proc/uptime says
// them ("12.34"), "" when it cannot be read.
func (s *system) uptime() string {
	b, err := os.ReadFile(s.Uptime)
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

// kmsgWrite writes one message to the kernel log, one write per line as
// /dev/kmsg wants.
func (s *system) kmsgWrite(p []byte) {
	f, err := os.OpenFile(s.Kmsg, os.O_WRONLY, 0)
	if err != nil {
		return
	}
	defer f.Close()
	for _, line := range bytes.Split(bytes.TrimRight(p, "\n"), []byte("\n")) {
		_, _ = f.Write(append(line, '\n'))
	}
}

// announce writes line to the kernel log and to every console, so a
// person at any screen and a test reading any serial port see it.
func (s *system) announce(line string) {
	s.kmsgWrite([]byte("<5>" + line + "\n"))
	var wg sync.WaitGroup
	for _, c := range consoles(s.cmdline(), s.Dev) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			writeConsole(filepath.Join(s.Dev, c), "\r\n"+line+"\r\n")
		}()
	}
	// A line such as RECOVERY-RESULT must not be lost: wait until every
	// console took it, but never hang on one that does not drain.
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
	}
}

// writeConsole writes blocking (a non-blocking write drops the line with
// EAGAIN when a long plan still fills the serial buffer) and waits until
// the UART has sent it (TCSBRK 1 is tcdrain), so a power-off right after
// cannot cut it off.
func writeConsole(path, text string) {
	f, err := os.OpenFile(path, os.O_WRONLY|unix.O_NOCTTY, 0)
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = f.WriteString(text)
	_ = unix.IoctlSetInt(int(f.Fd()), unix.TCSBRK, 1)
}

// consoles returns the console devices of the kernel command line
// ("console=ttyS0,115200 console=tty1" → ttyS0, tty1), resolving the Pi
// firmware's serial0 alias to the UART that exists, and "console" when
// there is no console= at all.
func consoles(cmdline, dev string) []string {
	var out []string
	seen := map[string]bool{}
	for _, p := range bootcmdline.Split(cmdline) {
		v, ok := strings.CutPrefix(p, "console=")
		if !ok {
			continue
		}
		name, _, _ := strings.Cut(v, ",")
		switch name {
		case "serial0", "serial1":
			// The DT alias serial0 is the UART on GPIO 14/15: the mini
			// UART (ttyS0) on a Pi 3/4 with Bluetooth on, else ttyAMA0.
			name = "ttyS0"
			if _, err := os.Stat(filepath.Join(dev, name)); err != nil {
				name = "ttyAMA0"
			}
		case "tty0":
			name = "tty1"
		case "":
			continue
		}
		if !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
	}
	if len(out) == 0 {
		out = []string{"console"}
	}
	return out
}

// uiTTY picks the console the UI runs on: recovery.tty, else the last
// console= (the one /dev/console is), else /dev/console.
func uiTTY(cfgTTY, cmdline, dev string) string {
	if cfgTTY != "" {
		return cfgTTY
	}
	cs := consoles(cmdline, dev)
	return cs[len(cs)-1]
}

// power syncs and powers off or reboots. It never returns.
func (s *system) power(after bootcmdline.After) {
	unix.Sync()
	// Let the consoles finish printing (the last lines say what happened).
	time.Sleep(time.Second)
	cmd := unix.LINUX_REBOOT_CMD_POWER_OFF
	if after == bootcmdline.AfterReboot {
		cmd = unix.LINUX_REBOOT_CMD_RESTART
	}
	for {
		if err := unix.Reboot(cmd); err != nil {
			s.kmsgWrite([]byte(fmt.Sprintf("recovery: %s: %v", after, err)))
		}
		// Not PID 1's privilege, or the kernel is slow: try again.
		time.Sleep(10 * time.Second)
	}
}

// fixWinsize gives a serial tty that reports 0x0 a usable size, which
// tcell needs to lay out the screen.
func fixWinsize(path string) {
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return
	}
	defer f.Close()
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil || (ws.Row != 0 && ws.Col != 0) {
		return
	}
	_ = unix.IoctlSetWinsize(int(f.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: 80})
}

// mount and unmount for the boot partition.
func mountRO(dev, dir, fstype string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return unix.Mount(dev, dir, fstype, unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
}

func unmount(dir string) error { return unix.Unmount(dir, 0) }
