// Package size reads and writes byte counts the way every command of the
// project shows them: binary units (KiB, MiB, GiB, TiB), because disks,
// partitions and images are aligned to MiB. One parser and one formatter,
// so --size, --boot-size, --max-space and BENCH_SIZE accept the same
// input and every report prints sizes alike.
package size

import (
	"fmt"
	"strconv"
	"strings"
)

// Format shows n with one decimal in the largest binary unit below it:
// "512 B", "7.4 GiB".
func Format(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// Parse reads "7948206080", "512M", "512MiB", "64k", "2G", "1.5GiB", "1T"
// (binary units, case ignored). "" and "0" are 0: not set. A fraction
// rounds down to whole 512-byte sectors; negative or overflowing sizes
// are errors.
func Parse(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "0" {
		return 0, nil
	}
	u := strings.ToUpper(s)
	u = strings.TrimSuffix(u, "IB")
	u = strings.TrimSuffix(u, "B")
	mult := int64(1)
	if n := len(u); n > 0 {
		switch u[n-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		case 'T':
			mult = 1 << 40
		}
		if mult > 1 {
			u = u[:n-1]
		}
	}
	if i, err := strconv.ParseInt(u, 10, 64); err == nil && i > 0 {
		if i > (1<<62)/mult {
			return 0, fmt.Errorf("size %q is too large", s)
		}
		return i * mult, nil
	}
	f, err := strconv.ParseFloat(u, 64)
	if err != nil || f <= 0 || f*float64(mult) > 1<<62 {
		return 0, fmt.Errorf("%q is not a size (use bytes or a K, M, G, T suffix, e.g. 512M or 8G)", s)
	}
	return int64(f*float64(mult)) / 512 * 512, nil
}
