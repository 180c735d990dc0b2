// Command recovery is a stand-in for the real recovery program (../../../recovery)
// used by tests while that one does not exist: it announces itself the way the
// real one does and then never exits, as a uinit must not.
package main

import (
	"fmt"
	"os"
	"time"
)

func main() {
	msg := "RECOVERY-READY testdata-stand-in\n"
	if f, err := os.OpenFile("/dev/kmsg", os.O_WRONLY, 0); err == nil {
		f.WriteString(msg)
		f.Close()
	}
	fmt.Print(msg)
	for {
		time.Sleep(time.Hour)
	}
}
