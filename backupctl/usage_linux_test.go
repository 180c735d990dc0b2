package main

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// TestPeakRSSIsOwn: a backupctl started by a process that once used a
// lot of memory reports its own peak, not its starter's (ru_maxrss
// carries the replaced image's peak across exec).
func TestPeakRSSIsOwn(t *testing.T) {
	if os.Getenv("PIBACKUP_USAGE_CHILD") == "1" {
		u, err := readUsage()
		if err != nil {
			t.Fatal(err)
		}
		os.Stdout.WriteString("PEAK=" + strconv.FormatInt(u.PeakRSS, 10) + "\n")
		return
	}
	big := make([]byte, 300<<20)
	for i := range big {
		if i%4096 == 0 {
			big[i] = 1
		}
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestPeakRSSIsOwn$", "-test.count=1")
	cmd.Env = append(os.Environ(), "PIBACKUP_USAGE_CHILD=1")
	out, err := cmd.Output()
	big[len(big)-1] = 2 // keep it alive and resident until the child ran
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	_, v, ok := strings.Cut(string(out), "PEAK=")
	if !ok {
		t.Fatalf("child said %q", out)
	}
	peak, err := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	if peak <= 0 || peak > 200<<20 {
		t.Fatalf("child's peak RSS %d MiB: its starter's 300 MiB counted", peak>>20)
	}
	t.Logf("child's peak RSS %.1f MiB", float64(peak)/(1<<20))
}
