package main

import (
	"io"
	"log/slog"
	"testing"
)

func TestTestCrash(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, c := range []struct {
		cmdline string
		n       int
		armed   bool
	}{
		{"console=ttyAMA0", 0, false},
		{"console=ttyAMA0 pibackup.test_crash=kill,panic", 0, true},
		{"console=ttyAMA0 pibackup.test_crash=kill,panic", 1, true},
		{"console=ttyAMA0 pibackup.test_crash=kill,panic", 2, false},
		{"pibackup.test_crash=reboot", 0, false},
		{"recovery.test_crash=kill", 0, false},
	} {
		if got := testCrash(c.cmdline, c.n, log) != nil; got != c.armed {
			t.Errorf("testCrash(%q, %d) armed %v; want %v", c.cmdline, c.n, got, c.armed)
		}
	}
}
