package restore

import (
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/diskfs/go-diskfs/backend/file"

	"github.com/pibackup/pibackup/internal/disklayout"
)

// cmdlinePaths are where Raspberry Pi OS (cmdline.txt) and Ubuntu for the
// Pi (current/cmdline.txt with flash-kernel's A/B scheme) keep the kernel
// command line on the boot partition.
var cmdlinePaths = []string{"/cmdline.txt", "/current/cmdline.txt"}

// readCmdlines reads every cmdline.txt of the FAT filesystem at
// [start, start+size) of r (read-only), keyed by path.
func readCmdlines(r fs.File, start, size int64) (map[string]string, error) {
	fsys, err := disklayout.OpenFAT(file.New(r, true), start, size)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, p := range cmdlinePaths {
		b, err := fsys.ReadFile(p)
		if err != nil {
			continue
		}
		out[p] = string(b)
	}
	return out, nil
}

// rewriteCmdlines rewrites root= in every cmdline.txt of the FAT
// filesystem at [start, start+size) of f, in place, with go-diskfs (the
// host may not be able to mount vfat). It returns the changes made.
func rewriteCmdlines(f *os.File, start, size int64, m *ids) ([]change, error) {
	fsys, err := disklayout.OpenFAT(file.New(f, false), start, size)
	if err != nil {
		return nil, fmt.Errorf("boot partition: %w", err)
	}
	var all []change
	found := false
	for _, p := range cmdlinePaths {
		b, err := fsys.ReadFile(p)
		if err != nil {
			continue
		}
		found = true
		s, changes := m.rewriteCmdline(string(b))
		if len(changes) == 0 {
			continue
		}
		for i := range changes {
			changes[i].File = p[1:]
		}
		if _, err := disklayout.WriteFATFile(fsys, p, func(w io.Writer) (int64, error) {
			n, err := io.WriteString(w, s)
			return int64(n), err
		}); err != nil {
			return nil, fmt.Errorf("boot partition: %w", err)
		}
		all = append(all, changes...)
	}
	if !found {
		return nil, fmt.Errorf("boot partition has no cmdline.txt")
	}
	return all, nil
}

// setFATSerial writes a new volume serial into the FAT boot sector at
// start, and into the FAT32 backup boot sector when that carries the same
// serial (fsck.vfat reports a backup that differs from the primary).
func setFATSerial(f io.ReaderAt, w io.WriterAt, start int64, serial uint32) error {
	bs := make([]byte, 512)
	if _, err := f.ReadAt(bs, start); err != nil {
		return fmt.Errorf("read boot sector: %w", err)
	}
	off, err := disklayout.FATSerialOffset(bs)
	if err != nil {
		return fmt.Errorf("boot partition: %w", err)
	}
	old := binary.LittleEndian.Uint32(bs[off:])
	var v [4]byte
	binary.LittleEndian.PutUint32(v[:], serial)
	if _, err := w.WriteAt(v[:], start+off); err != nil {
		return fmt.Errorf("write FAT serial: %w", err)
	}
	if off == 67 { // FAT32: BPB_BkBootSec at 50 names the backup boot sector
		bk := int64(binary.LittleEndian.Uint16(bs[50:]))
		bps := int64(binary.LittleEndian.Uint16(bs[11:]))
		if bk > 0 && bk < 32 {
			backup := make([]byte, 512)
			if _, err := f.ReadAt(backup, start+bk*bps); err == nil && binary.LittleEndian.Uint32(backup[off:]) == old {
				if _, err := w.WriteAt(v[:], start+bk*bps+off); err != nil {
					return fmt.Errorf("write FAT backup serial: %w", err)
				}
			}
		}
	}
	return nil
}
