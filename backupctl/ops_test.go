package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/pibackup/pibackup/internal/backuprun"
	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/config"
	"github.com/pibackup/pibackup/internal/testfs"
)

// The operations tests run `backupctl backup` in-process with a real
// config file, a real "service" (a sleep process that stop and start
// commands kill and start again), real hook scripts, real retention on
// disk and a real SMTP conversation on 127.0.0.1.

// sleepService is a service for the tests: a `sleep 300` whose PID is in
// dir/pid. Its stop command kills it and waits until it is gone; its
// start command starts a new one.
type sleepService struct {
	dir   string
	start string // script paths
	stop  string
}

func newSleepService(t *testing.T) *sleepService {
	t.Helper()
	dir := t.TempDir()
	s := &sleepService{dir: dir, start: filepath.Join(dir, "start.sh"), stop: filepath.Join(dir, "stop.sh")}
	// setsid: the sleep must outlive the start command's process group,
	// which the runner kills on cancellation. The redirections let the
	// runner's output pipes close when the script ends.
	writeScript(t, s.start, fmt.Sprintf(`setsid sleep 300 </dev/null >/dev/null 2>&1 &
pid=$!
# started means running sleep, not the shell that is about to exec it
while [ "$(cat /proc/$pid/comm 2>/dev/null)" != sleep ]; do sleep 0.01; done
echo $pid > %[1]s/pid
`, dir))
	// PID 1 here may not reap orphans, so "gone" means no process or a
	// zombie.
	writeScript(t, s.stop, fmt.Sprintf(`pid=$(cat %[1]s/pid) || exit 1
kill "$pid"
i=0
while :; do
	st=$(cut -d' ' -f3 /proc/$pid/stat 2>/dev/null)
	[ -z "$st" ] || [ "$st" = Z ] && break
	i=$((i+1)); [ $i -gt 200 ] && { echo "service $pid did not stop" >&2; exit 1; }
	sleep 0.05
done
rm -f %[1]s/pid
`, dir))
	runTool(t, "/bin/sh", s.start)
	t.Cleanup(func() {
		if pid := s.pid(); pid > 0 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return s
}

func (s *sleepService) pid() int {
	b, err := os.ReadFile(filepath.Join(s.dir, "pid"))
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

// running reports the PID of the live sleep, 0 if the service is down.
func (s *sleepService) running() int {
	pid := s.pid()
	if pid <= 0 {
		return 0
	}
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(st))
	if len(f) < 3 || f[2] == "Z" || f[1] != "(sleep)" {
		return 0
	}
	return pid
}

func writeScript(t *testing.T, p, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
}

// opsEnv is a config file with the sleep service and a hooks folder whose
// scripts record their environment in out/<event>.env. Files in out/
// steer them: "fail-pre" makes pre-backup fail, "fill" makes ready fill
// the target (so the write that follows runs out of space).
type opsEnv struct {
	svc    *sleepService
	config string
	out    string
}

func newOpsEnv(t *testing.T, extraConfig string) *opsEnv {
	t.Helper()
	e := &opsEnv{svc: newSleepService(t), out: t.TempDir()}
	hooks := filepath.Join(t.TempDir(), "hooks.d")
	record := fmt.Sprintf(`env | grep -E '^(BACKUP_|LOG_FILE=)' | sort > %s/$BACKUP_EVENT.env
if [ -f %[2]s/pid ] && [ "$(cut -d' ' -f3 /proc/$(cat %[2]s/pid)/stat 2>/dev/null)" = S ]; then
	echo running > %[1]s/$BACKUP_EVENT.service
else
	echo stopped > %[1]s/$BACKUP_EVENT.service
fi
`, e.out, e.svc.dir)
	writeScript(t, filepath.Join(hooks, "pre-backup", "10-record"), record+fmt.Sprintf(`
if [ -f %s/fail-pre ]; then echo "database dump failed" >&2; exit 1; fi
`, e.out))
	writeScript(t, filepath.Join(hooks, "ready", "10-record"), record+fmt.Sprintf(`
if [ -f %s/fill ]; then
	hostdir=$(dirname "$BACKUP_TARGETDIR")
	# free blocks including root's reserve: the backup runs as root
	set -- $(stat -f -c '%%f %%S' "$hostdir")
	size=$(( $1 * $2 ))
	# ext4 keeps some blocks for itself: step down until it fits
	until fallocate -l $size "$hostdir/../filler" 2>/dev/null; do size=$((size - 1048576)); done
fi
`, e.out))
	writeScript(t, filepath.Join(hooks, "post-backup", "10-record"), record)
	e.config = filepath.Join(t.TempDir(), "backupctl.conf")
	conf := fmt.Sprintf(`stop-commands = ["/bin/sh %s"]
start-commands = ["/bin/sh %s"]
hooks.dir = %q
%s
`, e.svc.stop, e.svc.start, hooks, extraConfig)
	if err := os.WriteFile(e.config, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

// env reads what the hook of event saw; nil if it did not run.
func (e *opsEnv) env(t *testing.T, event string) map[string]string {
	t.Helper()
	return readHookEnv(t, e.out, event)
}

// readHookEnv reads the KEY=value lines a recording hook of event wrote
// to dir/<event>.env; nil if it did not run.
func readHookEnv(t *testing.T, dir, event string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, event+".env"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		k, v, _ := strings.Cut(l, "=")
		m[k] = v
	}
	return m
}

func (e *opsEnv) serviceAt(t *testing.T, event string) string {
	t.Helper()
	b, _ := os.ReadFile(filepath.Join(e.out, event+".service"))
	return strings.TrimSpace(string(b))
}

func (e *opsEnv) reset(t *testing.T) {
	t.Helper()
	es, _ := os.ReadDir(e.out)
	for _, x := range es {
		os.Remove(filepath.Join(e.out, x.Name()))
	}
}

func (e *opsEnv) flag(t *testing.T, name string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(e.out, name), nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBackupServicesAndHooks stops and starts a real service around real
// backups: after success, after a write that runs out of space, after a
// cancellation and after backupctl is SIGKILLed (recover-services).
func TestBackupServicesAndHooks(t *testing.T) {
	testfs.Require(t, "loop")
	d := fixture(t)
	e := newOpsEnv(t, "keep = 1")
	target := newExt4(t, 256<<20)
	runDir := t.TempDir()
	backup := func(ctx context.Context, args ...string) (int, string, string) {
		return cli(ctx, append(append([]string{"backup", "-f", e.config, "--run-dir", runDir, "--source-disk", d.Path}, args...), target)...)
	}

	var first string
	t.Run("success", func(t *testing.T) {
		before := e.svc.running()
		if before == 0 {
			t.Fatal("service not running at the start")
		}
		code, out, errOut := backup(context.Background(), "-t", "tgz")
		if code != 0 {
			t.Fatalf("backup = exit %d\n%s\n%s", code, out, errOut)
		}
		sets := setDirs(t, target)
		if len(sets) != 1 {
			t.Fatalf("sets %q", sets)
		}
		first = sets[0]
		if got := e.serviceAt(t, "pre-backup"); got != "running" {
			t.Errorf("service at pre-backup: %s; want running (pre-backup runs before services stop)", got)
		}
		if got := e.serviceAt(t, "ready"); got != "stopped" {
			t.Errorf("service at ready: %s; want stopped", got)
		}
		if got := e.serviceAt(t, "post-backup"); got != "stopped" {
			t.Errorf("service at post-backup: %s; want stopped (post-backup runs before services start)", got)
		}
		if pid := e.svc.running(); pid == 0 || pid == before {
			t.Errorf("service after the backup: pid %d (before %d); want a new running one", pid, before)
		}
		name := filepath.Base(first)
		logFile := filepath.Join(first, backupset.RunLogName("testpi"))
		for event, want := range map[string]map[string]string{
			"pre-backup":  {"BACKUP_EVENT": "pre-backup", "BACKUP_TARGETDIR": first, "BACKUP_TYPE": "tgz", "BACKUP_HOSTNAME": "testpi"},
			"ready":       {"BACKUP_EVENT": "ready", "BACKUP_TARGETDIR": first, "BACKUP_TYPE": "tgz"},
			"post-backup": {"BACKUP_EVENT": "post-backup", "BACKUP_RC": "0", "LOG_FILE": logFile, "BACKUP_TARGETFILE": filepath.Join(first, name+".tgz")},
		} {
			got := e.env(t, event)
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s hook: %s=%q; want %q (env %v)", event, k, got[k], v, got)
				}
			}
		}
		if _, ok := e.env(t, "pre-backup")["BACKUP_RC"]; ok {
			t.Error("pre-backup hook sees BACKUP_RC before the outcome is known")
		}
		// The run log is in the set, ends with the summary and is not in
		// the manifest (it was written until the end).
		log, err := os.ReadFile(logFile)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"stopping service", "starting service", "running hook", "new set verified", "msg=summary", "ok=true"} {
			if !strings.Contains(string(log), want) {
				t.Errorf("run log lacks %q:\n%s", want, log)
			}
		}
		m := readManifest(t, first)
		for _, f := range m.Files {
			if f.Path == backupset.RunLogName("testpi") {
				t.Error("the manifest lists the run log")
			}
		}
		if _, err := os.Stat(filepath.Join(runDir, backuprun.MarkerName)); !os.IsNotExist(err) {
			t.Errorf("service marker left after a good run: %v", err)
		}
	})

	t.Run("target-full", func(t *testing.T) {
		e.reset(t)
		e.flag(t, "fill")
		defer os.Remove(filepath.Join(target, "filler"))
		code, _, errOut := backup(context.Background(), "-t", "tgz")
		t.Logf("full: exit %d: %s", code, strings.TrimSpace(errOut))
		if code != exitFailure || !strings.Contains(errOut, "no space left") || strings.Count(strings.TrimSpace(errOut), "\n") > 0 {
			t.Errorf("backup onto a target filled mid-run = exit %d, %q; want %d, one line saying it is full", code, errOut, exitFailure)
		}
		if got := e.serviceAt(t, "ready"); got != "stopped" {
			t.Errorf("service at ready: %q; want stopped", got)
		}
		if e.svc.running() == 0 {
			t.Error("service not running after the failed backup")
		}
		post := e.env(t, "post-backup")
		if post["BACKUP_RC"] != "1" {
			t.Errorf("post-backup BACKUP_RC=%q; want 1", post["BACKUP_RC"])
		}
		// The set is gone, the log of the failed run is kept, the older
		// set is untouched although keep = 1 (no retention after a failure).
		failedLog := filepath.Join(target, "testpi", backuprun.FailedLogName)
		if post["LOG_FILE"] != failedLog {
			t.Errorf("post-backup LOG_FILE=%q; want %s", post["LOG_FILE"], failedLog)
		}
		if b, err := os.ReadFile(failedLog); err != nil || !strings.Contains(string(b), "ok=false") {
			t.Errorf("failed run's log: %v\n%s", err, b)
		}
		if sets := setDirs(t, target); !slices.Equal(sets, []string{first}) {
			t.Errorf("sets after the failed run: %q; want only %s", sets, first)
		}
		checkNoPartialSet(t, target)
	})

	// A cancelled and a killed run write ddz images into their own folder,
	// reading the source through a gate that holds them mid-write, so the
	// cancel and the kill land there on any machine.
	bigTarget := t.TempDir()
	gate := testfs.NewGate(t, t.TempDir(), d.Path)
	bigTmp := filepath.Join(bigTarget, "testpi", backupset.TmpDir)
	t.Run("cancel", func(t *testing.T) {
		e.reset(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		stop := cancelMidWrite(t, gate, bigTmp, cancel)
		code, _, errOut := cli(ctx, "backup", "-f", e.config, "--run-dir", runDir, "-t", "ddz", "--source-disk", gate.Path(d.Path), bigTarget)
		stop()
		if code != exitCancelled {
			t.Fatalf("cancelled backup = exit %d (%s); want %d", code, errOut, exitCancelled)
		}
		if got := e.serviceAt(t, "ready"); got != "stopped" {
			t.Errorf("service at ready: %q; want stopped", got)
		}
		if e.svc.running() == 0 {
			t.Error("service not running after the cancelled backup")
		}
		if rc := e.env(t, "post-backup")["BACKUP_RC"]; rc != strconv.Itoa(exitCancelled) {
			t.Errorf("post-backup after cancel: BACKUP_RC=%q; want %d", rc, exitCancelled)
		}
		checkNoPartialSet(t, bigTarget)
	})

	t.Run("sigkill", func(t *testing.T) {
		e.reset(t)
		holdMidWrite(gate, bigTmp, "testpi")
		cmd := exec.Command(builtBinary(t), "backup", "-f", e.config, "--run-dir", runDir, "-t", "ddz", "--source-disk", gate.Path(d.Path), bigTarget)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() {
			defer close(exited)
			cmd.Wait()
		}()
		if err := gate.WaitHeld(exited, 2*time.Minute); err != nil {
			gate.Release()
			<-exited
			t.Fatalf("the backup was never held mid-write: %v\n%s", err, stderr.String())
		}
		cmd.Process.Signal(syscall.SIGKILL)
		gate.Release()
		<-exited
		if e.svc.running() != 0 {
			t.Fatalf("service running after SIGKILL mid-backup; the test did not kill it in time (%s)", stderr.String())
		}
		if _, err := os.Stat(filepath.Join(runDir, backuprun.MarkerName)); err != nil {
			t.Fatalf("no marker of the stopped services: %v", err)
		}
		code, out, errOut := cliCmd(context.Background(), (*app).newRecoverServicesCmd, "--run-dir", runDir)
		if code != 0 || !strings.Contains(out, "started 1 services") {
			t.Errorf("recover-services = exit %d, %q %q", code, out, errOut)
		}
		if e.svc.running() == 0 {
			t.Error("service not running after recover-services")
		}
		code, out, _ = cliCmd(context.Background(), (*app).newRecoverServicesCmd, "--run-dir", runDir)
		if code != 0 || !strings.Contains(out, "no services") {
			t.Errorf("second recover-services = exit %d, %q; want nothing to do", code, out)
		}
		// The next run cleans up after the killed one.
		if code, _, errOut := backup(context.Background(), "-t", "tgz"); code != 0 {
			t.Errorf("backup after the killed run = exit %d: %s", code, errOut)
		}
	})

	// An encrypted payload is NAME.tgz.age: post-backup is told that
	// file, one that exists.
	t.Run("encrypted", func(t *testing.T) {
		e.reset(t)
		pass := filepath.Join(t.TempDir(), "pass")
		if err := os.WriteFile(pass, []byte("hooks see the real file\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if code, out, errOut := backup(context.Background(), "-t", "tgz", "--encrypt-passphrase-file", pass); code != 0 {
			t.Fatalf("encrypted backup = exit %d\n%s\n%s", code, out, errOut)
		}
		sets := setDirs(t, target)
		set := sets[len(sets)-1]
		got := e.env(t, "post-backup")["BACKUP_TARGETFILE"]
		if want := filepath.Join(set, filepath.Base(set)+".tgz.age"); got != want {
			t.Errorf("post-backup BACKUP_TARGETFILE=%q; want %q", got, want)
		}
		if _, err := os.Stat(got); err != nil {
			t.Errorf("post-backup is told a payload that is not there: %v", err)
		}
	})
}

var (
	binaryOnce sync.Once
	binaryPath string
	binaryErr  error
)

// builtBinary builds backupctl once per test run, for the tests that must
// kill a real process.
func builtBinary(t *testing.T) string {
	t.Helper()
	binaryOnce.Do(func() {
		dir, err := os.MkdirTemp("", "backupctl-bin-")
		if err != nil {
			binaryErr = err
			return
		}
		binaryPath = filepath.Join(dir, "backupctl")
		if out, err := exec.Command("go", "build", "-o", binaryPath, ".").CombinedOutput(); err != nil {
			binaryErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if binaryErr != nil {
		t.Fatal(binaryErr)
	}
	return binaryPath
}

// TestBackupPreBackupHookAborts: a failing pre-backup hook stops the run
// before services stop and before any byte of a set is written.
func TestBackupPreBackupHookAborts(t *testing.T) {
	d := fixture(t)
	e := newOpsEnv(t, "")
	e.flag(t, "fail-pre")
	target := t.TempDir()
	before := e.svc.running()
	code, out, errOut := cli(context.Background(), "backup", "-f", e.config, "--run-dir", t.TempDir(), "-t", "tgz", "--source-disk", d.Path, target)
	t.Logf("exit %d: %s", code, strings.TrimSpace(errOut))
	if code != exitPreflight || !strings.Contains(errOut, "a hook stopped the backup before anything was written") ||
		!strings.Contains(errOut, "pre-backup hook") || !strings.Contains(errOut, "database dump failed") ||
		strings.Count(strings.TrimSpace(errOut), "\n") > 0 {
		t.Errorf("backup with a failing pre-backup hook = exit %d, %q; want %d and one line naming the hook and its output", code, errOut, exitPreflight)
	}
	if out != "" {
		t.Errorf("stdout %q; want nothing", out)
	}
	if e.env(t, "ready") != nil || e.env(t, "post-backup") != nil {
		t.Error("ready or post-backup hooks ran after pre-backup failed")
	}
	if pid := e.svc.running(); pid != before {
		t.Errorf("service pid %d; want %d untouched", pid, before)
	}
	l, err := backupset.List(os.DirFS(target), ".")
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Sets) != 0 {
		t.Errorf("sets after the aborted run: %+v", l.Sets)
	}
	if _, err := os.Stat(filepath.Join(target, "testpi", backupset.TmpDir)); !os.IsNotExist(err) {
		t.Errorf("tmp folder left: %v", err)
	}
}

// TestBackupRetention runs four backups with -k 2, the second a named
// snapshot: the newest two and the snapshot stay.
func TestBackupRetention(t *testing.T) {
	d := fixture(t)
	target := t.TempDir()
	var sets []string
	var lastOut string
	for i, args := range [][]string{{}, {"-M", "before upgrade"}, {}, {"--lang", "de"}} {
		code, out, errOut := cli(context.Background(), append(append([]string{"backup", "-k", "2", "-t", "tgz", "--source-disk", d.Path}, args...), target)...)
		if code != 0 {
			t.Fatalf("backup %d = exit %d: %s", i, code, errOut)
		}
		lastOut = out
		got := setDirs(t, target)
		for _, s := range got {
			if !slices.Contains(sets, s) {
				sets = append(sets, s)
			}
		}
	}
	if len(sets) != 4 {
		t.Fatalf("made sets %q; want 4", sets)
	}
	want := []string{sets[1], sets[2], sets[3]}
	got := setDirs(t, target)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("sets after four backups with -k 2: %q; want %q (newest two and the -M snapshot)", got, want)
	}
	if !strings.HasSuffix(sets[1], "_before_upgrade") {
		t.Errorf("second set %s is not the snapshot", sets[1])
	}
	if !strings.Contains(lastOut, "Sicherung fertig: ") || !strings.Contains(lastOut, "Aufbewahrung: Sätze gelöscht 1, behalten 3") {
		t.Errorf("German result lines:\n%s", lastOut)
	}
}

// smtpSink is a minimal SMTP server on 127.0.0.1 that stores each mail.
type smtpSink struct {
	ln    net.Listener
	mu    sync.Mutex
	mails []*mail.Message
}

func newSMTPSink(t *testing.T) *smtpSink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpSink{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s
}

func (s *smtpSink) port() int { return s.ln.Addr().(*net.TCPAddr).Port }

func (s *smtpSink) serve(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	say := func(l string) { io.WriteString(c, l+"\r\n") }
	say("220 sink ESMTP")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		verb := strings.ToUpper(strings.Fields(line + " x")[0])
		switch verb {
		case "EHLO", "HELO":
			say("250-sink")
			say("250 8BITMIME")
		case "DATA":
			say("354 go ahead")
			var b bytes.Buffer
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				b.WriteString(strings.TrimPrefix(l, "."))
			}
			if m, err := mail.ReadMessage(&b); err == nil {
				s.mu.Lock()
				s.mails = append(s.mails, m)
				s.mu.Unlock()
			}
			say("250 queued")
		case "QUIT":
			say("221 bye")
			return
		default:
			say("250 ok")
		}
	}
}

func (s *smtpSink) got() []*mail.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.mails)
}

