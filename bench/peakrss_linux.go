package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"syscall"

	"github.com/pibackup/pibackup/internal/procstatus"
	"golang.org/x/sys/unix"
)

// Peak RSS, measured the same way for every command, ours and the
// classic tools'.
//
// Not ru_maxrss: Linux carries the high-water mark of the memory a
// process replaced by exec into its ru_maxrss, and Go starts a child
// with vfork semantics (the child runs in the parent's memory until its
// exec), so every command the bench started reported at least the
// bench's own peak (the classic tools 7 to 9 MiB where dd bs=4M or tar
// needs 1 to 5). backupctl fixes this for itself with VmHWM (see
// backupctl/usage_linux.go); the bench cannot ask the tools.
//
// So the bench traces the command and everything it starts (ptrace,
// stopping only at fork, exec and exit, never at system calls) and, as
// each process or thread is about to exit, reads its VmHWM from
// /proc/PID/status: the peak of the memory it has had since its own exec.
// The largest over the tree is the figure: a pipeline's largest member,
// or backupctl and the tar, rsync or mkfs it ran.

// traceOpts: report forks, vforks, clones and execs (so that every
// descendant is traced and an exec is no stray SIGTRAP) and stop each
// task before it exits, while its memory is still there.
const traceOpts = unix.PTRACE_O_TRACEFORK | unix.PTRACE_O_TRACEVFORK | unix.PTRACE_O_TRACECLONE |
	unix.PTRACE_O_TRACEEXEC | unix.PTRACE_O_TRACEEXIT

// tracedResult is how a traced command ended.
type tracedResult struct {
	status  syscall.WaitStatus // of the command itself
	peakRSS int64              // bytes, the largest VmHWM of the tree
	// stops counts the times a task of the tree was stopped for the
	// tracer (forks, execs, exits, signals): what tracing cost it.
	stops int
}

func (r tracedResult) err() error {
	switch {
	case r.status.Exited() && r.status.ExitStatus() == 0:
		return nil
	case r.status.Exited():
		return fmt.Errorf("exit status %d", r.status.ExitStatus())
	case r.status.Signaled():
		return fmt.Errorf("killed by %v", r.status.Signal())
	}
	return fmt.Errorf("wait status %#x", uint32(r.status))
}

// runTraced runs argv with env, stdout and stderr under ptrace until it
// exits, and returns how it ended and the peak RSS of it and all it ran.
func runTraced(argv, env []string, stdout, stderr *os.File) (tracedResult, error) {
	type outcome struct {
		res tracedResult
		err error
	}
	done := make(chan outcome, 1)
	// Every ptrace request must come from the thread that traces: one
	// goroutine, locked to its thread, starts and follows the command.
	go func() {
		runtime.LockOSThread()
		// Left locked: the thread ends with the goroutine, and with it
		// any tracing state.
		res, err := traceTree(argv, env, stdout, stderr)
		done <- outcome{res, err}
	}()
	o := <-done
	return o.res, o.err
}

func traceTree(argv, env []string, stdout, stderr *os.File) (tracedResult, error) {
	var res tracedResult
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return res, err
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return res, err
	}
	defer devnull.Close()
	pid, err := syscall.ForkExec(path, argv, &syscall.ProcAttr{
		Env:   env,
		Files: []uintptr{devnull.Fd(), stdout.Fd(), stderr.Fd()},
		Sys:   &syscall.SysProcAttr{Ptrace: true},
	})
	if err != nil {
		return res, fmt.Errorf("start %s: %w", argv[0], err)
	}
	// The command stops at its exec (PTRACE_TRACEME).
	var ws syscall.WaitStatus
	if _, err := wait4(pid, &ws); err != nil {
		return res, err
	}
	if !ws.Stopped() {
		return res, fmt.Errorf("%s: not stopped at its exec (%#x)", argv[0], uint32(ws))
	}
	if err := unix.PtraceSetOptions(pid, traceOpts); err != nil {
		syscall.Kill(pid, syscall.SIGKILL)
		return res, fmt.Errorf("ptrace %s: %w", argv[0], err)
	}
	if err := unix.PtraceCont(pid, 0); err != nil {
		return res, err
	}
	for {
		wpid, err := wait4(-1, &ws)
		if err != nil {
			return res, err
		}
		switch {
		case ws.Exited() || ws.Signaled():
			if wpid == pid {
				res.status = ws
				return res, nil
			}
		case ws.Stopped():
			res.stops++
			sig := ws.StopSignal()
			inject := 0
			switch {
			case sig == syscall.SIGTRAP && ws.TrapCause() == unix.PTRACE_EVENT_EXIT:
				res.peakRSS = max(res.peakRSS, vmHWM(wpid))
			case sig == syscall.SIGTRAP && ws.TrapCause() > 0:
				// fork, vfork, clone, exec: the new task is traced
				// already and reports a SIGSTOP of its own.
			case sig == syscall.SIGSTOP:
				// A new task's first stop (or a real SIGSTOP, which
				// is dropped: nothing the bench runs relies on it).
			default:
				inject = int(sig) // the task's own signal: deliver it
			}
			// ESRCH: the task was killed meanwhile; its exit follows.
			unix.PtraceCont(wpid, inject)
		}
	}
}

// wait4 waits for any state change of pid (-1: any traced task or
// child), threads included, retrying on EINTR.
func wait4(pid int, ws *syscall.WaitStatus) (int, error) {
	for {
		wpid, err := syscall.Wait4(pid, ws, unix.WALL, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("wait4: %w", err)
		}
		return wpid, nil
	}
}

// vmHWM is the peak RSS of task tid since its exec, in bytes (0 for a
// task without memory of its own, e.g. a kernel thread, or when
// /proc cannot tell).
func vmHWM(tid int) int64 {
	n, err := procstatus.PeakRSS(strconv.Itoa(tid))
	if err != nil {
		return 0
	}
	return n
}
