package disklayout

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"

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

// WriteFATFile creates (or truncates) the file name, an absolute path, on
// a go-diskfs FAT filesystem, with its folder, and fills it with fill.
// The restore, the boot-line rewrite and the recovery image builder all
// write FAT files this way; go-diskfs needs the folder made first and the
// file closed to write its directory entry.
func WriteFATFile(fsys filesystem.FileSystem, name string, fill func(io.Writer) (int64, error)) (int64, error) {
	if dir := path.Dir(name); dir != "/" && dir != "." {
		if err := fsys.Mkdir(dir); err != nil {
			return 0, fmt.Errorf("FAT mkdir %s: %w", dir, err)
		}
	}
	w, err := fsys.OpenFile(name, os.O_CREATE|os.O_RDWR|os.O_TRUNC)
	if err != nil {
		return 0, fmt.Errorf("FAT create %s: %w", name, err)
	}
	n, err := fill(w)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, fmt.Errorf("FAT write %s: %w", name, err)
	}
	return n, nil
}
