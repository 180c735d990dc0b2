// Command recovery is the program the recovery image boots into. It runs
// as u-root's uinit (or as PID 1 itself), brings the network up, reads the
// kernel command line and recovery.conf, and then either restores
// unattended or runs the restore UI on the console.
//
// It never exits: it ends by powering off or rebooting, because an init
// whose child exits leaves a machine nobody can use. The process init
// starts is only a supervisor (supervise.go, package respawn): the
// recovery proper runs as its child, and when that dies for any reason (a
// panic in any goroutine, a signal) the supervisor says so on the console
// and starts it again.
package main

import (
	"context"
	"os"
	"strings"

	"github.com/u-root/u-root/pkg/libinit"
	// CA roots for https:// sources and S3 endpoints: the image has no
	// /etc/ssl, and Go uses these only when the system has none.
	_ "golang.org/x/crypto/x509roots/fallback"

	"github.com/pibackup/pibackup/internal/respawn"
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
	restart, supervised := respawn.FromEnv(os.Getenv)
	if !supervised {
		supervise(sys) // returns only when no child can be started
	}
	// No recover() here: a panic, in this goroutine or any other, ends
	// the process with Go's report on stderr, which the supervisor keeps
	// and shows, and then it starts the recovery again. Only a deliberate
	// end powers off.
	after := run(context.Background(), sys, restart)
	sys.power(after) // does not return
}
