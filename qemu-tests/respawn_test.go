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

// testPanicFlag is the recovery's test-only kernel command line word
// (recovery/testhook.go): with it, SIGUSR2 makes the recovery panic in a
// goroutine of its own.
const testPanicFlag = "pibackup.test_panic=sigusr2"

// TestRecoveryRespawn kills the recovery in the guest twice, as issue 20
// saw it die, and checks that it comes back each time: the supervisor
// that init starts announces a RECOVERY-RESTART line on the console, the
// UI is back on screen (a new RECOVERY-READY, and the home menu saying
// that it restarted), and Go's report of the panic is on the console.
//
// Both kills come from the UI's shell on the serial console, the way a
// person at the console would do it: $PPID of that shell is the
// recovery. First SIGKILL (kill -9), then SIGUSR2, which with
// testPanicFlag on the command line makes the recovery panic in a
// goroutine that no recover() reaches, as the goroutine dump in the
// issue did. At the end the test leaves a shell with exit, and the UI,
// which must still read keys, powers the machine off; QEMU must exit: a
// deliberate power-off is not restarted.
func TestRecoveryRespawn(t *testing.T) {
	a := requireArtifacts(t)
	work := t.TempDir()
	rec := recoveryImage(t, a, work, nil)
	cfg := VMConfig{Arch: "arm64", Kernel: a.boot.Kernel, Initrd: a.boot.Initramfs,
		LogPath: filepath.Join(work, "recovery-console.log"),
		Append:  a.boot.Cmdline + " " + testPanicFlag,
		Drives:  []Drive{{Path: rec}}}
	ctx, cancel := context.WithTimeout(context.Background(), uiBootDeadline+5*time.Minute)
	defer cancel()
	vm, s, boot := bootConsoleUI(ctx, t, cfg)
	home := regexp.MustCompile(`Restore a backup`)
	s.wait(t, home, uiStepDeadline)

	for _, kill := range []struct {
		n               string
		command, reason string
		shown           *regexp.Regexp // on the home screen after the restart
		// reason: report= names a file only when the supervisor wrote it.
	}{
		{"1", "kill -9 $PPID", `reason=SIGKILL uptime=\S+ report=/tmp/recovery-crash-1\.txt`, regexp.MustCompile(`restarted after it ended \(SIGKILL\)`)},
		{"2", "kill -SIGUSR2 $PPID", `reason=panic uptime=\S+ report=/tmp/recovery-crash-2\.txt message="forced test panic`, regexp.MustCompile(`restarted after it ended \(panic:`)},
	} {
		shell(t, vm, s)
		sent := time.Now()
		off := shellLine(t, vm, s, kill.command)
		restartRE := regexp.MustCompile(`RECOVERY-RESTART n=` + kill.n + ` ` + kill.reason + `[^\r\n]*`)
		m, err := vm.ExpectAfter(off, restartRE, uiStepDeadline)
		if err != nil {
			t.Fatalf("%s: %v\n%s", kill.command, err, s.dump())
		}
		announced := time.Now()
		// The RECOVERY-READY of the new recovery, after the line.
		readyRE := regexp.MustCompile(`(?s)RECOVERY-RESTART n=` + kill.n + ` .*RECOVERY-READY ` + regexp.QuoteMeta(artifactVersion))
		if _, err := vm.Expect(readyRE, uiStepDeadline); err != nil {
			t.Fatalf("no UI after %q: %v\n%s", m[0], err, s.dump())
		}
		t.Logf("%s: %q %s after the command; the UI back %s later", kill.command, m[0],
			announced.Sub(sent).Round(100*time.Millisecond), time.Since(announced).Round(100*time.Millisecond))
		s.wait(t, kill.shown, uiStepDeadline)
		s.wait(t, home, uiStepDeadline)
	}

	con := vm.Console()
	// Go's report of the panic went to the console as well (the
	// supervisor copies the recovery's stderr there).
	for _, want := range []string{"panic: forced test panic", "goroutine "} {
		if !strings.Contains(con, want) {
			t.Errorf("the console lacks %q", want)
		}
	}
	// Leaving the shell hangs the console up (its session leader ends):
	// the menu must still read keys afterwards, as choosing Power off
	// below needs.
	shell(t, vm, s)
	shellLine(t, vm, s, "exit")
	s.wait(t, home, uiStepDeadline)
	s.choose(t, keyTab, regexp.MustCompile(`Power off`), uiStepDeadline)
	s.press(t, keyEnter)
	if err := vm.Wait(90 * time.Second); err != nil {
		t.Fatalf("recovery did not power off: %v\n%s", err, s.dump())
	}
	if n := strings.Count(vm.Console(), "RECOVERY-RESTART"); n != 2 {
		t.Errorf("%d RECOVERY-RESTART lines; want 2 (the power-off must not restart)", n)
	}
	t.Logf("guest: %s from boot to power-off", time.Since(boot).Round(time.Second))
}

// shell opens the UI's shell from the home menu, the way
// restoreThroughUI walks it (Tab, a single byte, moves the highlight),
// and waits for gosh's line editor. The editor redraws all the time (its
// cursor blinks), so the screen never settles: from here on the test
// reads the raw console (ExpectAfter) until the UI is back.
func shell(t *testing.T, vm *VM, s *screen) {
	t.Helper()
	s.choose(t, keyTab, regexp.MustCompile(`Shell \(experts\)`), uiStepDeadline)
	off := vm.Len()
	s.press(t, keyEnter)
	if _, err := vm.ExpectAfter(off, regexp.MustCompile(`(?s)Recovery shell\. Type exit.*toggle key help`), uiStepDeadline); err != nil {
		t.Fatalf("no shell: %v\n%s", err, s.dump())
	}
}

// shellLine types line into the shell, waits until the editor shows it,
// then presses Enter: an Enter that arrives in one read with the text is
// taken for part of a paste, and the line is not run. It returns the
// console offset from before the Enter that ran the line, for
// ExpectAfter.
func shellLine(t *testing.T, vm *VM, s *screen, line string) int {
	t.Helper()
	off := vm.Len()
	s.mu.Lock()
	s.em.SendText(line)
	s.mu.Unlock()
	if _, err := vm.ExpectAfter(off, regexp.MustCompile(regexp.QuoteMeta(line)), uiStepDeadline); err != nil {
		t.Fatalf("the shell did not echo %q: %v\n%s", line, err, s.dump())
	}
	// gosh's editor (bubbletea) ends its input program when it takes
	// the line, and turns mouse reporting off then (\e[?1002l). Now and
	// then it misses an Enter (seen while it waits for the answer to its
	// colour query, which the emulator does not give): press again when
	// it has not taken the line after a while.
	taken := regexp.MustCompile(`\x1b\[\?1002l`)
	for try := 1; ; try++ {
		off = vm.Len()
		s.press(t, keyEnter)
		_, err := vm.ExpectAfter(off, taken, 15*time.Second)
		if err == nil {
			return off
		}
		if try == 3 {
			t.Fatalf("the shell did not take %q after %d Enters: %v\n%s", line, try, err, s.dump())
		}
		t.Logf("the shell did not take %q: Enter again", line)
	}
}
