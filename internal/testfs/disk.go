package testfs

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

const (
	sectorSize = 512
	mib        = 1 << 20

	// DefaultDiskID is the MBR disk identifier BuildPiDisk uses unless told
	// otherwise. Raspberry Pi OS derives PARTUUIDs from it ("5e3da1b7-02").
	DefaultDiskID uint32 = 0x5e3da1b7
	// DefaultDiskSize is the default image size.
	DefaultDiskSize int64 = 256 * mib
	// DefaultBootSize is the default size of the FAT32 boot partition. With
	// one 512-byte sector per cluster it has ~129000 clusters, comfortably
	// above the 65525 that FAT32 requires.
	DefaultBootSize int64 = 64 * mib
	// bootStartSector matches Raspberry Pi OS images (4 MiB alignment).
	bootStartSector = 8192
	// bootFileTime is the mtime of the files on the boot partition; FAT
	// stores local time in 2-second steps, so it is an even second.
	bootFileTime = "2024-03-14T15:09:26Z"
)

// DiskOptions configures BuildPiDisk. The zero value gives a 256 MiB image
// named pi.img with disk id DefaultDiskID.
type DiskOptions struct {
	Name     string // file name inside dir; default "pi.img"
	Size     int64  // image size in bytes, a multiple of 1 MiB; default DefaultDiskSize
	BootSize int64  // FAT32 partition size in bytes, a multiple of 1 MiB; default DefaultBootSize
	DiskID   uint32 // MBR disk identifier; default DefaultDiskID
	// RootUUID is the ext4 file system UUID; default derived from DiskID.
	RootUUID string
	// Hostname goes to /etc/hostname; default "raspberrypi".
	Hostname string
}

// PiDisk describes an image built by BuildPiDisk. Offsets and sizes are in
// bytes from the start of the image.
type PiDisk struct {
	Path         string
	DiskID       uint32
	BootStart    int64
	BootSize     int64
	RootStart    int64
	RootSize     int64
	BootPARTUUID string // e.g. "5e3da1b7-01"
	RootPARTUUID string // e.g. "5e3da1b7-02"
	BootVolumeID string // FAT volume serial, e.g. "5E3D-A1B7"
	RootUUID     string // ext4 UUID
	Cmdline      string // content of cmdline.txt on the boot partition
	Fstab        string // content of /etc/fstab on the root partition
}

// BuildPiDisk creates dir/opts.Name, a raw disk image laid out like a
// Raspberry Pi OS SD card: a DOS partition table with the given disk id,
// partition 1 FAT32 (type 0x0c) labelled "bootfs" starting at sector 8192
// with config.txt, cmdline.txt (root=PARTUUID=<id>-02), a random
// kernel8.img, DTBs and overlays/; partition 2 ext4 (type 0x83) labelled
// "rootfs" filling the rest, holding Populate's tree with an /etc/fstab that
// names both PARTUUIDs.
//
// It needs root and a free loop device, because the ext4 is populated
// through a real mount (the kernel then writes ACLs, capabilities and
// xattrs exactly as on a Pi). The loop device is always detached.
func BuildPiDisk(dir string, opts DiskOptions) (d *PiDisk, err error) {
	ctx := context.Background()
	opts.Name = cmp.Or(opts.Name, "pi.img")
	opts.Size = cmp.Or(opts.Size, DefaultDiskSize)
	opts.BootSize = cmp.Or(opts.BootSize, DefaultBootSize)
	opts.DiskID = cmp.Or(opts.DiskID, DefaultDiskID)
	opts.RootUUID = cmp.Or(opts.RootUUID, fmt.Sprintf("%08x-0000-4000-8000-000000000002", opts.DiskID))
	bootStart := int64(bootStartSector * sectorSize)
	if opts.Size%mib != 0 || opts.BootSize%mib != 0 || bootStart+opts.BootSize+32*mib > opts.Size {
		return nil, fmt.Errorf("build pi disk: size %d, boot size %d: want multiples of 1 MiB leaving at least 32 MiB for rootfs", opts.Size, opts.BootSize)
	}
	d = &PiDisk{
		Path:         filepath.Join(dir, opts.Name),
		DiskID:       opts.DiskID,
		BootStart:    bootStart,
		BootSize:     opts.BootSize,
		RootStart:    bootStart + opts.BootSize,
		RootSize:     opts.Size - bootStart - opts.BootSize,
		BootPARTUUID: fmt.Sprintf("%08x-01", opts.DiskID),
		RootPARTUUID: fmt.Sprintf("%08x-02", opts.DiskID),
		BootVolumeID: fmt.Sprintf("%04X-%04X", opts.DiskID>>16, opts.DiskID&0xffff),
		RootUUID:     opts.RootUUID,
	}
	d.Cmdline = fmt.Sprintf("console=serial0,115200 console=tty1 root=PARTUUID=%s rootfstype=ext4 fsck.repair=yes rootwait\n", d.RootPARTUUID)
	d.Fstab = fmt.Sprintf("proc                  /proc           proc    defaults          0       0\n"+
		"PARTUUID=%s  /boot/firmware  vfat    defaults          0       2\n"+
		"PARTUUID=%s  /               ext4    defaults,noatime  0       1\n", d.BootPARTUUID, d.RootPARTUUID)

	f, err := os.OpenFile(d.Path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("build pi disk: %w", err)
	}
	err = f.Truncate(opts.Size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("build pi disk: %w", err)
	}
	defer func() {
		if err != nil {
			os.Remove(d.Path)
			d = nil
		}
	}()
	if _, err := run(ctx, nil, []byte(sfdiskScript(d)), "sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", d.Path); err != nil {
		return nil, fmt.Errorf("build pi disk: partition: %w", err)
	}
	if err := buildBoot(ctx, d); err != nil {
		return nil, fmt.Errorf("build pi disk: boot partition: %w", err)
	}
	if err := buildRoot(ctx, d, opts.Hostname); err != nil {
		return nil, fmt.Errorf("build pi disk: root partition: %w", err)
	}
	return d, nil
}

