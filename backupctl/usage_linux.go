package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// readUsage reads what the process and the tools it ran and reaped (tar,
// rsync) have cost so far: the kernel adds a reaped child's I/O counters
// to its parent's, so /proc/self/io covers both. read_bytes and
// write_bytes count storage I/O (page-cache hits and data overwritten
// before writeback do not count); maxrss is the peak resident set of the
// process or of its largest child.
func readUsage() (runUsage, error) {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return runUsage{}, fmt.Errorf("usage: %w", err)
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
			return runUsage{}, fmt.Errorf("usage: /proc/self/io %q: %w", sc.Text(), err)
		}
		io[k] = n
	}
	var self, children unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &self); err != nil {
		return runUsage{}, fmt.Errorf("usage: getrusage: %w", err)
	}
	if err := unix.Getrusage(unix.RUSAGE_CHILDREN, &children); err != nil {
		return runUsage{}, fmt.Errorf("usage: getrusage: %w", err)
	}
	return runUsage{
		BytesRead:    io["read_bytes"],
		BytesWritten: max(io["write_bytes"]-io["cancelled_write_bytes"], 0),
		PeakRSS:      int64(max(self.Maxrss, children.Maxrss)) * 1024, // Linux reports KiB (an int32 on 32-bit ARM)
	}, nil
}
