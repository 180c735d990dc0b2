package backup

import (
	"io"

	"github.com/pibackup/pibackup/internal/backupset"
)

// The partition-oriented metadata files (.blkid, .parted, .fdisk) are
// part of the set format: backupset writes and parses them. These names
// keep the plan's call sites in write.go as they were while the engine
// is split into one file per set type; they can call backupset directly
// afterwards.

// WriteBlkid is backupset.WriteBlkid.
func WriteBlkid(w io.Writer, d *backupset.Disk, name backupset.PartNamer) error {
	return backupset.WriteBlkid(w, d, name)
}

// WriteParted is backupset.WriteParted.
func WriteParted(w io.Writer, d *backupset.Disk, dev, transport, model string) error {
	return backupset.WriteParted(w, d, dev, transport, model)
}

// WriteFdisk is backupset.WriteFdisk.
func WriteFdisk(w io.Writer, d *backupset.Disk, dev, model string, name backupset.PartNamer) error {
	return backupset.WriteFdisk(w, d, dev, model, name)
}
