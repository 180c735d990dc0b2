package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/pibackup/pibackup/internal/respawn"
	"github.com/pibackup/pibackup/internal/tui"
)

// crashDir holds the supervisor's crash reports, recovery-crash-<n>.txt.
const crashDir = "/tmp"

// supervise runs the recovery as a child of this process and restarts it
// whenever it dies, announcing a RECOVERY-RESTART line (respawn.Exit.Line)
// each time. It returns only when the child cannot be started at all;
// main then runs the recovery in this process, unsupervised, as before.
func supervise(sys *system) {
	log := slog.New(tui.NewLineHandler(slog.LevelInfo, func(b []byte) {
		sys.kmsgWrite(append([]byte("recovery supervisor: "), b...))
	}))
	// We keep the console as our controlling tty (init gave it to us),
	// so while the console is not in raw mode (before the UI starts, in
	// a shell the UI left) Ctrl-C, Ctrl-\ and Ctrl-Z reach us, not the
	// recovery. Caught rather than ignored: an ignored signal would stay
	// ignored in the recovery and its shell across exec.
	//
	// SIGPIPE too: a write to a pipe nobody reads must be an error here,
	// never our death (Go kills a program that gets EPIPE on fd 1 or 2
	// unless it handles SIGPIPE). init's stdout and stderr are such
	// pipes: init copies them to the consoles and gives up for good
	// when a console was hung up (see consoleCopy below).
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGTSTP, syscall.SIGHUP, syscall.SIGTTIN, syscall.SIGTTOU, syscall.SIGPIPE)
	go func() {
		for s := range sigs {
			log.Info("ignored a signal from the console", "signal", s)
		}
	}()
	err := respawn.Supervise(context.Background(), respawn.Config{
		Command:   func(respawn.Run) *exec.Cmd { return recoveryCommand() },
		Console:   consoleCopy{sys},
		Announce:  sys.announce,
		ReportDir: crashDir,
		Log:       log,
	})
	sys.announce(fmt.Sprintf("RECOVERY-ERROR no supervisor, running unsupervised: %v", err))
	signal.Stop(sigs)
}

// recoveryCommand is this program again, as the supervised child.
func recoveryCommand() *exec.Cmd {
	// u-root's busybox picks the command by argv[0]'s last symlink
	// (/bbin/recovery -> bb), which it left in os.Args[0]; a plain build
	// started through PATH has no path there.
	path := os.Args[0]
	if !strings.Contains(path, "/") {
		if p, err := os.Executable(); err == nil {
			path = p
		}
	}
	// Stdout nil: the supervisor's pipe takes it along with stderr, so
	// the recovery never writes to init's pipes (see supervise).
	cmd := &exec.Cmd{Path: path, Args: os.Args, Stdin: os.Stdin}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// A session of its own: the supervisor can tell its processes
		// apart, and the console's keys (ours, see supervise) never
		// signal it.
		Setsid: true,
		// A mount namespace of its own (private: Go remounts / with
		// MS_REC|MS_PRIVATE after unshare): the kernel unmounts whatever
		// a dead recovery had mounted (the boot partition, a USB source,
		// a target partition) when its last process is gone, so the next
		// one finds the disks free.
		Unshareflags: syscall.CLONE_NEWNS,
	}
	return cmd
}

// consoleCopy writes the recovery's output (Go's panic report) onto every
// console, opening the devices for each write as announce does. Not
// through init's stdout: when a session leader whose controlling tty is
// a serial console exits (the UI's shell), the kernel hangs that tty up,
// every file open on it fails from then on, and init stops copying.
type consoleCopy struct{ sys *system }

func (c consoleCopy) Write(p []byte) (int, error) {
	for _, name := range consoles(c.sys.cmdline(), c.sys.Dev) {
		writeConsole(filepath.Join(c.sys.Dev, name), string(p))
	}
	return len(p), nil
}
