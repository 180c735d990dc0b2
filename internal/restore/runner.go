package restore

import (
	"context"
	"errors"
	"io"
	"strings"

	"github.com/pibackup/pibackup/internal/blockdev"
	"github.com/pibackup/pibackup/internal/disklayout"
)

// RunTool runs a tool (found on $PATH or in the sbin folders a minimal
// $PATH lacks) as a restore does: its stdout is returned, a failure is a
// *blockdev.ToolError with the command line and the end of its stderr.
func RunTool(ctx context.Context, stdin io.Reader, name string, args ...string) ([]byte, error) {
	return blockdev.Runner{}.Run(ctx, stdin, name, args)
}

// MountImageRoot mounts the first ext2/3/4 filesystem of the raw disk
// image img read-only (a loop device over its partition) and returns the
// folder and a function that unmounts and detaches it. extract and diff
// read a dd set's root through it.
func MountImageRoot(ctx context.Context, img string) (string, func(), error) {
	d, err := disklayout.ReadFile(img)
	if err != nil {
		return "", nil, err
	}
	for _, p := range d.Partitions {
		if !strings.HasPrefix(p.FSType, "ext") {
			continue
		}
		a, err := blockdev.AttachPartition(ctx, img, 0, p.Start, p.Size, true)
		if err != nil {
			return "", nil, err
		}
		mnt, unmount, err := blockdev.MountExt4(a.Path, true)
		if err != nil {
			a.Detach()
			return "", nil, err
		}
		return mnt, func() { unmount(); a.Detach() }, nil
	}
	return "", nil, errors.New("no ext2/3/4 root filesystem in the image")
}
