// Command soakload is the workload of the QEMU soak test's fixture Pi,
// and the host-side judge of what a restore brought back.
//
//	soakload serve -db FILE -state DIR   the service backupctl stops and starts:
//	                                     a SQLite database in WAL mode taking inserts
//	soakload pause|resume -state DIR     its stop and start commands (backupctl's
//	                                     stop-commands/start-commands)
//	soakload log -file FILE              the writer backupctl does not stop: an
//	                                     append-only log whose lines carry checksums
//	soakload check -root DIR ...         judge a restored root (host side)
//
// serve pauses on SIGUSR1 the way a well-behaved service stops: it ends
// its transaction, checkpoints the WAL into the database file, syncs it,
// records what the database holds (rows, SHA-256 of the file) in
// DIR/last-pause.json and DIR/paused.json, and waits for SIGUSR2. pause
// returns once paused.json is there, resume once it is gone, so
// backupctl's stop command returns only when the data is at rest.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: soakload serve|pause|resume|log|check [flags]")
		os.Exit(2)
	}
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "serve":
		err = serve(args)
	case "pause":
		err = signalAndWait(args, true)
	case "resume":
		err = signalAndWait(args, false)
	case "log":
		err = appendLog(args)
	case "check":
		err = check(args)
	default:
		err = fmt.Errorf("unknown command %q", cmd)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "soakload %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}
