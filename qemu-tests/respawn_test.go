//go:build !race

package qemutests

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/vt"
)

// testCrashFlag is the recovery's test-only kernel command line word
// (recovery/testhook.go): F12 ends the first run with SIGKILL and the
// second with a panic in a goroutine of its own.
const testCrashFlag = "pibackup.test_crash=kill,panic"

// keyF12 is the test-only crash key.
var keyF12 = vt.KeyPressEvent{Code: vt.KeyF12}

// TestRecoveryRespawn ends the recovery in the guest twice, as issue 20
// saw it die, and checks that it comes back each time: the supervisor
// that init starts announces a RECOVERY-RESTART line on the console, the
// UI is back on screen (a new RECOVERY-READY, and the home menu saying
// that it restarted), and Go's report of the panic is on the console.
//
// The crashes come from one key on the serial console (F12, armed by
// testCrashFlag): first a SIGKILL, then a panic in a goroutine that no
// recover() reaches, as the goroutine dump in the issue showed. At the
// end the UI, which must still read keys, powers the machine off; QEMU
// must exit: a deliberate power-off is not restarted.
func TestRecoveryRespawn(t *testing.T) {
	a := requireArtifacts(t)
	work := t.TempDir()
	rec := recoveryImage(t, a, work, nil)
	cfg := VMConfig{Arch: "arm64", Kernel: a.boot.Kernel, Initrd: a.boot.Initramfs,
		LogPath: filepath.Join(work, "recovery-console.log"),
		Append:  a.boot.Cmdline + " " + testCrashFlag,
		Drives:  []Drive{{Path: rec}}}
	ctx, cancel := context.WithTimeout(context.Background(), uiBootDeadline+5*time.Minute)
	defer cancel()
	vm, s, boot := bootConsoleUI(ctx, t, cfg)
	home := regexp.MustCompile(`Restore a backup`)
	s.wait(t, home, uiStepDeadline)

	for _, kill := range []struct {
		n      string
		reason string
		shown  *regexp.Regexp // on the home screen after the restart
		// reason: report= names a file only when the supervisor wrote it.
	}{
		{"1", `reason=SIGKILL uptime=\S+ report=/tmp/recovery-crash-1\.txt`, regexp.MustCompile(`restarted after it ended \(SIGKILL\)`)},
		{"2", `reason=panic uptime=\S+ report=/tmp/recovery-crash-2\.txt message="forced test panic`, regexp.MustCompile(`restarted after it ended \(panic:`)},
	} {
		off := vm.Len()
		sent := time.Now()
		s.press(t, keyF12)
		restartRE := regexp.MustCompile(`RECOVERY-RESTART n=` + kill.n + ` ` + kill.reason + `[^\r\n]*`)
		m, err := vm.ExpectAfter(off, restartRE, uiStepDeadline)
		if err != nil {
			t.Fatalf("F12 (crash %s): %v\n%s", kill.n, err, s.dump())
		}
		announced := time.Now()
		// The RECOVERY-READY of the new recovery, after the line.
		readyRE := regexp.MustCompile(`(?s)RECOVERY-RESTART n=` + kill.n + ` .*RECOVERY-READY ` + regexp.QuoteMeta(artifactVersion))
		if _, err := vm.ExpectAfter(off, readyRE, uiStepDeadline); err != nil {
			t.Fatalf("no UI after %q: %v\n%s", m[0], err, s.dump())
		}
		t.Logf("crash %s: %q %s after F12; the UI back %s later", kill.n, m[0],
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
	// The item's shortcut, not Tab down the menu: once in CI the
	// highlight seemed to come round to "Restore a backup" again on the
	// screen redrawn after the restart, and choose gave up.
	s.wait(t, regexp.MustCompile(`\(p\) Power off`), uiStepDeadline)
	s.send(t, "p")
	if err := vm.Wait(90 * time.Second); err != nil {
		t.Fatalf("recovery did not power off: %v\n%s", err, s.dump())
	}
	if n := strings.Count(vm.Console(), "RECOVERY-RESTART"); n != 2 {
		t.Errorf("%d RECOVERY-RESTART lines; want 2 (the power-off must not restart)", n)
	}
	t.Logf("guest: %s from boot to power-off", time.Since(boot).Round(time.Second))
}
