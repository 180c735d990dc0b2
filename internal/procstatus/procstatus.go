// Package procstatus reads a process's /proc/<pid>/status: the one figure
// backupctl and the bench need from it, the peak resident set.
package procstatus

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// PeakRSS is VmHWM of process pid ("self" for this one): the peak
// resident set of its own memory since its exec, in bytes. Unlike
// ru_maxrss it does not carry the high-water mark of the image the exec
// replaced.
func PeakRSS(pid string) (int64, error) {
	p := "/proc/" + pid + "/status"
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		v, ok := strings.CutPrefix(line, "VmHWM:")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s %q: %w", p, strings.TrimSpace(line), err)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("no VmHWM in %s", p)
}
