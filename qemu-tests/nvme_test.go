//go:build !race

package qemutests

import (
	"strings"
	"testing"
)

// TestRestoreNVMe restores onto an NVMe disk, as on a Pi 5 with an M.2
// HAT (QEMU's nvme device on virt: the kernel names it nvme0n1 and its
// partitions nvme0n1p1, ...), and boots the restored NVMe disk. Unattended
// mode only takes a target the recovery's disk discovery lists, so the
// restore also proves that nvme0n1 is offered as a target.
func TestRestoreNVMe(t *testing.T) {
	a := requireArtifacts(t)
	c := stageCase(t, a, usbSource(t), "tgz", nil)
	keys := []string{"recovery.source=" + c.url, "recovery.set=latest", "recovery.target=/dev/nvme0n1", "recovery.yes=1", "recovery.after=poweroff"}
	cfg := VMConfig{Arch: "arm64", Kernel: a.boot.Kernel, Initrd: a.boot.Initramfs,
		Append: a.boot.Cmdline + " " + strings.Join(keys, " "),
		Drives: append([]Drive{{Path: c.rec}, {Path: c.target, NVMe: true}}, c.drives...)}
	res := bootRecoveryVM(t, c.work, cfg, nil)
	if res.Error != "" || !res.Verified || res.Target != "/dev/nvme0n1" {
		t.Fatalf("restore in the guest: %+v", res)
	}
	judge(t, c.fx, c.target)
	bootRestoredDrive(t, a, c.work, Drive{Path: c.target, NVMe: true, ReadOnly: true})
}
