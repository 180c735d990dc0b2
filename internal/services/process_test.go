package services

// These tests use real processes: the "service" is a sleep process that
// this test binary starts and stops when re-executed as
// `services.test svc-helper start|stop PIDFILE` (see TestMain). Run
// drives it through Commands and ExecRunner exactly as it would drive a
// user's stop/start commands, and the tests check the process table, not
// a fake's call list.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	if len(os.Args) == 4 && os.Args[1] == "svc-helper" {
		if err := svcHelper(os.Args[2], os.Args[3]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// svcHelper is the init-script of the fake service.
func svcHelper(verb, pidFile string) error {
	switch verb {
	case "start":
		if pid, ok := readPID(pidFile); ok && alive(pid) {
			return nil // already running, like systemctl start
		}
		cmd := exec.Command("sleep", "300")
		// Own session: the service outlives this helper, as a daemon does.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			return err
		}
		return os.WriteFile(pidFile, []byte(strconv.Itoa(cmd.Process.Pid)), 0o644)
	case "stop":
		pid, ok := readPID(pidFile)
		if !ok {
			return nil
		}
		_ = syscall.Kill(pid, syscall.SIGTERM)
		for i := 0; i < 200 && alive(pid); i++ {
			time.Sleep(10 * time.Millisecond)
		}
		if alive(pid) {
			return fmt.Errorf("pid %d did not stop", pid)
		}
		return os.Remove(pidFile)
	}
	return fmt.Errorf("unknown verb %q", verb)
}

func readPID(file string) (int, bool) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid, err == nil
}

// alive reports whether pid runs; a zombie (orphans may not be reaped
// quickly in a container) counts as dead.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the ")" that closes the command name.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return false
	}
	st := s[i+2]
	return st != 'Z' && st != 'X'
}

func TestRealProcessRestarted(t *testing.T) {
	if _, err := exec.LookPath("sleep"); err != nil {
		t.Skip("no sleep binary")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	errBackup := errors.New("backup failed")
	cases := []struct {
		name string
		fn   func(ctx context.Context, cancel func()) error
		want error // or "panic"
	}{
		{"after error", func(context.Context, func()) error { return errBackup }, errBackup},
		{"after ctx cancel", func(ctx context.Context, cancel func()) error {
			cancel()
			<-ctx.Done()
			return ctx.Err()
		}, context.Canceled},
		{"after panic", func(context.Context, func()) error { panic("backup panicked") }, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pidFile := filepath.Join(t.TempDir(), "svc.pid")
			helper := func(verb string) []string { return []string{exe, "svc-helper", verb, pidFile} }
			if err := svcHelper("start", pidFile); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = svcHelper("stop", pidFile) })
			before, _ := readPID(pidFile)

			svc := Commands{Label: "sleep service", StopCmds: [][]string{helper("stop")},
				StartCmds: [][]string{helper("start")}, Runner: ExecRunner{WaitDelay: time.Second}}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var err error
			panicked := func() (p any) {
				defer func() { p = recover() }()
				err = Run(ctx, Options{StartTimeout: 30 * time.Second}, []Stopper{svc}, func(ctx context.Context) error {
					if alive(before) {
						t.Errorf("service pid %d still runs during the backup", before)
					}
					return tc.fn(ctx, cancel)
				})
				return nil
			}()
			if tc.want == nil {
				if panicked == nil {
					t.Error("panic was swallowed")
				}
			} else if !errors.Is(err, tc.want) {
				t.Errorf("Run = %v, want %v", err, tc.want)
			}
			after, ok := readPID(pidFile)
			if !ok || !alive(after) {
				t.Fatalf("service not running after Run (pid file ok=%v, pid %d)", ok, after)
			}
			if after == before {
				t.Errorf("pid %d unchanged: the service was never restarted", after)
			}
		})
	}
}