// TestBackupMailOnFailureOnly: with email.on-error-only a good run sends
// nothing and a failed one sends one mail.
func TestBackupMailOnFailureOnly(t *testing.T) {
	d := fixture(t)
	sink := newSMTPSink(t)
	conf := filepath.Join(t.TempDir(), "mail.conf")
	err := os.WriteFile(conf, []byte(fmt.Sprintf(`email.to = ["admin@example.org"]
email.from = "pi@example.org"
email.on-error-only = true
smtp.host = "127.0.0.1"
smtp.port = %d
smtp.security = "none"
hooks.dir = ""
`, sink.port())), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	target := t.TempDir()
	if code, _, errOut := cli(context.Background(), "backup", "-f", conf, "-t", "tgz", "--source-disk", d.Path, target); code != 0 {
		t.Fatalf("backup = exit %d: %s", code, errOut)
	}
	if n := len(sink.got()); n != 0 {
		t.Errorf("good run sent %d mails; want none (on-error-only)", n)
	}
	for _, lang := range []string{"en", "de"} {
		code, _, errOut := cli(context.Background(), "backup", "-f", conf, "--lang", lang, "--hook-pre-backup", "/bin/sh -c 'echo no dump >&2; exit 1'",
			"-t", "tgz", "--source-disk", d.Path, target)
		if code != exitPreflight {
			t.Fatalf("backup with failing hook = exit %d: %s", code, errOut)
		}
	}
	mails := sink.got()
	if len(mails) != 2 {
		t.Fatalf("two failed runs sent %d mails; want 2", len(mails))
	}
	dec := new(mime.WordDecoder)
	for i, want := range []string{"backupctl: backup of testpi FAILED", "backupctl: Sicherung von testpi FEHLGESCHLAGEN"} {
		subj, err := dec.DecodeHeader(mails[i].Header.Get("Subject"))
		if err != nil || subj != want {
			t.Errorf("mail %d subject %q (%v); want %q", i, subj, err, want)
		}
		body, _ := io.ReadAll(mails[i].Body)
		if !strings.Contains(string(body), "no dump") {
			t.Errorf("mail %d body lacks the hook's output:\n%s", i, body)
		}
	}
}

// cliCmd runs one command that commands.go may not list yet, the way run
// does (exit codes, one error line).
func cliCmd(ctx context.Context, mk func(*app) *cobra.Command, args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	a := &app{stdin: strings.NewReader(""), stdout: &o, stderr: &e,
		log: slog.New(slog.NewTextHandler(&e, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	cmd := mk(a)
	cmd.SetArgs(args)
	cmd.SetOut(&o)
	cmd.SetErr(&e)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.ExecuteContext(ctx)
	if err == nil {
		return exitOK, o.String(), e.String()
	}
	fmt.Fprintf(&e, "backupctl: %s\n", err)
	return exitCode(err), o.String(), e.String()
}

// TestStatus: the last run and its result, sets per type, and the
// restore-test reminder with its record.
func TestStatus(t *testing.T) {
	d := fixture(t)
	target := t.TempDir()
	set := backupOK(t, target, "-t", "tgz", "--hooks-dir", "", "--source-disk", d.Path)
	status := func(args ...string) string {
		t.Helper()
		code, out, errOut := cliCmd(context.Background(), (*app).newStatusCmd, append(args, target)...)
		if code != 0 {
			t.Fatalf("status %q = exit %d: %s", args, code, errOut)
		}
		return out
	}
	out := status("--lang", "en")
	t.Logf("status:\n%s", out)
	for _, want := range []string{"host testpi", "result:        ok, " + filepath.Base(set), "sets:          tgz 1, ", "REMINDER: no test restore recorded", "next timer run: "} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}

	code, _, _ := cli(context.Background(), "backup", "-t", "tgz", "--hooks-dir", "", "--hook-pre-backup", "/bin/false", "--source-disk", d.Path, target)
	if code != exitPreflight {
		t.Fatalf("failing backup = exit %d", code)
	}
	out = status("--lang", "de")
	for _, want := range []string{"Rechner testpi", "Ergebnis:      FEHLGESCHLAGEN: ", "/bin/false", "Sätze:         tgz 1, ", "ERINNERUNG: keine Probe-Wiederherstellung"} {
		if !strings.Contains(out, want) {
			t.Errorf("German status after a failed run lacks %q:\n%s", want, out)
		}
	}

	out = status("--lang", "en", "--record-restore-test", set)
	if !strings.Contains(out, "recorded a test restore of "+filepath.Base(set)) || !strings.Contains(out, "last test restore: ") || strings.Contains(out, "REMINDER") {
		t.Errorf("status after recording a test restore:\n%s", out)
	}
	// Seven months later the reminder is back.
	hostDir := filepath.Join(target, "testpi")
	if err := updateHostState(hostDir, func(s *backupset.State) { s.LastRestoreTest.Time = time.Now().AddDate(0, -7, 0) }); err != nil {
		t.Fatal(err)
	}
	if out := status("--lang", "en"); !strings.Contains(out, "more than 6 months ago") {
		t.Errorf("status with a test restore 7 months ago lacks the reminder:\n%s", out)
	}
	if out := status("--lang", "en", "--remind-months", "12"); strings.Contains(out, "REMINDER") {
		t.Errorf("--remind-months 12 still reminds:\n%s", out)
	}
	// The same two settings from a config file.
	conf := filepath.Join(t.TempDir(), "status.conf")
	if err := os.WriteFile(conf, []byte("lang = \"de\"\n[restore-test]\nremind-months = 12\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := status("-f", conf); !strings.Contains(out, "Rechner testpi") || strings.Contains(out, "ERINNERUNG") {
		t.Errorf("status with lang = \"de\" and remind-months = 12 in a file:\n%s", out)
	}
}

func TestSystemdQuote(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"/mnt/backup", "/mnt/backup"},
		{"-k", "-k"},
		{"--exclude=/home/*/.cache", `"--exclude=/home/*/.cache"`},
		{"before upgrade", `"before upgrade"`},
		{`say "hi"\now`, `"say \"hi\"\\now"`},
		{"50%", `"50%%"`},
		{"$HOME", `"$$HOME"`},
		{"", `""`},
	} {
		if got := systemdQuote(tt.in); got != tt.want {
			t.Errorf("systemdQuote(%q) = %s; want %s", tt.in, got, tt.want)
		}
	}
}

// TestScheduleInstallRemove installs the units under --root, checks them
// with systemd-analyze verify when it is there, and removes them.
func TestScheduleInstallRemove(t *testing.T) {
	root := t.TempDir()
	bin, err := os.Executable() // any absolute executable; verify checks it exists
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut := cliCmd(context.Background(), (*app).newScheduleCmd, "install", "--root", root, "--binary", bin,
		"--on-calendar", "Sun *-*-* 05:00", "--restore-test", "weekly", "--", "-t", "tgz", "-M", "weekly run", "-k", "4", "/mnt/backup")
	if code != 0 {
		t.Fatalf("schedule install = exit %d: %s", code, errOut)
	}
	t.Log(strings.TrimSpace(out))
	dir := filepath.Join(root, unitDir)
	service, err := os.ReadFile(filepath.Join(dir, serviceUnit))
	if err != nil {
		t.Fatal(err)
	}
	timer, err := os.ReadFile(filepath.Join(dir, timerUnit))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"\nExecStart=" + bin + ` backup -t tgz -M "weekly run" -k 4 /mnt/backup` + "\n",
		"\nExecStopPost=" + bin + " recover-services\n",
	} {
		if !strings.Contains(string(service), want) {
			t.Errorf("service lacks %q:\n%s", want, service)
		}
	}
	if !strings.Contains(string(timer), "\nOnCalendar=Sun *-*-* 05:00\n") {
		t.Errorf("timer:\n%s", timer)
	}
	testService, err := os.ReadFile(filepath.Join(dir, testServiceUnit))
	if err != nil {
		t.Fatal(err)
	}
	testTimer, err := os.ReadFile(filepath.Join(dir, testTimerUnit))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(testService), "\nExecStart="+bin+" restore-test /mnt/backup\n") || !strings.Contains(string(testTimer), "\nOnCalendar=weekly\n") {
		t.Errorf("restore-test units:\n%s\n%s", testService, testTimer)
	}
	if _, err := exec.LookPath("systemd-analyze"); err == nil {
		out, err := exec.Command("systemd-analyze", "verify", filepath.Join(dir, serviceUnit), filepath.Join(dir, timerUnit),
			filepath.Join(dir, testServiceUnit), filepath.Join(dir, testTimerUnit)).CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		}
	} else {
		t.Log("no systemd-analyze: units not verified")
	}

	// A calendar systemd cannot parse is refused before anything is written.
	if _, err := exec.LookPath("systemd-analyze"); err == nil {
		code, _, errOut = cliCmd(context.Background(), (*app).newScheduleCmd, "install", "--root", t.TempDir(), "--binary", bin, "--on-calendar", "every full moon")
		if code != exitUsage || !strings.Contains(errOut, "every full moon") {
			t.Errorf("bad --on-calendar = exit %d, %q; want %d", code, errOut, exitUsage)
		}
	}
	code, _, errOut = cliCmd(context.Background(), (*app).newScheduleCmd, "frobnicate")
	if code == 0 || !strings.Contains(errOut, "install or remove") {
		t.Errorf("schedule frobnicate = exit %d, %q", code, errOut)
	}

	code, _, errOut = cliCmd(context.Background(), (*app).newScheduleCmd, "remove", "--root", root)
	if code != 0 {
		t.Fatalf("schedule remove = exit %d: %s", code, errOut)
	}
	for _, u := range []string{serviceUnit, timerUnit, testServiceUnit, testTimerUnit} {
		if _, err := os.Stat(filepath.Join(dir, u)); !os.IsNotExist(err) {
			t.Errorf("%s still there after remove: %v", u, err)
		}
	}
	if code, _, errOut := cliCmd(context.Background(), (*app).newScheduleCmd, "remove", "--root", root); code != 0 {
		t.Errorf("second remove = exit %d (%s); want 0, remove is idempotent", code, errOut)
	}
}