// sfdiskScript is the sfdisk(8) input for d's partition table. The second
// partition has no size so that it fills the disk.
func sfdiskScript(d *PiDisk) string {
	return fmt.Sprintf("label: dos\nlabel-id: %#08x\nunit: sectors\n\n"+
		"start=%d, size=%d, type=c\n"+
		"start=%d, type=83\n",
		d.DiskID, d.BootStart/sectorSize, d.BootSize/sectorSize, d.RootStart/sectorSize)
}

// mtoolsSkipCheck makes mtools accept a file system whose size is not a
// whole number of (fictional) tracks.
const mtoolsSkipCheck = "MTOOLS_SKIP_CHECK=1"

func mtoolsImage(img string, offset int64) string { return fmt.Sprintf("%s@@%d", img, offset) }

func buildBoot(ctx context.Context, d *PiDisk) error {
	// -s 1: 512-byte clusters, so that a 64 MiB partition has enough
	// clusters for FAT32. -h: hidden sectors = partition start, as the Pi
	// firmware and fsck expect. Not --invariant: it overrides -i with
	// 1234-ABCD.
	if _, err := run(ctx, nil, nil, "mkfs.vfat", "-F", "32", "-s", "1", "-S", strconv.Itoa(sectorSize),
		"-n", "bootfs", "-i", fmt.Sprintf("%08X", d.DiskID),
		"--offset", strconv.FormatInt(d.BootStart/sectorSize, 10),
		"-h", strconv.FormatInt(d.BootStart/sectorSize, 10),
		d.Path, strconv.FormatInt(d.BootSize/1024, 10)); err != nil {
		return err
	}
	stage, err := os.MkdirTemp("", "testfs-boot-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(stage)
	if err := writeBootFiles(stage, d); err != nil {
		return err
	}
	ents, err := os.ReadDir(stage)
	if err != nil {
		return err
	}
	args := []string{"-s", "-m", "-Q", "-i", mtoolsImage(d.Path, d.BootStart)}
	for _, e := range ents {
		args = append(args, filepath.Join(stage, e.Name()))
	}
	_, err = run(ctx, []string{mtoolsSkipCheck}, nil, "mcopy", append(args, "::/")...)
	return err
}

// writeBootFiles stages the boot partition's files in dir.
func writeBootFiles(dir string, d *PiDisk) error {
	rng := rand.NewChaCha8([32]byte([]byte("pibackup testfs boot files seed!")))
	random := func(n int) []byte {
		b := make([]byte, n)
		_, _ = rng.Read(b)
		return b
	}
	// A flattened device tree starts with the magic 0xd00dfeed; tools that
	// sniff DTBs should not choke on ours.
	dtb := func(n int) []byte { return append([]byte{0xd0, 0x0d, 0xfe, 0xed}, random(n-4)...) }
	files := []struct {
		name string
		data []byte
	}{
		{"config.txt", []byte("# Pi-like test image built by internal/testfs\narm_64bit=1\nenable_uart=1\ndtoverlay=vc4-kms-v3d\n")},
		{"cmdline.txt", []byte(d.Cmdline)},
		{"kernel8.img", random(3 * mib)},
		{"bcm2710-rpi-3-b.dtb", dtb(32 << 10)},
		{"bcm2711-rpi-4-b.dtb", dtb(48 << 10)},
		{"overlays/README", []byte("Overlays go here.\n")},
		{"overlays/vc4-kms-v3d.dtbo", dtb(4 << 10)},
	}
	mtime, err := time.Parse(time.RFC3339, bootFileTime)
	if err != nil {
		return fmt.Errorf("BUG: %w", err)
	}
	for _, f := range files {
		p := filepath.Join(dir, filepath.FromSlash(f.name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, f.data, 0o644); err != nil {
			return err
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			return err
		}
	}
	return nil
}

func buildRoot(ctx context.Context, d *PiDisk, hostname string) (err error) {
	dev, err := attachLoop(ctx, d.Path, d.RootStart, d.RootSize, false)
	if err != nil {
		return err
	}
	defer func() {
		if derr := detachLoop(ctx, dev); derr != nil {
			err = errors.Join(err, derr)
		}
	}()
	// 4 KiB blocks and 256-byte inodes as on a real Pi (mke2fs would pick
	// 1 KiB blocks for a file system this small; 128-byte inodes cannot
	// hold nanosecond timestamps). Eager init so that no ext4lazyinit
	// thread is writing when we detach.
	if _, err := run(ctx, nil, nil, "mkfs.ext4", "-q", "-F", "-b", "4096", "-I", "256",
		"-L", "rootfs", "-U", d.RootUUID, "-E", "lazy_itable_init=0,lazy_journal_init=0", dev); err != nil {
		return err
	}
	mnt, err := os.MkdirTemp("", "testfs-root-")
	if err != nil {
		return err
	}
	defer os.Remove(mnt)
	if err := mountExt4(dev, mnt, false); err != nil {
		return err
	}
	defer func() {
		if uerr := unix.Unmount(mnt, 0); uerr != nil {
			err = errors.Join(err, fmt.Errorf("unmount %s: %w", mnt, uerr))
		}
	}()
	return Populate(mnt, PopulateOptions{Fstab: d.Fstab, Hostname: hostname})
}

// Fsck checks both file systems of d without root: e2fsck -fn on the ext4
// (through e2fsprogs' "?offset=" syntax) and fsck.vfat -n on a copy of the
// FAT partition (fsck.vfat has no offset option).
func (d *PiDisk) Fsck() error {
	ctx := context.Background()
	if _, err := run(ctx, nil, nil, "e2fsck", "-fn", fmt.Sprintf("%s?offset=%d", d.Path, d.RootStart)); err != nil {
		return fmt.Errorf("fsck rootfs: %w", err)
	}
	boot, err := os.CreateTemp("", "testfs-bootfs-")
	if err != nil {
		return err
	}
	defer os.Remove(boot.Name())
	err = copyRange(boot, d.Path, d.BootStart, d.BootSize)
	if cerr := boot.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fsck bootfs: %w", err)
	}
	if _, err := run(ctx, nil, nil, "fsck.vfat", "-n", boot.Name()); err != nil {
		return fmt.Errorf("fsck bootfs: %w", err)
	}
	return nil
}

func copyRange(dst *os.File, src string, offset, size int64) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, mib)
	for done := int64(0); done < size; {
		n, err := f.ReadAt(buf[:min(int64(len(buf)), size-done)], offset+done)
		if err != nil {
			return err
		}
		if _, err := dst.Write(buf[:n]); err != nil {
			return err
		}
		done += int64(n)
	}
	return nil
}

