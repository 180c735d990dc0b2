package main

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// The traced peak RSS is the command tree's own: a descendant's large
// buffer counts, the harness's memory does not (ru_maxrss of the same
// command carries it, which is why the bench traces).
func TestPeakRSSIsTheCommands(t *testing.T) {
	// The harness holds 256 MiB, touched.
	ballast := make([]byte, 256<<20)
	for i := range ballast {
		if i%4096 == 0 {
			ballast[i] = 1
		}
	}
	run := func(argv ...string) (tracedResult, error) {
		t.Helper()
		res, err := runTraced(argv, os.Environ(), os.Stdout, os.Stderr)
		if err != nil {
			t.Fatalf("%q: %v", argv, err)
		}
		return res, res.err()
	}
	small, err := run("true")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss << 10
	t.Logf("true: traced peak %d KiB, ru_maxrss %d KiB", small.peakRSS>>10, ru>>10)
	if small.peakRSS == 0 || small.peakRSS > 16<<20 {
		t.Errorf("traced peak RSS of true is %d bytes; want a few hundred KiB, not the harness's 256 MiB", small.peakRSS)
	}
	// A grandchild with a 64 MiB buffer, behind a shell that waits.
	big, err := run("sh", "-c", "dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null; true")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("dd bs=64M under sh: traced peak %d KiB", big.peakRSS>>10)
	if big.peakRSS < 64<<20 || big.peakRSS > 128<<20 {
		t.Errorf("traced peak RSS of dd bs=64M is %d bytes; want its 64 MiB buffer and a little", big.peakRSS)
	}
	if _, err := run("sh", "-c", "exit 3"); err == nil || err.Error() != "exit status 3" {
		t.Errorf("exit 3 gave %v", err)
	}
	ballast[0]++
}
