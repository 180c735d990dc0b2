// Command recovery is the program the recovery image boots into. It runs
// as u-root's uinit (or as PID 1 itself), brings the network up, reads the
// kernel command line and recovery.conf, and then either restores
// unattended or runs the restore UI on the console.
//
// It never exits: whatever happens (success, error, panic), it ends by
// powering off or rebooting, because an init whose child exits leaves a
// machine nobody can use.
package main

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"

	"github.com/u-root/u-root/pkg/libinit"

	"github.com/pibackup/pibackup/internal/bootcmdline"
)

var version = "dev"

func main() {
	if os.Getpid() == 1 {
		// Without u-root's init in front of us, set up what it would:
		// PATH, /dev, /proc, /sys, /tmp.
		libinit.SetEnv()
		libinit.CreateRootfs()
	}
	sys := newSystem()
	after := bootcmdline.AfterPowerOff
	defer func() {
		if p := recover(); p != nil {
			sys.announce(fmt.Sprintf("RECOVERY-PANIC %v", p))
			sys.kmsgWrite([]byte(fmt.Sprintf("recovery: panic: %v\n%s", p, debug.Stack())))
		}
		sys.power(after) // does not return
	}()
	after = run(context.Background(), sys)
}
