// Package respawn keeps the recovery program running. The recovery runs
// as u-root's uinit, and u-root's init ends (and the kernel panics with
// "Attempted to kill init") when its uinit and shells exit: a panic in any
// goroutine of the recovery, which no recover() in main can catch, used to
// take the whole machine down. Supervise runs the program as a child
// instead and, whenever the child dies for any reason (a panic, a runtime
// fatal error, a signal, an exit), it
//
//   - kills whatever the child left running (a shell, a tar writing the
//     target): they would fight the new child for the console and the
//     disks;
//   - keeps the child's stderr, where Go writes the panic and its
//     goroutine stacks, in a crash report file;
//   - announces one RECOVERY-RESTART line (Exit.Line) on the console;
//   - starts the child again, at once the first time and with a growing
//     delay while it keeps dying young.
//
// A deliberate power-off or reboot is never seen here: the child calls
// reboot(2) itself and the machine stops.
package respawn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The environment a child gets (Run.Env), so it knows it was restarted
// and can say why.
const (
	EnvRestarts = "PIBACKUP_RESPAWN_N"
	EnvReason   = "PIBACKUP_RESPAWN_REASON"
	EnvReport   = "PIBACKUP_RESPAWN_REPORT"
	EnvMessage  = "PIBACKUP_RESPAWN_MESSAGE"
)

// Config says what to run and where to report.
type Config struct {
	// Command makes the child for one run. Supervise sets its Stderr
	// (and its Stdout when nil) to a pipe it reads and adds Run.Env to
	// its environment; Stdin stays as made.
	Command func(r Run) *exec.Cmd
	// Console receives the child's stderr as it comes (with \r\n line
	// ends: the UI may have left the tty raw). May be nil.
	Console io.Writer
	// Announce writes one line where a person and a test see it (the
	// recovery: kernel log and every console).
	Announce func(line string)
	// ReportDir holds the crash reports, recovery-crash-<n>.txt; the
	// newest KeepReports are kept.
	ReportDir   string
	KeepReports int // 0 means 5
	// ProcDir is /proc (a field for tests).
	ProcDir string
	// Backoff is the delay before a restart after fast consecutive young
	// runs; nil means the package's Backoff.
	Backoff func(fast int) time.Duration
	Log     *slog.Logger
}

// Run is one start of the child.
type Run struct {
	N    int   // how many restarts came before: 0 on the first start
	Last *Exit // why the previous run ended; nil on the first start
}

// Env is the environment that tells the child about r.
func (r Run) Env() []string {
	env := []string{EnvRestarts + "=" + strconv.Itoa(r.N)}
	if r.Last != nil {
		env = append(env, EnvReason+"="+r.Last.Reason, EnvReport+"="+r.Last.Report, EnvMessage+"="+r.Last.Message)
	}
	return env
}

// FromEnv is the Run a child was started as; ok is false when the
// process was not started by Supervise.
func FromEnv(getenv func(string) string) (r Run, ok bool) {
	n, err := strconv.Atoi(getenv(EnvRestarts))
	if err != nil {
		return Run{}, false
	}
	r.N = n
	if n > 0 {
		r.Last = &Exit{N: n, Reason: getenv(EnvReason), Report: getenv(EnvReport), Message: getenv(EnvMessage)}
	}
	return r, true
}

// Exit says how a run ended.
type Exit struct {
	N       int           // the restart this exit causes (1 for the first)
	Reason  string        // panic, fatal-error, SIGKILL (a signal), SIGQUIT (Go's dump on SIGQUIT), exit-<code>
	Message string        // the panic or fatal error message, "" for none
	Uptime  time.Duration // how long the run lasted
	Report  string        // the crash report file, "" if it could not be written
}

// What says in a few words how the run ended: "panic: boom", "SIGKILL",
// "exit-3".
func (e Exit) What() string {
	if e.Message != "" {
		return e.Reason + ": " + e.Message
	}
	return e.Reason
}

// Line is the console line of a restart, stable for tests and people:
//
//	RECOVERY-RESTART n=1 reason=panic uptime=12.3s report=/tmp/recovery-crash-1.txt message="boom"
//
// message is Go-quoted and last, and only there when there is one.
func (e Exit) Line() string {
	report := e.Report
	if report == "" {
		report = "none"
	}
	s := fmt.Sprintf("RECOVERY-RESTART n=%d reason=%s uptime=%.1fs report=%s", e.N, e.Reason, e.Uptime.Seconds(), report)
	if e.Message != "" {
		s += " message=" + strconv.Quote(e.Message)
	}
	return s
}

