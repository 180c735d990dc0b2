package restore

import (
	"strings"
	"testing"

	"github.com/pibackup/pibackup/internal/i18n"
)

func TestBootOrderNote(t *testing.T) {
	for _, c := range []struct {
		board, target string
		isFile        bool
		want          bool
	}{
		{"Raspberry Pi 5 Model B Rev 1.0", "/dev/nvme0n1", false, true},
		{"Raspberry Pi 500 Rev 1.0", "/dev/nvme0n1", false, true},
		{"Raspberry Pi Compute Module 5 Rev 1.0", "/dev/nvme1n1", false, true},
		{"Raspberry Pi 5 Model B Rev 1.0", "/dev/mmcblk0", false, false},
		{"Raspberry Pi 5 Model B Rev 1.0", "/dev/sda", false, false},
		{"Raspberry Pi 5 Model B Rev 1.0", "/dev/nvme0n1p2", false, false},
		{"Raspberry Pi 5 Model B Rev 1.0", "/srv/nvme0n1", true, false},
		{"Raspberry Pi 4 Model B Rev 1.5", "/dev/nvme0n1", false, false},
		{"linux,dummy-virt", "/dev/nvme0n1", false, false},
		{"", "/dev/nvme0n1", false, false},
	} {
		note := i18n.New(i18n.English).Msg(bootOrderNote(c.board, c.target, c.isFile))
		if got := note != ""; got != c.want {
			t.Errorf("bootOrderNote(%q, %q, %v) = %q; want a note: %v", c.board, c.target, c.isFile, note, c.want)
		}
		if note != "" && (!strings.Contains(note, "BOOT_ORDER=0xf416") || !strings.Contains(note, "rpi-eeprom-config") || !strings.Contains(note, "raspi-config")) {
			t.Errorf("note %q does not say how to set the boot order", note)
		}
	}
}
