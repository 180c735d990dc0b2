package model

import "time"

// NewProgressForTest returns a Progress with the given clock that
// notifies nobody.
func NewProgressForTest(now func() time.Time) *Progress { return newProgress(now, func() {}) }
