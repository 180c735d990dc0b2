package backupset

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"
)

// State is the content of a host folder's StateFile: the last backup run
// (the sets show only successes) and the last test restore, for
// `backupctl status` and the reminder in notices.
type State struct {
	LastRun         *RunRecord     `json:"last_run,omitempty"`
	LastRestoreTest *RestoreRecord `json:"last_restore_test,omitempty"`
}

// RunRecord is the outcome of one backup run.
type RunRecord struct {
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Set      string    `json:"set,omitempty"`
	OK       bool      `json:"ok"`
	ExitCode int       `json:"exit_code"`
	Error    string    `json:"error,omitempty"`
	Log      string    `json:"log,omitempty"`
	// What the run cost: storage read and written by backupctl and its
	// tools, and the peak resident set; absent when not measured.
	RunUsage
}

// RunUsage is a run's cost, as the state file records it.
type RunUsage struct {
	BytesRead    int64 `json:"bytes_read,omitempty"`
	BytesWritten int64 `json:"bytes_written,omitempty"`
	PeakRSS      int64 `json:"peak_rss_bytes,omitempty"`
}

// RestoreRecord is a test restore: `backupctl restore` of a set,
// `backupctl restore-test`, or one the user recorded by hand.
type RestoreRecord struct {
	Time time.Time `json:"time"`
	Set  string    `json:"set"`
	How  string    `json:"how"`
	// Passed is set by `backupctl restore-test`: false when a check
	// failed, with the failed checks in Problems.
	Passed   *bool    `json:"passed,omitempty"`
	Problems []string `json:"problems,omitempty"`
	Seconds  float64  `json:"seconds,omitempty"`
}

// ReadFileFunc reads a whole file: os.ReadFile for a local folder, or
// fs.ReadFile on a store's FS. The state file is read through it so that
// errors name the file as the caller knows it.
type ReadFileFunc func(name string) ([]byte, error)

// ReadState reads the state file name (a host folder's StateFile) with
// read. A missing file is an empty state.
func ReadState(read ReadFileFunc, name string) (State, error) {
	var s State
	b, err := read(name)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("%s: %w", name, err)
	}
	return s, nil
}

// UpdateState reads the state file name with read, lets change change it
// and returns the new content for the caller to write (atomically; how
// depends on where the folder is). A file that is broken or cannot be
// read is replaced, not a reason to fail a backup: a lost record costs
// only a reminder. Runs of one host are serialised by the host lock
// (LockFile), so the file needs no lock of its own.
func UpdateState(read ReadFileFunc, name string, change func(*State)) ([]byte, error) {
	s, err := ReadState(read, name)
	if err != nil {
		s = State{}
	}
	change(&s)
	return s.Encode()
}

// Encode is the state as the state file holds it.
func (s State) Encode() ([]byte, error) {
	b, err := json.MarshalIndent(s, "", "  ")
	return append(b, '\n'), err
}
