package main

import (
	"strings"

	"github.com/pibackup/pibackup/internal/bootcmdline"
	"github.com/pibackup/pibackup/internal/source"
)

// BootLabel is the label buildimage gives the recovery's FAT partition.
const BootLabel = "RECOVERY"

// bootFiles are files whose presence marks the partition the firmware
// booted the recovery from (kernel.rpi and kernel.arm64 name the kernel
// vmlinuz; a Pi's own kernel is kernel8.img).
var bootFiles = []string{"vmlinuz", "kernel8.img", "initramfs.cpio.zst", "initramfs.cpio.gz", "initramfs.cpio"}

// candidate is a FAT partition looked at as the recovery's boot
// partition.
type candidate struct {
	disk  source.Disk
	part  source.Partition
	files map[string]bool // which of recovery.conf and bootFiles it holds
}

// bootCandidates lists the FAT partitions of disks.
func bootCandidates(disks []source.Disk) []candidate {
	var out []candidate
	for _, d := range disks {
		for _, p := range d.Partitions {
			if p.FSType == "vfat" {
				out = append(out, candidate{disk: d, part: p})
			}
		}
	}
	return out
}

// pickBoot chooses the boot partition: the one holding recovery.conf,
// else the one labelled RECOVERY, else the first holding a kernel. It
// reports false when none qualifies (then no disk is protected as the
// boot medium, and the UI says so in the log).
func pickBoot(cands []candidate) (candidate, bool) {
	for _, c := range cands {
		if c.files[bootcmdline.ConfFile] {
			return c, true
		}
	}
	for _, c := range cands {
		if strings.EqualFold(c.part.Label, BootLabel) {
			return c, true
		}
	}
	for _, c := range cands {
		for _, f := range bootFiles {
			if c.files[f] {
				return c, true
			}
		}
	}
	return candidate{}, false
}
