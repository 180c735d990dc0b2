// Package blockdevtest builds fake kernel views (mountinfo and sysfs) for
// tests of the safety checks that read them.
package blockdevtest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/pibackup/pibackup/internal/blockdev"
)

// PiMountInfo is a Pi 4's mount table: root and boot on the SD card, a
// USB disk mounted at a folder with a space in its name.
const PiMountInfo = `22 1 179:2 / / rw,noatime shared:1 - ext4 /dev/mmcblk0p2 rw
23 22 0:5 / /dev rw,nosuid shared:2 - devtmpfs udev rw
30 22 179:1 / /boot/firmware rw,relatime shared:5 - vfat /dev/mmcblk0p1 rw,fmask=0022
41 22 8:1 / /mnt/My\040Backups rw,relatime shared:7 - ext4 /dev/sda1 rw
`

// PiSys builds a sysfs tree like a Pi 4's, an SD card (mmcblk0, 179:0,
// two partitions) and a USB disk (sda, 8:0, one partition), with
// mountinfo as the mount table.
func PiSys(t testing.TB, mountinfo string) blockdev.Sys {
	t.Helper()
	dir := t.TempDir()
	s := blockdev.Sys{MountInfo: filepath.Join(dir, "mountinfo"), SysDev: filepath.Join(dir, "dev", "block"), SysBlock: filepath.Join(dir, "class", "block"), Dev: "/dev"}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(s.MountInfo, []byte(mountinfo), 0o644))
	must(os.MkdirAll(s.SysDev, 0o755))
	must(os.MkdirAll(s.SysBlock, 0o755))
	add := func(devPath, name, devnum string, part int, size string) {
		d := filepath.Join(dir, "devices", devPath)
		must(os.MkdirAll(d, 0o755))
		must(os.WriteFile(filepath.Join(d, "dev"), []byte(devnum+"\n"), 0o644))
		must(os.WriteFile(filepath.Join(d, "size"), []byte(size+"\n"), 0o644))
		if part > 0 {
			must(os.WriteFile(filepath.Join(d, "partition"), []byte{byte('0' + part), '\n'}, 0o644))
		} else {
			must(os.MkdirAll(filepath.Join(d, "device"), 0o755))
			must(os.WriteFile(filepath.Join(d, "removable"), []byte("1\n"), 0o644))
		}
		must(os.Symlink(d, filepath.Join(s.SysDev, devnum)))
		must(os.Symlink(d, filepath.Join(s.SysBlock, name)))
	}
	add("mmc/mmcblk0", "mmcblk0", "179:0", 0, "62333952")
	add("mmc/mmcblk0/mmcblk0p1", "mmcblk0p1", "179:1", 1, "1048576")
	add("mmc/mmcblk0/mmcblk0p2", "mmcblk0p2", "179:2", 2, "61276160")
	add("usb/sda", "sda", "8:0", 0, "1953525168")
	add("usb/sda/sda1", "sda1", "8:1", 1, "1953523120")
	must(os.WriteFile(filepath.Join(dir, "devices", "usb/sda/device/model"), []byte("Extreme SSD     \n"), 0o644))
	return s
}