// TestScheduleTemplatesFollowPackaging: every directive of the packaged
// units is in the templates, so the two cannot drift apart silently.
func TestScheduleTemplatesFollowPackaging(t *testing.T) {
	service, timer, err := renderUnits("/usr/local/bin/backupctl", nil, config.Defaults().ScheduleOnCalendar)
	if err != nil {
		t.Fatal(err)
	}
	for file, rendered := range map[string]string{"backupctl.service": service, "backupctl.timer": timer} {
		b, err := os.ReadFile(filepath.Join("..", "packaging", "systemd", file))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(rendered, "\n")
		for _, l := range strings.Split(string(b), "\n") {
			l = strings.TrimSpace(l)
			if l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, "Description=") {
				continue
			}
			if !slices.Contains(lines, l) {
				t.Errorf("%s has %q; the template of schedule install does not", file, l)
			}
		}
	}
}

// TestBackupServiceStopFails: a service that does not stop aborts the run
// before anything is written; post-backup still runs (it may have to undo
// pre-backup) and sees the exit code.
func TestBackupServiceStopFails(t *testing.T) {
	d := fixture(t)
	e := newOpsEnv(t, "")
	target := t.TempDir()
	// The flags replace the file's commands.
	code, _, errOut := cli(context.Background(), "backup", "-f", e.config, "--run-dir", t.TempDir(),
		"--stop-command", "/bin/sh -c 'echo cannot stop >&2; exit 1'", "--start-command", "/bin/true",
		"-t", "tgz", "--source-disk", d.Path, target)
	if code != exitPreflight || !strings.Contains(errOut, "nothing was written") || !strings.Contains(errOut, "cannot stop") {
		t.Errorf("backup with a service that does not stop = exit %d, %q; want %d", code, errOut, exitPreflight)
	}
	if e.env(t, "ready") != nil {
		t.Error("ready hook ran although a service did not stop")
	}
	if rc := e.env(t, "post-backup")["BACKUP_RC"]; rc != strconv.Itoa(exitPreflight) {
		t.Errorf("post-backup BACKUP_RC=%q; want %d", rc, exitPreflight)
	}
	if sets := setDirs(t, target); len(sets) != 0 {
		t.Errorf("sets: %q", sets)
	}
	checkNoPartialSet(t, target)
}
