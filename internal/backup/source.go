package backup

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/blockdev"
	"github.com/pibackup/pibackup/internal/disklayout"
)

// source is the disk being backed up: a disk or image given with
// --source-disk (offline), or the disk the running system boots from.
type source struct {
	path      string // image file or whole-disk device, read for dd, .img, .mbr
	isDevice  bool
	disk      *backupset.Disk
	devName   string // the disk as named in metadata files, e.g. /dev/mmcblk0
	partBase  string // kernel name of the disk, partitions are PartDevice(partBase, n)
	model     string
	transport string // for .parted
	boot      *backupset.Partition
	root      *backupset.Partition // nil when the running root is on another disk
	rootDir   string               // where the root filesystem can be read
	bootDir   string               // running system: the boot mount point, else ""
	running   bool
	mnt       *mounter
}

func (s *source) partName(n int) string { return disklayout.PartDevice(s.partBase, n) }

// partByNumber returns partition n of the source disk.
func (s *source) partByNumber(n int) (*backupset.Partition, bool) {
	return disklayout.PartitionByNumber(s.disk, n)
}

// imageDiskName is the kernel name we give the disk inside an image file:
// an image is almost always of an SD card, and raspiBackup's restore maps
// partitions by the number at the end of the name.
const imageDiskName = "mmcblk0"

// openOffline reads the layout of an unmounted disk or image and mounts
// its root filesystem read-only.
func openOffline(path string, sys blockdev.Sys) (*source, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("%w: source disk: %w", ErrPreflight, err)
	}
	s := &source{path: abs, mnt: &mounter{sys: sys}}
	switch {
	case fi.Mode().IsRegular():
		s.devName, s.partBase, s.transport = "/dev/"+imageDiskName, imageDiskName, "sd/mmc"
	case fi.Mode()&os.ModeDevice != 0 && fi.Mode()&os.ModeCharDevice == 0:
		s.isDevice = true
		p, err := sys.ByDevNum(devNum(fi))
		if err != nil {
			return nil, fmt.Errorf("%w: source disk %s: %w", ErrPreflight, path, err)
		}
		if p.Number != 0 {
			return nil, fmt.Errorf("%w: source %s is partition %d of /dev/%s; give the whole disk", ErrPreflight, path, p.Number, p.Disk)
		}
		if mounted, err := sys.MountedParts(); err == nil {
			for name, m := range mounted {
				if pp, err := sys.ByName(name); err == nil && pp.Disk == p.Disk {
					return nil, fmt.Errorf("%w: source disk %s: %w: %s at %s", ErrPreflight, path, ErrSourceMounted, name, m.MountPoint)
				}
			}
		}
		s.devName, s.partBase, s.transport = "/dev/"+p.Name, p.Name, transportOf(p.Name)
		if info, err := sys.Info(p.Name); err == nil {
			s.model = info.Model
		}
	default:
		return nil, fmt.Errorf("%w: source %s is neither an image file nor a block device", ErrPreflight, path)
	}
	if s.disk, err = disklayout.ReadFile(abs); err != nil {
		return nil, fmt.Errorf("%w: source disk: %w", ErrPreflight, err)
	}
	s.disk.Model = s.model
	s.boot, s.root = pickBootRoot(s.disk)
	if boot, root, ok := bootRootFromCmdline(abs, s.disk); ok {
		s.boot, s.root = boot, root
	}
	for i := range s.disk.Partitions {
		s.disk.Partitions[i].Device = s.partName(s.disk.Partitions[i].Number)
	}
	if s.root != nil {
		dir, err := s.mnt.mount(s, s.root)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("%w: %w", ErrPreflight, err), s.close())
		}
		s.rootDir = dir
	}
	return s, nil
}

// pickBootRoot finds the boot (first FAT) and root (first Linux
// filesystem) partitions, the pair raspiBackup's normal mode saves.
func pickBootRoot(d *backupset.Disk) (boot, root *backupset.Partition) {
	for i := range d.Partitions {
		p := &d.Partitions[i]
		switch p.FSType {
		case "vfat":
			if boot == nil {
				boot = p
			}
		case "ext2", "ext3", "ext4", "btrfs", "f2fs", "xfs":
			if root == nil {
				root = p
			}
		}
	}
	return boot, root
}

