package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/procstatus"
)

// readUsage reads what the process and the tools it ran and reaped (tar,
// rsync) have cost so far: the kernel adds a reaped child's I/O counters
// to its parent's, so /proc/self/io covers both. read_bytes and
// write_bytes count storage I/O (page-cache hits and data overwritten
// before writeback do not count). The peak resident set is the larger
// of this process's own (VmHWM) and its largest reaped child's. Not
// RUSAGE_SELF: Linux carries the high-water mark of the image a process
// replaced by exec into its ru_maxrss, so a backupctl started by a large
// scheduler would report the scheduler's peak (the soak showed every
// run at the highest figure any earlier run had).
func readUsage() (backupset.RunUsage, error) {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return backupset.RunUsage{}, fmt.Errorf("usage: %w", err)
	}
	io := map[string]int64{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return backupset.RunUsage{}, fmt.Errorf("usage: /proc/self/io %q: %w", sc.Text(), err)
		}
		io[k] = n
	}
	hwm, err := procstatus.PeakRSS("self")
	if err != nil {
		return backupset.RunUsage{}, fmt.Errorf("usage: %w", err)
	}
	var children unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_CHILDREN, &children); err != nil {
		return backupset.RunUsage{}, fmt.Errorf("usage: getrusage: %w", err)
	}
	return backupset.RunUsage{
		BytesRead:    io["read_bytes"],
		BytesWritten: max(io["write_bytes"]-io["cancelled_write_bytes"], 0),
		PeakRSS:      max(hwm, int64(children.Maxrss)*1024), // Linux reports KiB (an int32 on 32-bit ARM)
	}, nil
}
