package testsrv

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// Stop kills sshd and every session it forked, as when the server
// machine dies: open connections break at once.
func (s *SSHD) Stop(t testing.TB) { t.Helper(); killTree(t, s.pidFile) }

// Stop kills smbd and every connection's smbd, as when the server
// machine dies: open connections break at once.
func (s *SMB) Stop(t testing.TB) { t.Helper(); killTree(t, s.pidFile) }

// killTree SIGKILLs the daemon whose pid is in pidFile and all its
// descendants; killing only the listener would leave the forked
// per-connection servers answering.
func killTree(t testing.TB, pidFile string) {
	t.Helper()
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("stop server: %v", err)
	}
	root, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("stop server: pid file %s: %v", pidFile, err)
	}
	pids := []int{root}
	for i := 0; i < len(pids); i++ {
		pids = append(pids, children(pids[i])...)
	}
	// Stop them all first, so none forks or respawns while the others die.
	for _, p := range pids {
		_ = syscall.Kill(p, syscall.SIGSTOP)
	}
	for _, p := range pids {
		if err := syscall.Kill(p, syscall.SIGKILL); err != nil && err != syscall.ESRCH {
			t.Fatalf("stop server: kill %d: %v", p, err)
		}
	}
}

// children lists the processes whose parent is pid.
func children(pid int) []int {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []int
	for _, st := range stats {
		b, err := os.ReadFile(st)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parens.
		rest := string(b[strings.LastIndexByte(string(b), ')')+1:])
		var state string
		var ppid int
		if _, err := fmt.Sscan(rest, &state, &ppid); err == nil && ppid == pid {
			c, _ := strconv.Atoi(filepath.Base(filepath.Dir(st)))
			out = append(out, c)
		}
	}
	return out
}
