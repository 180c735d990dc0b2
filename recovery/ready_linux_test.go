package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/pibackup/pibackup/internal/source"
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

// countLister lists no disk and counts how often it was asked.
type countLister struct{ n int }

func (c *countLister) Disks() ([]source.Disk, error) { c.n++; return nil, nil }

// findBoot waits for a late boot disk only where one can come late: on a
// machine without USB, MMC, NVMe or SCSI hosts (QEMU virt without a
// disk) it looks once and brings the UI up, instead of 5 s later.
func TestFindBootWaitsOnlyForLateBuses(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	dir := t.TempDir()
	sys := &system{Sys: filepath.Join(dir, "sys"), RunDir: filepath.Join(dir, "run")}
	var none countLister
	if bp := findBoot(sys, &none, log); bp.dir != "" || none.n != 1 {
		t.Errorf("no late bus: listed disks %d times (want 1), boot %+v", none.n, bp)
	}
	if err := os.MkdirAll(filepath.Join(sys.Sys, "class", "mmc_host", "mmc0"), 0o755); err != nil {
		t.Fatal(err)
	}
	var mmc countLister
	findBoot(sys, &mmc, log)
	if mmc.n < 2 {
		t.Errorf("with an MMC host: listed disks %d times, want it to wait for the card", mmc.n)
	}
}
