package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pibackup/pibackup/internal/backupset"
)

func TestClockFrom(t *testing.T) {
	real := time.Date(2026, 12, 4, 7, 0, 0, 0, time.UTC)
	tick := real
	clock, test, err := clockFrom(func(string) string { return "2026-02-01T03:00:00Z" }, func() time.Time { return tick })
	if err != nil || !test {
		t.Fatalf("clockFrom = %v, %v", test, err)
	}
	if got := clock(); !got.Equal(time.Date(2026, 2, 1, 3, 0, 0, 0, time.UTC)) {
		t.Errorf("test clock starts at %s", got)
	}
	tick = tick.Add(90 * time.Second) // it runs on with the real clock
	if got := clock(); !got.Equal(time.Date(2026, 2, 1, 3, 1, 30, 0, time.UTC)) {
		t.Errorf("test clock after 90 s = %s", got)
	}
	if _, _, err := clockFrom(func(string) string { return "yesterday" }, time.Now); err == nil || !strings.Contains(err.Error(), testNowEnv) {
		t.Errorf("a bad value: err = %v; want one naming %s", err, testNowEnv)
	}
	if _, test, err := clockFrom(func(string) string { return "" }, time.Now); err != nil || test {
		t.Errorf("unset: test clock %v, err %v", test, err)
	}
}

// TestBackupTestClock runs backups on a test clock: the set names carry
// its dates, smart recycle counts days from it (with the real clock, in
// another year, the yearly rule would keep only the newest set), and the
// state file records the run's cost.
func TestBackupTestClock(t *testing.T) {
	d := fixture(t)
	target := t.TempDir()
	var sets []string
	for _, now := range []string{"2026-01-31T03:00:00Z", "2026-02-01T03:00:00Z", "2026-02-02T03:00:00Z"} {
		t.Setenv(testNowEnv, now)
		sets = append(sets, backupOK(t, target, "-t", "tar", "--smart-recycle", "--smart-recycle-daily", "1",
			"--smart-recycle-weekly", "0", "--smart-recycle-monthly", "2", "--smart-recycle-yearly", "0", "--source-disk", d.Path))
	}
	for i, want := range []string{"-20260131-0300", "-20260201-0300", "-20260202-0300"} {
		if !strings.Contains(filepath.Base(sets[i]), want) {
			t.Errorf("set %d is %s; want a name with %s", i, filepath.Base(sets[i]), want)
		}
	}
	// On 2 Feb: daily keeps 2 Feb, monthly keeps the oldest of February
	// (1 Feb) and of January (31 Jan): nothing goes. A third February
	// set makes 2 Feb's the newest, so the set of 2 Feb goes.
	if got := setDirs(t, target); len(got) != 3 {
		t.Fatalf("after three nights: sets %q; want all three", got)
	}
	t.Setenv(testNowEnv, "2026-02-03T03:00:00Z")
	backupOK(t, target, "-t", "tar", "--smart-recycle", "--smart-recycle-daily", "1",
		"--smart-recycle-weekly", "0", "--smart-recycle-monthly", "2", "--smart-recycle-yearly", "0", "--source-disk", d.Path)
	got := setDirs(t, target)
	if len(got) != 3 || strings.Contains(strings.Join(got, " "), "-20260202-") {
		t.Errorf("after the fourth night: sets %q; want 31 Jan, 1 Feb and 3 Feb", got)
	}

	b, err := os.ReadFile(filepath.Join(target, "testpi", backupset.StateFile))
	if err != nil {
		t.Fatal(err)
	}
	var st backupset.State
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	r := st.LastRun
	if r == nil || !r.Start.Before(time.Date(2026, 2, 4, 0, 0, 0, 0, time.UTC)) || r.End.Before(r.Start) {
		t.Fatalf("state file last run %+v; want start and end on the test clock", r)
	}
	if r.BytesWritten <= 0 || r.PeakRSS <= 0 {
		t.Errorf("state file last run %+v; want bytes written and a peak RSS", r)
	}
	if _, err := os.Stat(filepath.Join(target, "testpi", "tmp")); err == nil {
		entries, _ := os.ReadDir(filepath.Join(target, "testpi", "tmp"))
		if len(entries) > 0 {
			t.Errorf("sets left in tmp: %v", entries)
		}
	}
}
