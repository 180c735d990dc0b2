package main

import (
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/pibackup/pibackup/internal/bootcmdline"
)

// testPanicFlag, a word on the kernel command line, arms a trigger for
// tests only (qemu-tests/respawn_test.go): SIGUSR2 then makes the
// recovery panic in a goroutine of its own, the way a bug in a library
// goroutine (tcell's input loop) would, which no recover() in main can
// catch. It is not a recovery.* key on purpose: recovery.conf cannot set
// it, and no card should carry it.
const testPanicFlag = "pibackup.test_panic=sigusr2"

// testPanicMessage is what the forced panic says.
const testPanicMessage = "forced test panic (SIGUSR2 with " + testPanicFlag + ")"

// armTestPanic installs the trigger when cmdline has testPanicFlag.
func armTestPanic(cmdline string, log *slog.Logger) {
	if !hasWord(cmdline, testPanicFlag) {
		return
	}
	log.Warn("test panic armed: SIGUSR2 panics the recovery", "flag", testPanicFlag)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGUSR2)
	go func() {
		<-ch
		go func() { panic(testPanicMessage) }()
	}()
}

// hasWord reports whether the kernel command line has word, exactly.
func hasWord(cmdline, word string) bool {
	for _, w := range bootcmdline.Split(cmdline) {
		if w == word {
			return true
		}
	}
	return false
}
