package blockdev

import (
	"strings"
	"testing"
)

// FuzzParseMountInfo parses arbitrary mountinfo text. The kernel writes
// it, but the safety checks (mounted target, running root) stand on it,
// so a line it cannot read must be an error, never a panic, and every
// mount it returns must carry a mount point and a filesystem type.
func FuzzParseMountInfo(f *testing.F) {
	f.Add("22 1 179:2 / / rw,noatime shared:1 - ext4 /dev/mmcblk0p2 rw\n" +
		"25 22 179:1 / /boot/firmware rw,relatime shared:7 - vfat /dev/mmcblk0p1 rw,fmask=0022\n")
	f.Add(`36 35 98:0 /mnt1 /mnt/with\040space rw,noatime master:1 - ext3 /dev/root rw,errors=continue` + "\n")
	f.Add("1 2 3:4 / / rw - - x y\n")
	f.Add(`40 22 0:35 / /a\134b rw - tmpfs tmpfs\011x rw` + "\n")
	f.Add("1 1 81 / / rw - ext4 /dev/sda1 rw\n")
	f.Fuzz(func(t *testing.T, text string) {
		ms, err := ParseMountInfo(strings.NewReader(text))
		if err != nil {
			return
		}
		for _, m := range ms {
			if m.MountPoint == "" || m.FSType == "" {
				t.Fatalf("mount %+v without mount point or type", m)
			}
		}
		if len(ms) > 0 {
			if _, ok := MountAt(ms, ms[len(ms)-1].MountPoint); !ok {
				t.Fatalf("MountAt does not find %q", ms[len(ms)-1].MountPoint)
			}
		}
	})
}