// Supervise runs the child until ctx is done, restarting it whenever it
// ends. It returns ctx's error, or an error when the child cannot be
// started at all (the caller has nothing else to run and should say so
// and retry or fall back to a shell).
func Supervise(ctx context.Context, c Config) error {
	c.fill()
	// Orphans of the child (its shell, a tar it started) become our
	// children, so cleanup can find and kill them. PID 1 gets them anyway.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		c.Log.Warn("respawn: no subreaper; leftovers of a dead child are not cleaned up", "err", err)
	}
	run := Run{}
	fast := 0 // consecutive runs that died young
	for {
		exit, err := c.runOnce(ctx, run)
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c.Announce(exit.Line())
		c.Log.Warn("respawn: child ended", "n", exit.N, "reason", exit.Reason, "uptime", exit.Uptime, "report", exit.Report)
		if exit.Uptime < youngRun {
			fast++
		} else {
			fast = 0
		}
		if d := c.Backoff(fast); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
		run = Run{N: exit.N, Last: &exit}
	}
}

// youngRun is how long a run must last for its death to count as a
// crash rather than a crash loop.
const youngRun = 10 * time.Second

// Backoff is the delay before the next start after fast consecutive runs
// that lasted less than youngRun: none after a run that lasted nor after
// the first young one (a crash soon after boot must not keep the UI away),
// then 1 s, 2 s, 4 s, ... up to 30 s, so a recovery that crashes at every
// start does not flood the console yet comes back by itself.
func Backoff(fast int) time.Duration {
	if fast <= 1 {
		return 0
	}
	if fast > 7 {
		return 30 * time.Second
	}
	return min(time.Second<<(fast-2), 30*time.Second)
}

func (c *Config) fill() {
	if c.ProcDir == "" {
		c.ProcDir = "/proc"
	}
	if c.KeepReports == 0 {
		c.KeepReports = 5
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Backoff == nil {
		c.Backoff = Backoff
	}
	if c.Announce == nil {
		c.Announce = func(string) {}
	}
}

// runOnce starts the child for r, waits for it to end, cleans up after
// it and writes the crash report.
func (c *Config) runOnce(ctx context.Context, r Run) (Exit, error) {
	cmd := c.Command(r)
	cmd.Env = append(cmd.Environ(), r.Env()...)
	// A pipe of our own rather than an io.Writer in cmd.Stderr: exec
	// would then copy in a goroutine that Wait waits for, and a leftover
	// grandchild holding the pipe would hold up Wait.
	pr, pw, err := os.Pipe()
	if err != nil {
		return Exit{}, fmt.Errorf("respawn: stderr pipe: %w", err)
	}
	cmd.Stderr = pw
	if cmd.Stdout == nil {
		cmd.Stdout = pw
	}
	start := time.Now()
	err = cmd.Start()
	pw.Close()
	if err != nil {
		pr.Close()
		return Exit{}, fmt.Errorf("respawn: start %s: %w", cmd.Path, err)
	}
	capt := newCapture(c.Console)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		_, _ = io.Copy(capt, pr)
	}()
	stop := context.AfterFunc(ctx, func() { _ = cmd.Process.Kill() })
	werr := cmd.Wait()
	stop()
	uptime := time.Since(start)
	if n := c.killLeftovers(); n > 0 {
		c.Log.Info("respawn: killed what the child left running", "processes", n)
	}
	// The leftovers are gone, so the pipe reaches EOF now; a process that
	// escaped (started its own session and was re-parented past us) must
	// not keep us from restarting.
	select {
	case <-copied:
	case <-time.After(2 * time.Second):
	}
	pr.Close()
	if ctx.Err() != nil {
		return Exit{}, nil
	}
	var ee *exec.ExitError
	if werr != nil && !errors.As(werr, &ee) {
		return Exit{}, fmt.Errorf("respawn: wait for %s: %w", cmd.Path, werr)
	}
	out, dropped := capt.Bytes(), capt.Dropped()
	exit := Exit{N: r.N + 1, Uptime: uptime}
	exit.Reason, exit.Message = Classify(cmd.ProcessState.Sys().(syscall.WaitStatus), out)
	exit.Report, err = c.writeReport(exit, cmd.ProcessState.String(), out, dropped)
	if err != nil {
		c.Log.Warn("respawn: crash report", "err", err)
	}
	return exit, nil
}

// marker finds the line where Go says why a program died: a panic, a
// runtime fatal error ("fatal error: concurrent map writes"), or a
// signal it dumps its goroutines for ("SIGQUIT: quit").
var marker = regexp.MustCompile(`(?m)^(panic|fatal error|SIG[A-Z0-9]+): (.*)$`)

// Classify names why a child ended from its wait status and its stderr.
func Classify(ws syscall.WaitStatus, stderr []byte) (reason, message string) {
	if ws.Signaled() {
		return unix.SignalName(ws.Signal()), ""
	}
	code := ws.ExitStatus()
	if code == 2 { // Go's exit status for panics, fatal errors and signal dumps
		if m := marker.FindSubmatch(stderr); m != nil {
			msg := strings.TrimSpace(string(m[2]))
			if len(msg) > 200 {
				msg = msg[:200] + "..."
			}
			switch kind := string(m[1]); kind {
			case "panic":
				return "panic", msg
			case "fatal error":
				return "fatal-error", msg
			default:
				return kind, msg
			}
		}
	}
	return "exit-" + strconv.Itoa(code), ""
}

