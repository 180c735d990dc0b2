// Package blockdev is the Linux plumbing the engines share. It finds the
// running system's disks and answers the safety questions every writer
// asks before touching a disk (is it mounted, does it hold the running
// root, is it the disk a backup lives on), from /proc/self/mountinfo and
// sysfs rather than from the output of tools; kernel paths are fields of
// Sys so tests point them at fixtures (see blockdevtest). It also attaches
// loop devices over byte ranges, mounts and unmounts filesystems, and
// runs the disk tools (Runner). The system calls sit in _linux.go files;
// elsewhere they return errors.ErrUnsupported.
package blockdev

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// Mount is one line of /proc/self/mountinfo.
type Mount struct {
	ID, Parent   int
	Major, Minor int
	Root         string // path inside the filesystem that is mounted
	MountPoint   string
	Options      string // of this mount: a read-only bind mount says "ro"
	FSType       string
	Source       string // e.g. /dev/mmcblk0p2
	SuperOptions string // of the filesystem, shared by all its mounts
}

// Writable reports whether the filesystem is mounted read-write, through
// this mount or another: a read-only bind mount of a read-write root
// still sees it change.
func (m Mount) Writable() bool {
	opts := m.SuperOptions
	if opts == "" {
		opts = m.Options
	}
	return !slices.Contains(strings.Split(opts, ","), "ro")
}

// ParseMountInfo parses the mountinfo format (proc(5)).
func ParseMountInfo(r io.Reader) ([]Mount, error) {
	var out []Mount
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		sep := -1
		for i, s := range f {
			if s == "-" {
				sep = i
				break
			}
		}
		if sep < 6 || len(f) < sep+3 {
			return nil, fmt.Errorf("mountinfo line %d: malformed", line)
		}
		var m Mount
		var err error
		if m.ID, err = strconv.Atoi(f[0]); err != nil {
			return nil, fmt.Errorf("mountinfo line %d: id: %w", line, err)
		}
		if m.Parent, err = strconv.Atoi(f[1]); err != nil {
			return nil, fmt.Errorf("mountinfo line %d: parent: %w", line, err)
		}
		maj, min, ok := strings.Cut(f[2], ":")
		if !ok {
			return nil, fmt.Errorf("mountinfo line %d: bad dev %q", line, f[2])
		}
		if m.Major, err = strconv.Atoi(maj); err != nil {
			return nil, fmt.Errorf("mountinfo line %d: major: %w", line, err)
		}
		if m.Minor, err = strconv.Atoi(min); err != nil {
			return nil, fmt.Errorf("mountinfo line %d: minor: %w", line, err)
		}
		m.Root = unescape(f[3])
		m.MountPoint = unescape(f[4])
		m.Options = f[5]
		m.FSType = f[sep+1]
		m.Source = unescape(f[sep+2])
		if len(f) > sep+3 {
			m.SuperOptions = f[sep+3]
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	return out, nil
}

// unescape undoes the octal escapes (\040 for space) the kernel writes.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// MountAt returns the last (topmost) mount at mountpoint.
func MountAt(mounts []Mount, mountpoint string) (Mount, bool) {
	var found Mount
	ok := false
	for _, m := range mounts {
		if m.MountPoint == mountpoint {
			found, ok = m, true
		}
	}
	return found, ok
}
