// Command bench measures pibackup's used-blocks imaging and its backups
// against the classic tools raspiBackup drives (dd, gzip, pigz, zstd,
// partclone, tar, rsync) on the same fixture disk, and prints a table.
//
//	go run ./bench                 # BENCH_SIZE=3G, fixture in /var/tmp/pibackup-bench
//	BENCH_SIZE=1G go run ./bench   # a quick run
//
// The fixture is a Pi-like disk image: MBR, 256 MiB FAT32 boot, ext4 root
// filled with real files copied from this machine (/usr/lib, /usr/share,
// ...) up to half its size (at most 1.5 GiB), whose free space holds stale
// random data as on a used card (a random file is written and deleted
// before the copy). Building it needs root (loop devices, mount).
//
// Every operation starts with the fixture out of the page cache and ends
// with its output fsynced, and each runs as a separate process so its
// peak RSS is what the kernel reports for it (for a pipeline, the largest
// member). Our operations run as this same binary with a subcommand.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) > 0 {
		switch args[0] {
		case "ours-image":
			return oursImage(args[1:])
		case "ours-restore":
			return oursRestore(args[1:])
		}
	}
	cfg, err := configFromEnv()
	if err != nil {
		return err
	}
	return runBench(cfg)
}
