package restoretest

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path"

	"github.com/diskfs/go-diskfs/backend/file"
	"golang.org/x/sys/unix"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/disklayout"
)

// processAlive reports whether a process with that PID exists.
func processAlive(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}

// tool runs a judging tool and returns its combined output.
func tool(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.Bytes(), err
}

// readFATFile reads name from the FAT boot partition p of the image with
// go-diskfs (the machine may have no vfat driver).
func readFATFile(img string, p *backupset.Partition, name string) ([]byte, error) {
	f, err := os.Open(img)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fsys, err := disklayout.OpenFAT(file.New(f, true), p.Start, p.Size)
	if err != nil {
		return nil, err
	}
	return fsys.ReadFile(path.Join("/", name))
}
