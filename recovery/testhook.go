package main

import (
	"log/slog"
	"os"
	"strings"
	"syscall"

	"github.com/pibackup/pibackup/internal/bootcmdline"
)

// testCrashPrefix, a word on the kernel command line, arms crashes for
// tests only (qemu-tests/respawn_test.go):
// "pibackup.test_crash=kill,panic" makes F12 in the UI crash the
// recovery, in the Nth run (N = restarts so far) the Nth way of the
// list: "kill" is a SIGKILL of itself, "panic" a panic in a goroutine of
// its own, the way a bug in a library goroutine (tcell's input loop)
// would end it, which no recover() in main can catch. The test drives it
// with one key on the console, so it needs no shell. It is not a
// recovery.* key on purpose: recovery.conf cannot set it, and no card
// should carry it.
const testCrashPrefix = "pibackup.test_crash="

// testPanicMessage is what the forced panic says.
const testPanicMessage = "forced test panic (F12 with " + testCrashPrefix + "...panic)"

// testCrash returns what F12 does in run n (restarts so far) when
// cmdline arms it, else nil.
func testCrash(cmdline string, n int, log *slog.Logger) func() {
	var steps []string
	for _, w := range bootcmdline.Split(cmdline) {
		if v, ok := strings.CutPrefix(w, testCrashPrefix); ok {
			steps = strings.Split(v, ",")
		}
	}
	if n >= len(steps) {
		return nil
	}
	step := steps[n]
	log.Warn("test crash armed: F12 ends the recovery", "how", step, "run", n)
	switch step {
	case "kill":
		return func() { syscall.Kill(os.Getpid(), syscall.SIGKILL) }
	case "panic":
		return func() { go func() { panic(testPanicMessage) }() }
	}
	log.Warn("unknown test crash; F12 does nothing", "how", step)
	return nil
}
