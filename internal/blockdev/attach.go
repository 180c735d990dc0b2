package blockdev

import (
	"context"
	"fmt"
	"os"
	"strings"
)

// Attached is a partition made reachable as a block device.
type Attached struct {
	Path   string // the device to mkfs, mount or read
	detach func() error
}

// Detach releases the loop device, if one was made. Safe to call twice.
func (a *Attached) Detach() error {
	if a == nil || a.detach == nil {
		return nil
	}
	d := a.detach
	a.detach = nil
	return d()
}

// AttachPartition makes the byte range [start, start+size) of an image
// file or disk reachable as a block device. For a real disk whose
// partition node exists (/dev/mmcblk0p2) that node is used; otherwise
// (image files, loop devices, which get no partition nodes on every
// kernel) a loop device is attached over the range with the loop ioctls.
// partNum names the node to look for; 0 forces a loop device.
func AttachPartition(ctx context.Context, disk string, partNum int, start, size int64, readOnly bool) (*Attached, error) {
	fi, err := os.Stat(disk)
	if err != nil {
		return nil, fmt.Errorf("attach partition of %s: %w", disk, err)
	}
	if fi.Mode()&os.ModeDevice != 0 && partNum > 0 && !strings.HasPrefix(disk, "/dev/loop") {
		node := partNode(disk, partNum)
		if _, err := os.Stat(node); err == nil {
			return &Attached{Path: node}, nil
		}
	}
	dev, err := attachLoop(disk, start, size, readOnly)
	if err != nil {
		return nil, fmt.Errorf("attach bytes %d+%d of %s to a loop device: %w", start, size, disk, err)
	}
	return &Attached{Path: dev, detach: func() error { return detachLoop(dev, disk) }}, nil
}

func partNode(disk string, n int) string {
	last := disk[len(disk)-1]
	if last >= '0' && last <= '9' {
		return fmt.Sprintf("%sp%d", disk, n)
	}
	return fmt.Sprintf("%s%d", disk, n)
}
