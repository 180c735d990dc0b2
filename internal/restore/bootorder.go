package restore

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/pibackup/pibackup/internal/i18n"
)

// HostBoard is the model of the machine this program runs on, as its
// device tree names it ("Raspberry Pi 5 Model B Rev 1.0"), or "" when
// there is none (a PC, QEMU's virt has "linux,dummy-virt").
func HostBoard() string {
	b, err := os.ReadFile("/proc/device-tree/model")
	if err != nil {
		return ""
	}
	return strings.TrimRight(string(b), "\x00\n")
}

// nvmeDiskRE matches the kernel's name of a whole NVMe namespace.
var nvmeDiskRE = regexp.MustCompile(`^nvme\d+n\d+$`)

// bootOrderNote is the plan's note for a Pi 5 (or 500, CM5) restoring
// onto an NVMe disk. Its EEPROM bootloader tries the boot media in the
// order of BOOT_ORDER, read right to left (raspberrypi docs "Raspberry Pi
// bootloader configuration"): 0xf416 is NVMe (6), then SD (1), then USB
// (4), then start again (f), so the restored disk boots even with a card
// in the slot. The zero Msg for any other board or target.
func bootOrderNote(board, target string, isFile bool) i18n.Msg {
	if isFile || !nvmeDiskRE.MatchString(filepath.Base(target)) {
		return i18n.Msg{}
	}
	if !strings.HasPrefix(board, "Raspberry Pi 5") && !strings.HasPrefix(board, "Raspberry Pi Compute Module 5") {
		return i18n.Msg{}
	}
	return i18n.M(i18n.NoteBootOrder, board, target)
}
