package backupset

import (
	"errors"
	"io/fs"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

// TestStateRoundTrip writes a state with every field set, reads it back
// and checks the JSON keys that status, the soak test and users' scripts
// read.
func TestStateRoundTrip(t *testing.T) {
	passed := false
	start := time.Date(2026, 2, 1, 3, 0, 0, 0, time.UTC)
	want := State{
		LastRun: &RunRecord{Start: start, End: start.Add(time.Minute), Set: "pi@debian12-rsync-backup-20260201-030000",
			OK: false, ExitCode: 3, Error: "dump failed", Log: "/b/pi/backupctl-failed.log",
			RunUsage: RunUsage{BytesRead: 1, BytesWritten: 2, PeakRSS: 3}},
		LastRestoreTest: &RestoreRecord{Time: start, Set: "pi@debian12-rsync-backup-20260101-030000", How: "backupctl restore-test",
			Passed: &passed, Problems: []string{"boot: no cmdline.txt"}, Seconds: 1.5},
	}
	b, err := want.Encode()
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"last_run"`, `"last_restore_test"`, `"exit_code": 3`, `"bytes_written": 2`, `"peak_rss_bytes": 3`, `"passed": false`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("encoded state lacks %s:\n%s", key, b)
		}
	}
	fsys := fstest.MapFS{"pi/" + StateFile: {Data: b}}
	read := func(n string) ([]byte, error) { return fs.ReadFile(fsys, n) }
	got, err := ReadState(read, "pi/"+StateFile)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ReadState = %+v; want %+v", got, want)
	}
}

func TestReadStateMissingAndBroken(t *testing.T) {
	fsys := fstest.MapFS{"pi/" + StateFile: {Data: []byte("{not json")}}
	read := func(n string) ([]byte, error) { return fs.ReadFile(fsys, n) }
	if s, err := ReadState(read, "other/"+StateFile); err != nil || s.LastRun != nil || s.LastRestoreTest != nil {
		t.Errorf("ReadState(missing) = %+v, %v; want an empty state", s, err)
	}
	if _, err := ReadState(read, "pi/"+StateFile); err == nil || !strings.Contains(err.Error(), "pi/"+StateFile) {
		t.Errorf("ReadState(broken) error = %v; want one naming the file", err)
	}
	// Update replaces a broken file rather than failing the run, and
	// keeps what it does not change in a good one.
	b, err := UpdateState(read, "pi/"+StateFile, func(s *State) { s.LastRun = &RunRecord{OK: true} })
	if err != nil {
		t.Fatal(err)
	}
	fsys["pi/"+StateFile] = &fstest.MapFile{Data: b}
	b, err = UpdateState(read, "pi/"+StateFile, func(s *State) { s.LastRestoreTest = &RestoreRecord{Set: "x", How: "by hand"} })
	if err != nil {
		t.Fatal(err)
	}
	fsys["pi/"+StateFile] = &fstest.MapFile{Data: b}
	s, err := ReadState(read, "pi/"+StateFile)
	if err != nil || s.LastRun == nil || !s.LastRun.OK || s.LastRestoreTest == nil || s.LastRestoreTest.Set != "x" {
		t.Errorf("after two updates: %+v, %v; want both records", s, err)
	}
	failing := func(string) ([]byte, error) { return nil, errors.New("I/O error") }
	if _, err := ReadState(failing, StateFile); err == nil {
		t.Error("ReadState with a failing read succeeded")
	}
}
