// Command bench measures backupctl against the classic tools raspiBackup
// drives (dd, gzip, pigz, zstd, partclone, tar, rsync) on the same
// fixture disk: each backup and each restore, side by side, several runs
// each. It prints a table, writes the pairs as JSON to out/bench.json
// and the report to out/bench.md, and reports the recovery image's size
// and its boot-to-UI time in QEMU.
//
//	make bench                                 # BENCH_SIZE=1G, BENCH_RUNS=1, under 15 minutes
//	BENCH_SIZE=1G BENCH_RUNS=1 go run ./bench  # a quick run (as root)
//	go run ./bench recovery                    # only the recovery image
//
// Environment: BENCH_SIZE (disk size, default 1G), BENCH_RUNS (runs per
// operation, the median is reported; default 1), BENCH_DIR (fixture and
// outputs, default /var/tmp/pibackup-bench), BENCH_BACKUPCTL (default
// out/backupctl), BENCH_JSON (default out/bench.json), BENCH_RECOVERY=0
// (skip the recovery image).
//
// The fixture is a Pi-like disk image: MBR, 256 MiB FAT32 boot, ext4 root
// filled with real files copied from this machine (/usr/lib, /usr/share,
// ...) up to half its size (at most 1.5 GiB), whose free space holds stale
// random data as on a used card (a random file is written and deleted
// before the copy). Building it needs root (loop devices, mount).
//
// Every run starts with its input out of the page cache and ends with
// its output flushed to disk, and runs as its own process, traced for the
// peak RSS of it and all it starts (peakrss_linux.go).
package main

import (
	"fmt"
	"os"
	"path/filepath"
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
		case "recovery":
			repo, err := filepath.Abs(envOr("BENCH_REPO", "."))
			if err != nil {
				return err
			}
			writeRecovery(os.Stdout, measureRecovery(repo))
			return nil
		default:
			return fmt.Errorf("unknown subcommand %q (ours-image, ours-restore, recovery, or none for the whole bench)", args[0])
		}
	}
	cfg, err := configFromEnv()
	if err != nil {
		return err
	}
	return runBench(cfg)
}
