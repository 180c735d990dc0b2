package main

import (
	"os"
	"path/filepath"
	"testing"
)

// READY carries the guest's uptime, which make bench reports as the boot
// time; a recovery that cannot read it still says READY.
func TestReadyLineUptime(t *testing.T) {
	dir := t.TempDir()
	sys := &system{Uptime: filepath.Join(dir, "uptime")}
	if got := readyLine("v1", sys.uptime()); got != "RECOVERY-READY v1" {
		t.Errorf("without /proc/uptime: %q", got)
	}
	if err := os.WriteFile(sys.Uptime, []byte("6.42 11.80\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, want := readyLine("v1", sys.uptime()), "RECOVERY-READY v1 uptime=6.42"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
