//go:build !linux

package main

import (
	"errors"

	"github.com/pibackup/pibackup/internal/backupset"
)

// readUsage has no source of figures outside Linux.
func readUsage() (backupset.RunUsage, error) {
	return backupset.RunUsage{}, errors.New("usage: only measured on Linux")
}
