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
	"strings"

	"github.com/u-root/u-root/pkg/libinit"

	"github.com/pibackup/pibackup/internal/bootcmdline"
)

// version is set by -ldflags for a plain go build; u-root builds the
// image's recovery without them, and the release version comes from
// versionFile (written by initramfs.Options.Version).
var version = "dev"

const versionFile = "/etc/pibackup-version"

func main() {
	if os.Getpid() == 1 {
		// Without u-root's init in front of us, set up what it would:
		// PATH, /dev, /proc, /sys, /tmp.
		libinit.SetEnv()
		libinit.CreateRootfs()
	}
	if b, err := os.ReadFile(versionFile); err == nil && version == "dev" {
		version = strings.TrimSpace(string(b))
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
