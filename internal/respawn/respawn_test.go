package respawn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The children are this test binary, started again with envChild set to
// what it should do (the usual re-exec helper process): real processes
// that really panic in a goroutine, die of SIGKILL or leave a process
// behind.
const (
	envChild = "RESPAWN_TEST_CHILD"
	envDir   = "RESPAWN_TEST_DIR"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(envChild); mode != "" {
		child(mode)
		return
	}
	os.Exit(m.Run())
}

// child runs as one supervised process: it notes the Run it was started
// as in run-<n>.txt, then does mode.
func child(mode string) {
	dir := os.Getenv(envDir)
	if mode == "sleep" { // a grandchild left behind
		os.WriteFile(filepath.Join(dir, "grandchild.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644)
		time.Sleep(time.Hour) // a timer, so Go sees no deadlock
	}
	r, ok := FromEnv(os.Getenv)
	note := fmt.Sprintf("ok=%v n=%d", ok, r.N)
	if r.Last != nil {
		note += fmt.Sprintf(" reason=%s message=%s report=%s", r.Last.Reason, r.Last.Message, r.Last.Report)
	}
	os.WriteFile(filepath.Join(dir, fmt.Sprintf("run-%d.txt", r.N)), []byte(note), 0o644)
	switch mode {
	case "panic":
		// In a goroutine, where no recover() in main helps.
		go func() { panic("test panic in a goroutine") }()
		time.Sleep(time.Hour) // a timer, so Go sees no deadlock
	case "sigkill":
		unix.Kill(os.Getpid(), unix.SIGKILL)
		time.Sleep(time.Hour) // a timer, so Go sees no deadlock
	case "fatal":
		m := map[int]int{}
		var wg sync.WaitGroup
		for i := 0; i < 4; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := 0; ; j++ {
					m[j%64] = j // concurrent map writes: a runtime fatal error
				}
			}()
		}
		wg.Wait()
	case "exit3":
		os.Exit(3)
	case "leftover":
		gc := exec.Command(os.Args[0])
		gc.Env = append(os.Environ(), envChild+"=sleep")
		gc.Stderr = os.Stderr // holds the supervisor's pipe open
		if err := gc.Start(); err != nil {
			panic(err)
		}
		for {
			if _, err := os.Stat(filepath.Join(dir, "grandchild.pid")); err == nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		go func() { panic("after starting a grandchild") }()
		time.Sleep(time.Hour) // a timer, so Go sees no deadlock
	case "block":
		time.Sleep(time.Hour) // a timer, so Go sees no deadlock
	}
}

// TestSupervise runs a child that dies five different ways, one after the
// other, and checks the RECOVERY-RESTART lines, the crash reports, what
// each restarted child is told, and that a grandchild the dead child left
// is killed.
func TestSupervise(t *testing.T) {
	dir := t.TempDir()
	reports := filepath.Join(dir, "reports")
	modes := []string{"panic", "sigkill", "fatal", "exit3", "leftover", "block"}
	var (
		mu    sync.Mutex
		lines []string
	)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var console bytes.Buffer
	var consoleMu sync.Mutex
	cfg := Config{
		Command: func(r Run) *exec.Cmd {
			cmd := exec.Command(os.Args[0])
			cmd.Env = append(os.Environ(), envChild+"="+modes[r.N], envDir+"="+dir)
			return cmd
		},
		Console: writerFunc(func(p []byte) (int, error) {
			consoleMu.Lock()
			defer consoleMu.Unlock()
			return console.Write(p)
		}),
		Announce: func(line string) {
			mu.Lock()
			lines = append(lines, line)
			if len(lines) == len(modes)-1 {
				// The last child blocks: stop once it runs.
				go func() {
					for ctx.Err() == nil {
						if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("run-%d.txt", len(modes)-1))); err == nil {
							cancel()
							return
						}
						time.Sleep(10 * time.Millisecond)
					}
				}()
			}
			mu.Unlock()
		},
		ReportDir:   reports,
		KeepReports: 3,
		Backoff:     func(int) time.Duration { return 0 },
	}
	start := time.Now()
	if err := Supervise(ctx, cfg); !errors.Is(err, context.Canceled) {
		t.Fatalf("Supervise = %v; want context.Canceled (lines so far: %q)", err, lines)
	}
	t.Logf("%d runs in %s", len(modes), time.Since(start).Round(time.Millisecond))

	want := []*regexp.Regexp{
		regexp.MustCompile(`^RECOVERY-RESTART n=1 reason=panic uptime=\d+\.\ds report=\S+/recovery-crash-1\.txt message="test panic in a goroutine"$`),
		regexp.MustCompile(`^RECOVERY-RESTART n=2 reason=SIGKILL uptime=\d+\.\ds report=\S+/recovery-crash-2\.txt$`),
		regexp.MustCompile(`^RECOVERY-RESTART n=3 reason=fatal-error uptime=\d+\.\ds report=\S+ message="concurrent map writes"$`),
		regexp.MustCompile(`^RECOVERY-RESTART n=4 reason=exit-3 uptime=\d+\.\ds report=\S+$`),
		regexp.MustCompile(`^RECOVERY-RESTART n=5 reason=panic uptime=\d+\.\ds report=\S+ message="after starting a grandchild"$`),
	}
	if len(lines) != len(want) {
		t.Fatalf("announced %d lines; want %d:\n%s", len(lines), len(want), strings.Join(lines, "\n"))
	}
	for i, re := range want {
		if !re.MatchString(lines[i]) {
			t.Errorf("line %d = %q; want %s", i+1, lines[i], re)
		}
	}

	// Each restarted child is told why the one before it ended.
	for n, wantNote := range map[int]string{
		0: "ok=true n=0",
		1: "ok=true n=1 reason=panic message=test panic in a goroutine report=" + filepath.Join(reports, "recovery-crash-1.txt"),
		2: "ok=true n=2 reason=SIGKILL message= report=" + filepath.Join(reports, "recovery-crash-2.txt"),
	} {
		b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("run-%d.txt", n)))
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != wantNote {
			t.Errorf("run %d was told %q; want %q", n, b, wantNote)
		}
	}

	// Only the newest KeepReports reports are kept; the panic's report
	// holds Go's stack of the goroutine that panicked.
	names, _ := filepath.Glob(filepath.Join(reports, "*"))
	var got []string
	for _, n := range names {
		got = append(got, filepath.Base(n))
	}
	if strings.Join(got, " ") != "recovery-crash-3.txt recovery-crash-4.txt recovery-crash-5.txt" {
		t.Errorf("reports = %q; want crash-3..5", got)
	}
	rep, err := os.ReadFile(filepath.Join(reports, "recovery-crash-5.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"reason: panic\n", "status: exit status 2\n", "panic: after starting a grandchild", "goroutine "} {
		if !bytes.Contains(rep, []byte(s)) {
			t.Errorf("report 5 lacks %q:\n%s", s, rep)
		}
	}

	// The grandchild the fifth run left is gone (killed and reaped).
	b, err := os.ReadFile(filepath.Join(dir, "grandchild.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(string(b))
	if err := unix.Kill(pid, 0); !errors.Is(err, unix.ESRCH) {
		t.Errorf("grandchild %d still exists (kill 0: %v)", pid, err)
	}

	// The console got the panic text, with \r\n line ends.
	consoleMu.Lock()
	con := console.String()
	consoleMu.Unlock()
	if !strings.Contains(con, "panic: test panic in a goroutine\r\n") {
		t.Errorf("console lacks the panic line:\n%s", con)
	}
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestClassify(t *testing.T) {
	exited := func(code int) syscall.WaitStatus { return syscall.WaitStatus(code << 8) }
	for _, tc := range []struct {
		ws          syscall.WaitStatus
		stderr      string
		reason, msg string
	}{
		{syscall.WaitStatus(syscall.SIGKILL), "", "SIGKILL", ""},
		{syscall.WaitStatus(syscall.SIGSEGV), "panic: x\n", "SIGSEGV", ""},
		{exited(2), "some log\npanic: boom [recovered]\n\ngoroutine 7 [running]:\n", "panic", "boom [recovered]"},
		{exited(2), "fatal error: concurrent map writes\n\ngoroutine 1 [running]:\n", "fatal-error", "concurrent map writes"},
		{exited(2), "SIGQUIT: quit\nPC=0x4711 m=0 sigcode=128\n\ngoroutine 0 [idle]:\n", "SIGQUIT", "quit"},
		{exited(2), "usage: ...\n", "exit-2", ""},
		{exited(0), "panic: not a panic: exit status 0\n", "exit-0", ""},
		{exited(1), "", "exit-1", ""},
	} {
		reason, msg := Classify(tc.ws, []byte(tc.stderr))
		if reason != tc.reason || msg != tc.msg {
			t.Errorf("Classify(%#x, %q) = %q, %q; want %q, %q", uint32(tc.ws), tc.stderr, reason, msg, tc.reason, tc.msg)
		}
	}
}

func TestBackoff(t *testing.T) {
	for fast, want := range []time.Duration{0, 0, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second} {
		if got := Backoff(fast); got != want {
			t.Errorf("Backoff(%d) = %s; want %s", fast, got, want)
		}
	}
	if got := Backoff(1000); got != 30*time.Second {
		t.Errorf("Backoff(1000) = %s; want 30s", got)
	}
}

func TestParentPID(t *testing.T) {
	for _, tc := range []struct {
		stat string
		want int
	}{
		{"1234 (recovery) S 1 1234 1234 0 -1 4194560 ...", 1},
		{"77 (a (weird) name) R 42 77 77 0", 42},
		{"9 (sh) Z 0 0", 0},
	} {
		got, err := ParentPID([]byte(tc.stat))
		if err != nil || got != tc.want {
			t.Errorf("ParentPID(%q) = %d, %v; want %d", tc.stat, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "12 comm S 1", "12 (x) S"} {
		if _, err := ParentPID([]byte(bad)); err == nil {
			t.Errorf("ParentPID(%q) = nil error", bad)
		}
	}
}

func TestRunEnv(t *testing.T) {
	if _, ok := FromEnv(func(string) string { return "" }); ok {
		t.Error("FromEnv of an empty environment: ok")
	}
	r := Run{N: 2, Last: &Exit{N: 2, Reason: "panic", Message: "boom", Report: "/tmp/recovery-crash-2.txt"}}
	env := map[string]string{}
	for _, kv := range r.Env() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	got, ok := FromEnv(func(k string) string { return env[k] })
	if !ok || got.N != 2 || *got.Last != *r.Last {
		t.Errorf("FromEnv(Env()) = %+v %v, %v; want %+v", got, got.Last, ok, r)
	}
}

func TestExitLine(t *testing.T) {
	e := Exit{N: 3, Reason: "panic", Message: `say "hi"`, Uptime: 1234 * time.Millisecond}
	if got, want := e.Line(), `RECOVERY-RESTART n=3 reason=panic uptime=1.2s report=none message="say \"hi\""`; got != want {
		t.Errorf("Line() = %s; want %s", got, want)
	}
}
