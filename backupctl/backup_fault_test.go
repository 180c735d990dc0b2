package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pibackup/pibackup/internal/backuprun"
	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/i18n"
	"github.com/pibackup/pibackup/internal/testfs"
)

// The fault tests run the real backupctl binary and hurt it the way a Pi
// does: SIGTERM and SIGKILL at known points of every backup type, a target
// filesystem that turns read-only mid-write, and two runs at once. After
// each, the same questions: a clear error, no set that looks complete but
// is not, older sets untouched, services running again, the lock free.

var (
	faultBinOnce sync.Once
	faultBin     string
	faultBinErr  error
)

// faultBinary builds backupctl once per test binary, next to the fixture.
func faultBinary(t *testing.T) string {
	t.Helper()
	fixture(t)
	faultBinOnce.Do(func() {
		faultBin = filepath.Join(shared.Dir(), "backupctl")
		out, err := exec.Command("go", "build", "-o", faultBin, ".").CombinedOutput()
		if err != nil {
			faultBinErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if faultBinErr != nil {
		t.Fatal(faultBinErr)
	}
	return faultBin
}

// faultEnv is one target with an older set, a pretend service and a run
// folder for the service marker.
type faultEnv struct {
	target, older, svc, runDir string
	olderPrint                 string
}

func newFaultEnv(t *testing.T, target string) *faultEnv {
	t.Helper()
	d := fixture(t)
	e := &faultEnv{target: target, svc: t.TempDir(), runDir: t.TempDir()}
	e.older = backupOK(t, target, "-t", "tar", "-z", "zstd", "--source-disk", d.Path)
	e.olderPrint = treePrint(t, e.older)
	if err := os.WriteFile(e.running(), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *faultEnv) running() string { return filepath.Join(e.svc, "running") }

// serviceArgs stop the pretend service by removing its file and start it
// by creating the file again.
func (e *faultEnv) serviceArgs() []string {
	return []string{"--stop-command", "rm -f " + e.running(), "--start-command", "touch " + e.running(), "--run-dir", e.runDir}
}

// treePrint fingerprints a folder: every path with its size, mode and
// mtime, and the manifest's bytes.
func treePrint(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := de.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %d %v %d\n", p, fi.Size(), fi.Mode(), fi.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	m, err := os.ReadFile(testfs.ManifestPath(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(m)
	return b.String() + hex.EncodeToString(h[:])
}

// lockFree reports whether the host's lock can be taken at once.
func lockFree(t *testing.T, target string) bool {
	t.Helper()
	f, err := os.Open(filepath.Join(target, "testpi", ".backupctl.lock"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return false
	}
	unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return true
}

// holdMidWrite arms gate to hold the first read of the source after the
// payload appeared in a set folder of tmp (<target>/<host>/tmp) that a
// killed earlier run did not leave: from then on the backup is writing
// its payload and cannot finish until the gate is released. (A size
// threshold would race: tar and the compressors buffer, and may have read
// all of the small fixture before 1 MiB of output exists.) Leftovers are
// marked, not remembered by name: the new run removes them and may take
// the same name within the second.
func holdMidWrite(gate *testfs.Gate, tmp, host string) {
	const oldMark = ".fault-test-leftover"
	es, _ := os.ReadDir(tmp)
	for _, e := range es {
		os.WriteFile(filepath.Join(tmp, e.Name(), oldMark), nil, 0o644)
	}
	gate.Hold(func(string) bool {
		es, _ := os.ReadDir(tmp)
		for _, e := range es {
			set := filepath.Join(tmp, e.Name())
			if _, err := os.Stat(filepath.Join(set, oldMark)); err == nil {
				continue
			}
			if payloadStarted(set, host) {
				return true
			}
		}
		return false
	})
}

// cancelMidWrite arms gate with holdMidWrite and calls cancel once a read
// is held, then releases it. Call stop when the backup has returned.
func cancelMidWrite(t *testing.T, gate *testfs.Gate, tmp string, cancel func()) (stop func()) {
	holdMidWrite(gate, tmp, "testpi")
	done := make(chan struct{})
	go func() {
		if err := gate.WaitHeld(done, 2*time.Minute); err != nil {
			t.Errorf("the backup was never held mid-write: %v", err)
		}
		cancel()
		gate.Release()
	}()
	return func() { close(done) }
}

// payloadStarted reports whether set holds a payload entry: an image or
// archive, or a folder of an rsync tree; not the boot image, the partition
// metadata (all named <host>-backup.*) or backupctl's own files.
func payloadStarted(set, host string) bool {
	es, _ := os.ReadDir(set)
	for _, e := range es {
		if n := e.Name(); !backupset.IsOwnFile(host, n) && !strings.HasPrefix(n, ".") {
			return true
		}
	}
	return false
}

// faultWait polls cond every 5ms until it holds or 30s pass.
func faultWait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// startBin starts the binary in its own process group (so a SIGKILL can
// take its children too, as systemd's KillMode=control-group does). done
// is closed once it has ended and been waited for; read its output only
// then.
func startBin(t *testing.T, args ...string) (cmd *exec.Cmd, out *bytes.Buffer, done <-chan struct{}) {
	t.Helper()
	cmd = exec.Command(faultBinary(t), args...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		cmd.Wait()
	}()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-ended
	})
	return cmd, &stderr, ended
}

// signalBin sends sig: SIGTERM to backupctl alone (it must stop its
// children itself), SIGKILL to its whole process group.
func signalBin(cmd *exec.Cmd, sig syscall.Signal) {
	if sig == syscall.SIGKILL {
		syscall.Kill(-cmd.Process.Pid, sig)
		return
	}
	cmd.Process.Signal(sig)
}

// TestBackupFaultSignals is the signal matrix: every backup type gets
// SIGTERM and SIGKILL while it writes its payload, and one type gets both
// signals in the ready hook (services stopped, nothing written yet) and in
// the post-backup hook (set complete, services still stopped).
//
// SIGTERM must end the run with exit 130, remove the partial set and
// start the service again. SIGKILL cannot clean up: nothing partial may
// appear outside <host>/tmp, `recover-services` must start the service,
// and the next run must clean up and succeed. In both cases the older set
// is untouched and the lock is free.
func TestBackupFaultSignals(t *testing.T) {
	d := fixture(t)
	faultBinary(t)
	e := newFaultEnv(t, t.TempDir())
	tmp := filepath.Join(e.target, "testpi", backupset.TmpDir)

	// The source is read through a gate: at the write point the test holds
	// the backup's next read of the source once payload data has reached
	// tmp, so the signal always lands mid-write, however fast the machine.
	gate := testfs.NewGate(t, t.TempDir(), d.Path)
	var pids []int // of the runs this test started

	type point struct {
		name string
		args []string
		// arm runs before the backup starts; wait after, until the
		// point is reached or the backup ended (done).
		arm  func()
		wait func(t *testing.T, done <-chan struct{}) error
	}
	at := t.TempDir()
	hook := func(flag, name string) []string {
		return []string{flag, fmt.Sprintf(`sh -c "touch %s/%s; sleep 2"`, at, name)}
	}
	reached := func(name string) func(*testing.T, <-chan struct{}) error {
		return func(t *testing.T, _ <-chan struct{}) error {
			faultWait(t, "hook "+name, func() bool { _, err := os.Stat(filepath.Join(at, name)); return err == nil })
			return nil
		}
	}
	armWriting := func() { holdMidWrite(gate, tmp, "testpi") }
	writing := func(t *testing.T, done <-chan struct{}) error {
		return gate.WaitHeld(done, 2*time.Minute)
	}
	type tc struct {
		typ []string
		pt  point
		sig syscall.Signal
	}
	var cases []tc
	for _, typ := range [][]string{{"-t", "dd"}, {"-t", "dd", "--full-read"}, {"-t", "ddz", "--full-read"}, {"-t", "ddz", "-z", "zstd", "--full-read"}, {"-t", "tar"}, {"-t", "tgz"}, {"-t", "tar", "-z", "zstd"}, {"-t", "rsync"}} {
		for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
			cases = append(cases, tc{typ, point{"write", nil, armWriting, writing}, sig})
		}
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		cases = append(cases,
			tc{[]string{"-t", "tgz"}, point{"ready", hook("--hook-ready", "ready"), nil, reached("ready")}, sig},
			tc{[]string{"-t", "tgz"}, point{"post", hook("--hook-post-backup", "post"), nil, reached("post")}, sig})
	}

	for _, c := range cases {
		name := fmt.Sprintf("%s/%s/%s", strings.Join(c.typ, ""), c.pt.name, unix.SignalName(c.sig))
		t.Run(name, func(t *testing.T) {
			os.RemoveAll(at)
			os.Mkdir(at, 0o755)
			before := setDirs(t, e.target)
			args := append([]string{"backup", "--source-disk", gate.Path(d.Path)}, c.typ...)
			args = append(append(append(args, e.serviceArgs()...), c.pt.args...), e.target)
			if c.pt.arm != nil {
				c.pt.arm()
			}
			cmd, out, done := startBin(t, args...)
			pids = append(pids, cmd.Process.Pid)
			if err := c.pt.wait(t, done); err != nil {
				gate.Release()
				<-done
				t.Fatalf("%s point not reached: %v\nbackupctl said: %s", c.pt.name, err, out)
			}
			signalBin(cmd, c.sig)
			// A reader held by the gate sleeps in the kernel; let it go
			// so the signal can take effect.
			gate.Release()
			<-done
			code := cmd.ProcessState.ExitCode()
			t.Logf("exit %d (%v): %s", code, cmd.ProcessState, strings.TrimSpace(out.String()))

			// Any set outside tmp that is new must be complete and verify.
			for _, s := range setDirs(t, e.target) {
				if slicesContains(before, s) {
					continue
				}
				vc, vout, verr := cli(context.Background(), "verify", s)
				t.Logf("new set %s: verify exit %d", filepath.Base(s), vc)
				if vc != 0 {
					t.Errorf("a set that does not verify appeared outside tmp: %s\n%s%s", s, vout, verr)
				}
			}
			if got := treePrint(t, e.older); got != e.olderPrint {
				t.Errorf("the older set changed")
			}
			if !lockFree(t, e.target) {
				t.Errorf("the lock is still held after backupctl ended")
			}
			_, err := os.Stat(e.running())
			switch c.sig {
			case syscall.SIGTERM:
				if c.pt.name != "post" {
					if code != exitCancelled || !strings.Contains(out.String(), "cancelled") {
						t.Errorf("SIGTERM at %s: exit %d, %q; want %d and a line saying it was cancelled", c.pt.name, code, out, exitCancelled)
					}
					checkNoPartialSet(t, e.target)
				}
				if err != nil {
					t.Errorf("the service was not started again after SIGTERM: %v", err)
				}
			case syscall.SIGKILL:
				if c.pt.name != "write" && err == nil {
					t.Errorf("the service runs after SIGKILL at %s; the test did not stop it", c.pt.name)
				}
				rc, rout, rerr := cli(context.Background(), "recover-services", "--run-dir", e.runDir)
				if strings.Contains(rerr, `unknown command "recover-services"`) {
					// The systemd unit's ExecStopPost runs this command.
					t.Errorf("BUG: `backupctl recover-services` is not registered (commands.go); calling it in-process")
					var o, e2 strings.Builder
					a := &app{stdout: &o, stderr: &e2, log: slog.New(slog.NewTextHandler(&e2, nil))}
					rc, rout, rerr = exitOK, "", ""
					if err := a.recoverServices(context.Background(), e.runDir, i18n.New("en")); err != nil {
						rc, rerr = exitFailure, err.Error()
					}
				}
				if _, err := os.Stat(e.running()); rc != 0 || err != nil {
					t.Errorf("recover-services after SIGKILL: exit %d %s%s; service running: %v", rc, rout, rerr, err)
				}
				if _, err := os.Stat(filepath.Join(e.runDir, backuprun.MarkerName)); err == nil {
					t.Errorf("the service marker is left after recover-services")
				}
			}
		})
	}

	// The next run cleans up what the killed runs left and succeeds, and
	// no source mount or loop device of the source is left behind.
	set := backupOK(t, e.target, append([]string{"-t", "tgz", "--source-disk", d.Path}, e.serviceArgs()...)...)
	readManifest(t, set)
	checkNoPartialSet(t, e.target)
	if es, _ := os.ReadDir(tmp); len(es) > 0 {
		t.Errorf("tmp is not empty after a good run: %v", es)
	}
	// Only this test's runs count: other packages' tests may be backing
	// up at the same moment.
	mi := runTool(t, "cat", "/proc/self/mountinfo")
	for _, pid := range append(pids, os.Getpid()) {
		if strings.Contains(mi, fmt.Sprintf("backupctl-src-%d-", pid)) {
			t.Errorf("a source mount of run %d is left:\n%s", pid, mi)
		}
	}
	for _, src := range []string{d.Path, gate.Path(d.Path)} {
		if out := strings.TrimSpace(runTool(t, "losetup", "-j", src)); out != "" {
			t.Errorf("loop devices of the source are left: %s", out)
		}
	}
	readManifest(t, e.older)
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestBackupFaultReadOnlyTarget turns the target ext4 read-only while a
// set is written, the way ext4 (errors=remount-ro) reacts to a failing
// USB disk: the kernel's trigger_fs_error makes ext4 report an error and
// remount itself read-only. The run must fail with one clear line; the
// half-written set may stay in tmp (nothing can be deleted now) but
// nothing outside tmp may look like a new set, the older set must still
// read back, the service must run again and the lock must be free.
func TestBackupFaultReadOnlyTarget(t *testing.T) {
	d := fixture(t)
	faultBinary(t)
	for _, typ := range [][]string{{"-t", "tgz"}, {"-t", "rsync"}} {
		t.Run(strings.Join(typ, ""), func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "target.img")
			if err := os.WriteFile(img, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			os.Truncate(img, 640<<20)
			runTool(t, "mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0", img)
			runTool(t, "tune2fs", "-e", "remount-ro", img)
			dev := testfs.AttachLoop(t, img, 0, 0, false)
			target := t.TempDir()
			testfs.MountExt4(t, dev, target, false)
			trigger := "/sys/fs/ext4/" + filepath.Base(dev) + "/trigger_fs_error"
			if _, err := os.Stat(trigger); err != nil {
				t.Skipf("kernel has no %s: %v", trigger, err)
			}
			e := newFaultEnv(t, target)
			tmp := filepath.Join(target, "testpi", backupset.TmpDir)

			before := setDirs(t, target)
			// Hold the backup's reads of the source once the payload is
			// being written in tmp, so the error lands mid-write on any
			// machine.
			gate := testfs.NewGate(t, t.TempDir(), d.Path)
			gate.Hold(func(string) bool {
				es, _ := os.ReadDir(tmp)
				for _, e := range es {
					if payloadStarted(filepath.Join(tmp, e.Name()), "testpi") {
						return true
					}
				}
				return false
			})
			args := append(append(append([]string{"backup", "--source-disk", gate.Path(d.Path)}, typ...), e.serviceArgs()...), target)
			cmd, out, done := startBin(t, args...)
			if err := gate.WaitHeld(done, 2*time.Minute); err != nil {
				gate.Release()
				<-done
				t.Fatalf("payload data never reached tmp while the source was read: %v\nbackupctl said: %s", err, out)
			}
			if err := os.WriteFile(trigger, []byte("1\n"), 0); err != nil {
				t.Fatalf("trigger fs error: %v", err)
			}
			gate.Release()
			<-done
			code := cmd.ProcessState.ExitCode()
			msg := strings.TrimSpace(out.String())
			t.Logf("read-only target: exit %d: %s", code, msg)
			if !isReadOnly(target) {
				t.Fatalf("the target did not turn read-only; the test proves nothing")
			}
			if code != exitFailure || !strings.Contains(strings.ToLower(msg), "read-only") {
				t.Errorf("exit %d, %q; want %d and a line naming the read-only file system", code, msg, exitFailure)
			}
			for _, s := range setDirs(t, target) {
				if !slicesContains(before, s) {
					t.Errorf("a new set appeared outside tmp on a read-only target: %s", s)
				}
			}
			// Nothing can be deleted from a read-only target: the partial
			// set stays in tmp (marked in progress), and the message must
			// not claim it was removed.
			if es, _ := os.ReadDir(tmp); len(es) > 0 && strings.Contains(msg, "partial set was removed") {
				t.Errorf("BUG: the message says the partial set was removed, but %s still holds %s", tmp, es[0].Name())
			}
			if _, err := os.Stat(e.running()); err != nil {
				t.Errorf("the service was not started again: %v", err)
			}
			if !lockFree(t, target) {
				t.Error("the lock is still held")
			}
			if got := treePrint(t, e.older); got != e.olderPrint {
				t.Errorf("the older set changed")
			}
			readManifest(t, e.older)
		})
	}
}

// isReadOnly reports whether the filesystem at dir refuses writes with
// EROFS. (Since Linux 6.x, ext4's errors=remount-ro sets an internal
// emergency read-only flag that statfs does not show.)
func isReadOnly(dir string) bool {
	f, err := os.Create(filepath.Join(dir, "probe"))
	if err == nil {
		f.Close()
		os.Remove(f.Name())
	}
	return errors.Is(err, unix.EROFS)
}

// TestBackupFaultConcurrent starts a second backup of the same host onto
// the same target while the first one holds the host's lock (it waits in
// its ready hook, which runs under the lock): the second is refused with
// exit 5 before it writes anything, the first writes a set that verifies.
func TestBackupFaultConcurrent(t *testing.T) {
	d := fixture(t)
	faultBinary(t)
	target := t.TempDir()
	at := t.TempDir()
	inHook, goOn := filepath.Join(at, "in-hook"), filepath.Join(at, "go-on")
	// The hook itself waits for the test's go-ahead, so the first run
	// holds the lock for as long as the test needs, on any machine.
	hook := fmt.Sprintf(`sh -c "touch %s; while [ ! -e %s ]; do sleep 0.05; done"`, inHook, goOn)
	first, firstOut, firstDone := startBin(t, "backup", "-t", "tgz", "--source-disk", d.Path, "--hook-ready", hook, target)
	faultWait(t, "the first run's ready hook", func() bool { _, err := os.Stat(inHook); return err == nil })

	second, secondOut, secondDone := startBin(t, "backup", "-t", "tgz", "--source-disk", d.Path, target)
	<-secondDone
	code := second.ProcessState.ExitCode()
	t.Logf("second run: exit %d: %s", code, strings.TrimSpace(secondOut.String()))
	if code != exitLocked || !strings.Contains(secondOut.String(), "lock") {
		t.Errorf("second run while the first holds the lock: exit %d, %q; want %d and a line naming the lock", code, secondOut, exitLocked)
	}

	if err := os.WriteFile(goOn, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	<-firstDone
	if code := first.ProcessState.ExitCode(); code != exitOK {
		t.Errorf("first run: exit %d; want %d: %s", code, exitOK, firstOut)
	}
	sets := setDirs(t, target)
	if len(sets) != 1 {
		t.Fatalf("sets %q; want exactly one", sets)
	}
	readManifest(t, sets[0])
	checkNoPartialSet(t, target)
	if vc, vout, verr := cli(context.Background(), "verify", sets[0]); vc != 0 {
		t.Errorf("verify: exit %d %s%s", vc, vout, verr)
	}
}

// TestBackupFaultSecretsNotLogged runs a failing backup (its ready hook
// fails) with an SMTP password and a webhook URL and token in a 0600
// config, verbose, with a mail server and a webhook that cannot be
// reached, so every error path that might quote them runs: none of the
// secrets may appear on stderr, stdout, in the kept run log or in the
// status file.
func TestBackupFaultSecretsNotLogged(t *testing.T) {
	d := fixture(t)
	target := t.TempDir()
	const pw, tok, hookSecret = "Sm7pPassw0rd-x1", "W3bh00kT0ken-y2", "h00kPath-z3"
	conf := filepath.Join(t.TempDir(), "backupctl.conf")
	body := fmt.Sprintf(`email.to = ["root@localhost"]
[smtp]
host = "127.0.0.1"
port = 1
user = "pi"
password = %q
[webhook]
url = "http://127.0.0.1:1/%s"
token = %q
`, pw, hookSecret, tok)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := cli(context.Background(), "backup", "-v", "-f", conf, "-t", "tgz", "--source-disk", d.Path,
		"--hook-ready", "false", target)
	if code == 0 {
		t.Fatalf("backup with a failing ready hook succeeded")
	}
	var logs strings.Builder
	logs.WriteString(out + errOut)
	filepath.WalkDir(target, func(p string, de fs.DirEntry, err error) error {
		if err == nil && de.Type().IsRegular() && (strings.HasSuffix(p, ".log") || strings.HasSuffix(p, ".json")) {
			b, _ := os.ReadFile(p)
			logs.WriteString(string(b))
		}
		return nil
	})
	if !strings.Contains(logs.String(), "127.0.0.1") {
		t.Logf("note: no notification error was logged; the secrets were not near the output")
	}
	for _, s := range []string{pw, tok, hookSecret} {
		if strings.Contains(logs.String(), s) {
			t.Errorf("a secret (%s) appears in the output or logs:\n%s", s[:4]+"...", logs.String())
		}
	}
}