// ExtractFile reads fatPath (e.g. "cmdline.txt" or "/overlays/README") from
// the FAT file system that starts offset bytes into img, using mtools, so
// neither root nor a vfat-capable kernel is needed.
func ExtractFile(img string, offset int64, fatPath string) ([]byte, error) {
	out, err := run(context.Background(), []string{mtoolsSkipCheck}, nil, "mtype", "-i", mtoolsImage(img, offset), "::/"+strings.TrimPrefix(fatPath, "/"))
	if err != nil {
		return nil, fmt.Errorf("extract %s: %w", fatPath, err)
	}
	return out, nil
}

// ReadRootFile reads the file at path (absolute inside the file system)
// from the ext4 file system that starts offset bytes into img, using
// debugfs without mounting.
func ReadRootFile(img string, offset int64, path string) ([]byte, error) {
	// debugfs splits its command line itself and knows only double quotes.
	if strings.ContainsAny(path, "\"\n") {
		return nil, fmt.Errorf("read %q: debugfs cannot quote this path", path)
	}
	p, err := lookTool("debugfs")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(p, "-R", `cat "`+path+`"`, fmt.Sprintf("%s?offset=%d", img, offset))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	// debugfs exits 0 when the file is missing; the only stderr line it
	// prints on success is its version banner.
	var complaints []string
	for l := range strings.Lines(stderr.String()) {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "debugfs ") {
			complaints = append(complaints, l)
		}
	}
	if err == nil && len(complaints) > 0 {
		err = errors.New(strings.Join(complaints, "; "))
	}
	if err != nil {
		return nil, fmt.Errorf("read %s from %s: %w", path, img, err)
	}
	return stdout.Bytes(), nil
}