// writeReport writes the crash report of exit and removes older ones
// beyond KeepReports.
func (c *Config) writeReport(exit Exit, status string, out []byte, dropped int64) (string, error) {
	if c.ReportDir == "" {
		return "", nil
	}
	if err := os.MkdirAll(c.ReportDir, 0o755); err != nil {
		return "", fmt.Errorf("create report dir: %w", err)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "recovery crash report %d\ntime: %s\nreason: %s\nstatus: %s\nuptime: %s\n",
		exit.N, time.Now().UTC().Format(time.RFC3339), exit.Reason, status, exit.Uptime.Round(time.Millisecond))
	if dropped > 0 {
		fmt.Fprintf(&b, "(%d bytes of stderr in the middle left out)\n", dropped)
	}
	b.WriteString("--- stderr ---\n")
	b.Write(out)
	p := filepath.Join(c.ReportDir, fmt.Sprintf("recovery-crash-%d.txt", exit.N))
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		return "", fmt.Errorf("write crash report: %w", err)
	}
	if old := exit.N - c.KeepReports; old > 0 {
		_ = os.Remove(filepath.Join(c.ReportDir, fmt.Sprintf("recovery-crash-%d.txt", old)))
	}
	return p, nil
}

// killLeftovers kills every child of this process (the supervised child
// is already dead and reaped, so each one is something it left behind,
// re-parented to us) and reaps them, until none is left: a leftover that
// forks just before its death leaves a new orphan. It returns how many it
// killed.
func (c *Config) killLeftovers() int {
	killed := 0
	self := os.Getpid()
	for round := 0; round < 20; round++ {
		kids, err := children(c.ProcDir, self)
		if err != nil {
			c.Log.Warn("respawn: list leftovers", "err", err)
			return killed
		}
		if len(kids) == 0 {
			return killed
		}
		for _, pid := range kids {
			if err := unix.Kill(pid, unix.SIGKILL); err == nil {
				killed++
			}
		}
		for _, pid := range kids {
			var ws unix.WaitStatus
			_, _ = unix.Wait4(pid, &ws, 0, nil)
		}
	}
	return killed
}

// children lists the processes whose parent is ppid.
func children(procDir string, ppid int) ([]int, error) {
	ents, err := os.ReadDir(procDir)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", procDir, err)
	}
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(procDir, e.Name(), "stat"))
		if err != nil {
			continue // gone meanwhile
		}
		if p, err := ParentPID(b); err == nil && p == ppid {
			out = append(out, pid)
		}
	}
	return out, nil
}

// ParentPID reads the parent's PID out of a /proc/<pid>/stat line:
// "pid (comm) state ppid ...". comm may hold spaces and parentheses, so
// the fields are counted from the last ')'.
func ParentPID(stat []byte) (int, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("stat %q: no (comm)", stat)
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 2 {
		return 0, fmt.Errorf("stat %q: too short", stat)
	}
	p, err := strconv.Atoi(f[1])
	if err != nil {
		return 0, fmt.Errorf("stat %q: ppid: %w", stat, err)
	}
	return p, nil
}

// capture keeps the first and the last headMax/tailMax bytes of a run's
// stderr (a panic is at the end, its first line may follow a lot of
// output; Go prints the failing goroutine first, so a huge dump keeps its
// head) and copies everything to the console.
type capture struct {
	console io.Writer

	mu      sync.Mutex // the copy may still run when runOnce reads
	head    []byte
	tail    []byte
	dropped int64
}

const (
	headMax = 64 << 10
	tailMax = 64 << 10
)

func newCapture(console io.Writer) *capture { return &capture{console: console} }

func (c *capture) Write(p []byte) (int, error) {
	if c.console != nil {
		// The console may still be in the raw mode the UI left it in,
		// where \n only moves down a line.
		_, _ = c.console.Write(bytes.ReplaceAll(p, []byte("\n"), []byte("\r\n")))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	rest := p
	if n := min(headMax-len(c.head), len(rest)); n > 0 {
		c.head = append(c.head, rest[:n]...)
		rest = rest[n:]
	}
	c.tail = append(c.tail, rest...)
	if over := len(c.tail) - tailMax; over > 0 {
		c.dropped += int64(over)
		c.tail = append(c.tail[:0], c.tail[over:]...)
	}
	return len(p), nil
}

// Dropped is how many bytes were left out between head and tail.
func (c *capture) Dropped() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dropped
}

// Bytes is what was kept, head then tail.
func (c *capture) Bytes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append(append([]byte(nil), c.head...), c.tail...)
}
