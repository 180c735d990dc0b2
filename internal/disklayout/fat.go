package disklayout

import (
	"errors"
	"fmt"

	"github.com/diskfs/go-diskfs/backend"
	"github.com/diskfs/go-diskfs/filesystem"
	"github.com/diskfs/go-diskfs/filesystem/fat16"
	"github.com/diskfs/go-diskfs/filesystem/fat32"
)

// OpenFAT opens the FAT32 or FAT16 filesystem in [start, start+size) of
// st with go-diskfs: the backup host, the recovery and a restore test
// read and write boot partitions without a vfat driver.
func OpenFAT(st backend.Storage, start, size int64) (filesystem.FileSystem, error) {
	fs32, err32 := fat32.Read(st, size, start, 512)
	if err32 == nil {
		return fs32, nil
	}
	fs16, err16 := fat16.Read(st, size, start, 512)
	if err16 == nil {
		return fs16, nil
	}
	return nil, fmt.Errorf("no FAT filesystem: %w", errors.Join(err32, err16))
}
