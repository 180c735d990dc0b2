package restore

import (
	"errors"
	"strings"
	"testing"

	"github.com/pibackup/pibackup/internal/blockdev"
	"github.com/pibackup/pibackup/internal/blockdev/blockdevtest"
	"github.com/pibackup/pibackup/internal/testfs"
)

// TestTargetCheckFakeSys runs the restore's and the clone's target check
// against a Pi's sysfs and mount table that this machine does not have:
// the card holding the running root, a USB disk with a mounted partition
// and a partition instead of a disk are refused with the error that says
// so, and a disk with nothing mounted is not refused by the safety check.
// Before the engines took a blockdev.Sys, they read the host's sysfs,
// where none of these devices exist.
func TestTargetCheckFakeSys(t *testing.T) {
	testfs.Require(t, "root") // mknod of the device nodes
	pi := blockdevtest.PiSys(t, blockdevtest.PiMountInfo)
	card := blockdevtest.BlockNode(t, "mmcblk0", 179, 0)
	usb := blockdevtest.BlockNode(t, "sda", 8, 0)
	usb1 := blockdevtest.BlockNode(t, "sda1", 8, 1)
	for _, c := range []struct {
		sys    blockdev.Sys
		target string
		want   error
	}{
		{pi, card, blockdev.ErrTargetIsRoot},
		{pi, usb, blockdev.ErrTargetMounted},
		{pi, usb1, blockdev.ErrTargetPartition},
	} {
		_, err := inspectTarget(c.sys, c.target, 0, nil)
		if !errors.Is(err, c.want) || !errors.Is(err, ErrTarget) {
			t.Errorf("inspectTarget(%s) = %v; want %v", c.target, err, c.want)
		}
	}
	// The USB disk with nothing mounted on it: the safety check passes,
	// and what follows (reading the node's size) fails on this machine,
	// which has no such disk.
	idle := blockdevtest.PiSys(t, "22 1 179:2 / / rw - ext4 /dev/mmcblk0p2 rw\n")
	_, err := inspectTarget(idle, usb, 0, nil)
	for _, refused := range []error{blockdev.ErrTargetIsRoot, blockdev.ErrTargetMounted, blockdev.ErrTargetPartition, blockdev.ErrNotBlock} {
		if errors.Is(err, refused) {
			t.Errorf("idle disk: %v; the safety check refused it", err)
		}
	}

	// The clone finds the running system in the same sysfs: its source
	// is the fake Pi's card, which this machine lacks, so the plan stops
	// at reading /dev/mmcblk0.
	_, err = NewClonePlan(t.Context(), CloneOptions{Target: usb, Sys: pi})
	if err == nil || !strings.Contains(err.Error(), "source /dev/mmcblk0") {
		t.Errorf("NewClonePlan = %v; want the fake running system's card as the source", err)
	}
}
