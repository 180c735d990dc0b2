// Command recovery is the main program of the recovery image. This first
// version announces itself and powers off; the restore UI replaces it.
package main

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

var version = "dev"

func main() {
	msg := fmt.Sprintf("RECOVERY-READY %s\n", version)
	if f, err := os.OpenFile("/dev/kmsg", os.O_WRONLY, 0); err == nil {
		fmt.Fprint(f, msg)
		f.Close()
	}
	fmt.Print(msg)
	time.Sleep(time.Second)
	// PID 1's child must never just exit: power off instead.
	unix.Sync()
	_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	select {}
}