// bootRootFromCmdline finds the boot and root partitions of a card with
// more than one FAT partition (NOOBS/PINN: the recovery is p1, the
// system's boot p5 or later): the FAT whose cmdline.txt names a Linux
// filesystem of the card as root=, and that filesystem.
func bootRootFromCmdline(diskPath string, d *backupset.Disk) (boot, root *backupset.Partition, ok bool) {
	var fats []*backupset.Partition
	for i := range d.Partitions {
		if d.Partitions[i].FSType == "vfat" {
			fats = append(fats, &d.Partitions[i])
		}
	}
	if len(fats) < 2 {
		return nil, nil, false // the first FAT is the boot partition
	}
	for _, p := range fats {
		fsys, closeFn, err := openFAT(diskPath, p)
		if err != nil {
			continue
		}
		b, err := fs.ReadFile(fsys, "cmdline.txt")
		closeFn()
		if err != nil {
			continue
		}
		for _, tok := range strings.Fields(string(b)) {
			v, ok := strings.CutPrefix(tok, "root=")
			if !ok {
				continue
			}
			if n, ok := disklayout.PartitionByRef(d, v); ok {
				if r, _ := disklayout.PartitionByNumber(d, n); r.FSType != "vfat" && r.FSType != "" && r.FSType != "swap" {
					return p, r, true
				}
			}
		}
	}
	return nil, nil, false
}

// openRunning finds the running system's boot and root filesystems.
func openRunning(sys blockdev.Sys, log *slog.Logger) (*source, error) {
	rs, err := sys.FindSystem()
	if err != nil {
		return nil, fmt.Errorf("%w: find the running system: %w", ErrPreflight, err)
	}
	if rs.BootPart == nil {
		return nil, fmt.Errorf("%w: %w", ErrPreflight, ErrBootNotMounted)
	}
	disk := rs.BootPart.Disk
	s := &source{path: "/dev/" + disk, isDevice: true, devName: "/dev/" + disk, partBase: disk,
		transport: transportOf(disk), rootDir: "/", bootDir: rs.BootMount, running: true, mnt: &mounter{sys: sys}}
	if info, err := sys.Info(disk); err == nil {
		s.model = info.Model
	}
	if s.disk, err = disklayout.ReadFile(s.path); err != nil {
		return nil, fmt.Errorf("%w: boot disk: %w", ErrPreflight, err)
	}
	s.disk.Model = s.model
	for i := range s.disk.Partitions {
		s.disk.Partitions[i].Device = s.partName(s.disk.Partitions[i].Number)
	}
	var ok bool
	if s.boot, ok = s.partByNumber(rs.BootPart.Number); !ok {
		return nil, fmt.Errorf("%w: boot partition %s not in the partition table of %s", ErrPreflight, rs.BootPart.Name, s.path)
	}
	if rs.RootPart.Disk == disk {
		s.root, _ = s.partByNumber(rs.RootPart.Number)
	}
	// Read the root through a bind mount of / alone: it shows the root
	// filesystem without what is mounted on it, so mount points (/proc,
	// /boot/firmware, /mnt/usb) are saved with their own owner, mode and
	// times rather than those of the filesystem mounted there, and files
	// hidden under a mount point are saved too. Where bind mounts are not
	// allowed (a container), read / itself; --one-file-system keeps tar
	// and rsync on the root either way.
	if dir, err := s.mnt.bindRoot(); err == nil {
		s.rootDir = dir
	} else {
		log.Warn("reading the running root directly; mount points get the metadata of what is mounted on them", "err", err)
	}
	return s, nil
}

// transportOf guesses parted's transport name from a kernel disk name.
func transportOf(name string) string {
	switch {
	case strings.HasPrefix(name, "mmcblk"):
		return "sd/mmc"
	case strings.HasPrefix(name, "nvme"):
		return "nvme"
	case strings.HasPrefix(name, "loop"):
		return "loopback"
	case strings.HasPrefix(name, "vd"):
		return "virtblk"
	}
	return "scsi"
}

func (s *source) close() error {
	if s == nil || s.mnt == nil {
		return nil
	}
	return s.mnt.close()
}

// mounter mounts source partitions read-only in a private folder and
// undoes it all in close.
type mounter struct {
	sys     blockdev.Sys
	base    string
	mounted []string
}

// mount makes partition p of s readable and returns its folder. The
// mount is read-only and noload, so the source disk is not written.
func (m *mounter) mount(s *source, p *backupset.Partition) (string, error) {
	if m.base == "" {
		base, err := newMountBase()
		if err != nil {
			return "", err
		}
		m.base = base
	}
	dir := filepath.Join(m.base, s.partName(p.Number))
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", fmt.Errorf("mount folder: %w", err)
	}
	dev := ""
	var handle *os.File
	if s.isDevice && !strings.HasPrefix(s.partBase, "loop") {
		if _, err := os.Stat("/dev/" + s.partName(p.Number)); err == nil {
			dev = "/dev/" + s.partName(p.Number)
		}
	}
	if dev == "" {
		var err error
		if dev, handle, err = blockdev.AttachAutoclear(s.path, p.Start, p.Size); err != nil {
			os.Remove(dir)
			return "", err
		}
	}
	err := blockdev.MountRO(dev, dir, p.FSType)
	if handle != nil {
		handle.Close() // the mount holds the loop device now; autoclear does the rest
	}
	if err != nil {
		os.Remove(dir)
		return "", fmt.Errorf("partition %d of %s: %w", p.Number, s.path, err)
	}
	m.mounted = append(m.mounted, dir)
	return dir, nil
}
