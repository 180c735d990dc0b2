package main

import (
	"fmt"
	"time"
)

// testNowEnv is the test-only clock: PIBACKUP_TEST_NOW=2026-02-01T03:00:00Z
// makes backupctl take "now" from it, for the date in a set's name, the
// day retention and smart recycle count from, and the times in the state
// file. The clock starts at that instant when backupctl starts and runs
// on at the real clock's pace, so durations stay true. The QEMU soak test
// uses it to play a month of nights in minutes; it has no use on a Pi.
const testNowEnv = "PIBACKUP_TEST_NOW"

// clockFrom returns the clock of a run: real, or the test clock when
// testNowEnv is set (its value must be RFC 3339).
func clockFrom(getenv func(string) string, real func() time.Time) (func() time.Time, bool, error) {
	v := getenv(testNowEnv)
	if v == "" {
		return real, false, nil
	}
	at, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return nil, false, fmt.Errorf("%s=%q: want a time like 2026-02-01T03:00:00Z: %w", testNowEnv, v, err)
	}
	offset := at.Sub(real())
	return func() time.Time { return real().Add(offset) }, true, nil
}

// now is the run's clock; an app built without one (tests) uses the real
// clock.
func (a *app) now() time.Time {
	if a.clock == nil {
		return time.Now()
	}
	return a.clock()
}
