//go:build !race

package qemutests

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestTUISerial is the human path on the serial console: the recovery
// boots without unattended settings, so its UI runs on ttyAMA0, and the
// test types keys into the console and reads the screen through a
// terminal emulator, through a whole restore from a USB disk onto
// /dev/vdb, then powers off from the UI. The host judges and boots the
// restored disk as in TestRestoreMatrix.
//
// The serial console knows no terminal size, so the recovery sets 80×24
// (fixWinsize), and TERM is the kernel's default for init, linux; the
// emulator here is 80×24 as well.
func TestTUISerial(t *testing.T) {
	a := requireArtifacts(t)
	start := time.Now()
	c := stageCase(t, a, usbSource(t), "dd", nil)
	work, fx, rec, target, drives := c.work, c.fx, c.rec, c.target, c.drives
	t.Logf("fixture and backup: %s", time.Since(start).Round(time.Second))

	cfg := VMConfig{Arch: "arm64", Kernel: a.boot.Kernel, Initrd: a.boot.Initramfs,
		LogPath: filepath.Join(work, "recovery-console.log"),
		Append:  a.boot.Cmdline, // no recovery.* keys: the interactive UI
		Drives:  append([]Drive{{Path: rec}, {Path: target}}, drives...)}
	ctx, cancel := context.WithTimeout(context.Background(), uiBootDeadline+restoreDeadline+5*time.Minute)
	defer cancel()
	vm, s, boot := bootConsoleUI(ctx, t, cfg)

	restoreThroughUI(t, s, keyTab, "PIBACKUPS", "vdb")
	if err := vm.Wait(90 * time.Second); err != nil {
		t.Fatalf("recovery did not power off: %v\n%s", err, s.dump())
	}
	t.Logf("guest: %s from boot to power-off", time.Since(boot).Round(time.Second))
	con := vm.Console()
	t.Logf("the UI drew with TERM=%s", termOf(con))
	if i := strings.Index(con, "RECOVERY-READY"); i >= 0 {
		if ls := kernelLine.FindAllString(con[i:], -1); len(ls) > 0 {
			t.Logf("kernel lines on the console while the UI ran:\n%s", strings.Join(ls, "\n"))
		}
	}
	judge(t, fx, target)
	bootRestored(t, a, work, target)
	t.Logf("total: %s", time.Since(start).Round(time.Second))
}

// bootConsoleUI boots cfg and waits for the recovery's UI on the serial
// console: the RECOVERY-READY line of the test image's version. It
// returns the VM (killed when the test ends), a screen on the console
// and when QEMU started.
func bootConsoleUI(ctx context.Context, t *testing.T, cfg VMConfig) (*VM, *screen, time.Time) {
	t.Helper()
	vm, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(vm.Kill)
	s := newScreen(t, "serial console ttyAMA0", 80, 24, consoleInput{vm})
	s.closed = vm.CopyConsole(s)
	s.diag = func() string {
		return "--- serial log, tail, control sequences cut ---\n" + plainTail(vm.Console(), 3000)
	}
	boot := time.Now()
	// The image was built with -version artifactVersion: the recovery
	// built by u-root reads it from the initramfs.
	if _, err := vm.Expect(regexp.MustCompile(`RECOVERY-READY `+regexp.QuoteMeta(artifactVersion)), uiBootDeadline); err != nil {
		t.Fatalf("%v\n%s", err, s.dump())
	}
	t.Logf("boot to the UI: %s", time.Since(boot).Round(time.Second))
	return vm, s, boot
}

// consoleInput types into the VM's serial console.
type consoleInput struct{ vm *VM }

func (c consoleInput) Write(p []byte) (int, error) {
	if err := c.vm.Send(string(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// kernelLine is a kernel message on the console ("[   12.345678] ...").
var kernelLine = regexp.MustCompile(`\[\s*\d+\.\d{6}\] [^\r\n]*`)

// termOf tells the terminfo tcell drew with by the sequence it hides the
// cursor with.
func termOf(console string) string {
	switch {
	case strings.Contains(console, "\x1b[?25l\x1b[?1c"):
		return "linux"
	case strings.Contains(console, "\x1b[?25l"):
		return "xterm or similar"
	}
	return "unknown"
}

// usbSource is the "usb" source of the restore matrix.
func usbSource(t *testing.T) source {
	t.Helper()
	return sourceNamed(t, "usb")
}

// sourceNamed is the source of the restore matrix called name.
func sourceNamed(t *testing.T, name string) source {
	t.Helper()
	for _, s := range sources() {
		if s.name == name {
			return s
		}
	}
	t.Fatalf("BUG: no %s source", name)
	return source{}
}
