package blockdev

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Sys holds the kernel paths blockdev reads. The zero value is not
// usable; Host() returns the real ones.
type Sys struct {
	MountInfo string // /proc/self/mountinfo
	SysDev    string // /sys/dev/block: <major>:<minor> symlinks
	SysBlock  string // /sys/class/block
	Dev       string // /dev
}

// Host returns the paths of the running kernel.
func Host() Sys {
	return Sys{MountInfo: "/proc/self/mountinfo", SysDev: "/sys/dev/block", SysBlock: "/sys/class/block", Dev: "/dev"}
}

// OrHost is s, or the running kernel's paths when s is the zero value:
// engines take a Sys in their options so tests can point them at a fake
// sysfs, and a caller that gives none means the machine it runs on.
func (s Sys) OrHost() Sys {
	if s == (Sys{}) {
		return Host()
	}
	return s
}

// Mounts reads the mount table.
func (s Sys) Mounts() ([]Mount, error) {
	f, err := os.Open(s.MountInfo)
	if err != nil {
		return nil, fmt.Errorf("open mount table: %w", err)
	}
	defer f.Close()
	return ParseMountInfo(f)
}

// Part names a block device and, when it is a partition, its disk.
type Part struct {
	Name   string // kernel name: mmcblk0p2, sda1, nvme0n1p2, loop3, vda
	Disk   string // whole disk: mmcblk0, sda, nvme0n1; == Name for a whole disk
	Number int    // partition number, 0 for a whole disk
}

// ErrNotBlock is returned for a path or device number that is not a block
// device known to sysfs.
var ErrNotBlock = errors.New("not a block device")

// ByDevNum resolves a major:minor to its kernel name and disk via
// /sys/dev/block/M:m, which links into the device's sysfs directory;
// a partition's directory sits inside its disk's.
func (s Sys) ByDevNum(major, minor int) (Part, error) {
	link := filepath.Join(s.SysDev, fmt.Sprintf("%d:%d", major, minor))
	target, err := filepath.EvalSymlinks(link)
	if err != nil {
		return Part{}, fmt.Errorf("device %d:%d: %w", major, minor, ErrNotBlock)
	}
	p := Part{Name: filepath.Base(target), Disk: filepath.Base(target)}
	if b, err := os.ReadFile(filepath.Join(target, "partition")); err == nil {
		p.Number, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		p.Disk = filepath.Base(filepath.Dir(target))
	}
	return p, nil
}

// ByName resolves a kernel name such as "mmcblk0p2".
func (s Sys) ByName(name string) (Part, error) {
	b, err := os.ReadFile(filepath.Join(s.SysBlock, name, "dev"))
	if err != nil {
		return Part{}, fmt.Errorf("%s: %w", name, ErrNotBlock)
	}
	maj, min, err := parseDevNum(string(b))
	if err != nil {
		return Part{}, fmt.Errorf("%s: %w", name, err)
	}
	return s.ByDevNum(maj, min)
}

func parseDevNum(s string) (int, int, error) {
	a, b, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok {
		return 0, 0, fmt.Errorf("bad device number %q", s)
	}
	maj, err1 := strconv.Atoi(a)
	min, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("bad device number %q", s)
	}
	return maj, min, nil
}

// DiskInfo is what the UI and the confirmation prompt show about a disk.
type DiskInfo struct {
	Name      string // mmcblk0
	Path      string // /dev/mmcblk0
	Size      int64  // bytes
	Model     string
	Removable bool
	ReadOnly  bool
}

// Info describes whole disk name.
func (s Sys) Info(name string) (DiskInfo, error) {
	dir := filepath.Join(s.SysBlock, name)
	sectors, err := readInt(filepath.Join(dir, "size"))
	if err != nil {
		return DiskInfo{}, fmt.Errorf("%s: %w", name, ErrNotBlock)
	}
	d := DiskInfo{Name: name, Path: filepath.Join(s.Dev, name), Size: sectors * 512} // sysfs size is always in 512-byte units
	d.Model = strings.TrimSpace(readString(filepath.Join(dir, "device", "model")))
	if d.Model == "" {
		d.Model = strings.TrimSpace(readString(filepath.Join(dir, "device", "name"))) // MMC cards
	}
	if n, err := readInt(filepath.Join(dir, "removable")); err == nil {
		d.Removable = n == 1
	}
	if n, err := readInt(filepath.Join(dir, "ro")); err == nil {
		d.ReadOnly = n == 1
	}
	return d, nil
}

// Disks lists whole disks, skipping ram, zram and empty loop devices.
func (s Sys) Disks() ([]DiskInfo, error) {
	entries, err := os.ReadDir(s.SysBlock)
	if err != nil {
		return nil, fmt.Errorf("list block devices: %w", err)
	}
	var out []DiskInfo
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, "ram") || strings.HasPrefix(name, "zram") {
			continue
		}
		if _, err := os.Stat(filepath.Join(s.SysBlock, name, "partition")); err == nil {
			continue
		}
		d, err := s.Info(name)
		if err != nil || d.Size == 0 {
			continue
		}
		out = append(out, d)
	}
	return out, nil
}

func readString(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

func readInt(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}
