package blockdev

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// System is where the running Pi's filesystems live.
type System struct {
	Root      Mount
	RootPart  Part
	Boot      *Mount // nil when /boot is not a mount of its own
	BootPart  *Part
	BootMount string // "/boot/firmware" (Bookworm and later) or "/boot"
}

// Disks returns the whole disks the system lives on: one for a card, two
// when root sits on a USB or NVMe disk.
func (s System) Disks() []string {
	out := []string{s.RootPart.Disk}
	if s.BootPart != nil && s.BootPart.Disk != s.RootPart.Disk {
		out = append([]string{s.BootPart.Disk}, out...)
	}
	return out
}

// FindSystem finds the running root and boot filesystems and their
// devices. Bookworm mounts the boot partition at /boot/firmware; older
// releases at /boot.
func (s Sys) FindSystem() (*System, error) {
	mounts, err := s.Mounts()
	if err != nil {
		return nil, err
	}
	root, ok := MountAt(mounts, "/")
	if !ok {
		return nil, errors.New("no mount at / in the mount table")
	}
	sys := &System{Root: root}
	if sys.RootPart, err = s.ByDevNum(root.Major, root.Minor); err != nil {
		return nil, fmt.Errorf("root filesystem %s is not on a block device (%s): %w", root.Source, root.FSType, err)
	}
	for _, mp := range []string{"/boot/firmware", "/boot"} {
		if m, ok := MountAt(mounts, mp); ok {
			p, err := s.ByDevNum(m.Major, m.Minor)
			if err != nil {
				return nil, fmt.Errorf("boot filesystem at %s: %w", mp, err)
			}
			sys.Boot, sys.BootPart, sys.BootMount = &m, &p, mp
			break
		}
	}
	return sys, nil
}

// MountedParts returns the kernel names of every mounted block device,
// each with its first mount.
func (s Sys) MountedParts() (map[string]Mount, error) {
	mounts, err := s.Mounts()
	if err != nil {
		return nil, err
	}
	out := map[string]Mount{}
	for _, m := range mounts {
		if p, err := s.ByDevNum(m.Major, m.Minor); err == nil {
			// The first mount of a device is where it was mounted;
			// later ones are bind mounts (backupctl's own read-only view
			// of the running root among them).
			if _, seen := out[p.Name]; !seen {
				out[p.Name] = m
			}
		}
	}
	return out, nil
}

// DiskOfPath returns the whole disk holding the file or folder at path
// (for a path on a loop device, the loop disk).
func (s Sys) DiskOfPath(path string) (Part, error) {
	major, minor, err := devOf(path)
	if err != nil {
		return Part{}, err
	}
	return s.ByDevNum(major, minor)
}

// Target errors: each names what is wrong and what to do.
var (
	ErrTargetMounted   = errors.New("target disk has mounted filesystems")
	ErrTargetIsRoot    = errors.New("target disk holds the running system")
	ErrTargetIsSource  = errors.New("target disk holds the backup being read")
	ErrTargetPartition = errors.New("target is a partition, not a whole disk")
)

// CheckTarget refuses a block device that must not be overwritten: a
// partition instead of a disk, a disk with anything mounted, the disk of
// the running root, or the disk holding any of the paths in protect
// (the backup set, the recovery's own medium). Regular files (image
// targets) pass when none of protect is the file itself.
func (s Sys) CheckTarget(target string, protect ...string) error {
	fi, err := os.Stat(target)
	if err != nil {
		if os.IsNotExist(err) {
			return nil // a new image file
		}
		return fmt.Errorf("target %s: %w", target, err)
	}
	if fi.Mode().IsRegular() {
		for _, p := range protect {
			if pa, err := filepath.Abs(p); err == nil {
				if ta, _ := filepath.Abs(target); ta == pa {
					return fmt.Errorf("%s: %w", target, ErrTargetIsSource)
				}
			}
		}
		return nil
	}
	if fi.Mode()&os.ModeDevice == 0 || fi.Mode()&os.ModeCharDevice != 0 {
		return fmt.Errorf("target %s is neither an image file nor a block device", target)
	}
	tp, err := s.ByDevNum(rdevOf(fi))
	if err != nil {
		return fmt.Errorf("target %s: %w", target, err)
	}
	if tp.Number != 0 {
		return fmt.Errorf("%s is partition %d of %s; give the whole disk /dev/%s: %w", target, tp.Number, tp.Disk, tp.Disk, ErrTargetPartition)
	}
	mounted, err := s.MountedParts()
	if err != nil {
		return err
	}
	if sys, err := s.FindSystem(); err == nil {
		for _, d := range sys.Disks() {
			if d == tp.Disk {
				return fmt.Errorf("%s: %w; restore to another disk", target, ErrTargetIsRoot)
			}
		}
	}
	for name, m := range mounted {
		p, err := s.ByName(name)
		if err == nil && p.Disk == tp.Disk {
			return fmt.Errorf("%s: %s is mounted at %s; unmount it first (umount %s): %w", target, name, m.MountPoint, m.MountPoint, ErrTargetMounted)
		}
	}
	for _, path := range protect {
		if p, err := s.DiskOfPath(path); err == nil && p.Disk == tp.Disk {
			return fmt.Errorf("%s holds %s: %w", target, path, ErrTargetIsSource)
		}
	}
	return nil
}
