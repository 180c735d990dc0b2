package backup

import (
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/disklayout"
)

// The partition-oriented metadata files (.blkid, .parted, .fdisk) are
// generated from the layout we read rather than by running blkid, parted
// and fdisk: the tools may be missing (parted is not installed on Raspberry
// Pi OS Lite), their output drifts between releases, and for an image
// file they would print the image's name instead of the device names a
// restore maps. raspiBackup's restore reads only the presence of .blkid,
// LABEL and TYPE from it, and the filesystem column of .parted; the rest
// is for humans and follows util-linux 2.38 / parted 3.5 as closely as the
// layout allows.

// partName is the device name of partition p, as used in the files.
type partNamer func(n int) string

// WriteBlkid writes blkid(8) lines for every partition of d.
func WriteBlkid(w io.Writer, d *backupset.Disk, name partNamer) error {
	var b strings.Builder
	for _, p := range d.Partitions {
		fmt.Fprintf(&b, "/dev/%s:", name(p.Number))
		if p.FSType == "vfat" && p.Label != "" {
			fmt.Fprintf(&b, " LABEL_FATBOOT=%q", p.Label)
		}
		if p.Label != "" {
			fmt.Fprintf(&b, " LABEL=%q", p.Label)
		}
		if p.UUID != "" {
			fmt.Fprintf(&b, " UUID=%q", p.UUID)
		}
		if p.FSType != "" {
			fmt.Fprintf(&b, " TYPE=%q", p.FSType)
		}
		if p.PartUUID != "" {
			fmt.Fprintf(&b, " PARTUUID=%q", p.PartUUID)
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteParted writes `parted -m DEV print` output (unit "compact").
// transport is parted's name for the bus: "sd/mmc", "scsi", "nvme",
// "file", "loopback".
func WriteParted(w io.Writer, d *backupset.Disk, dev, transport, model string) error {
	var b strings.Builder
	label := d.Table
	if label == "dos" {
		label = "msdos"
	}
	ss := d.SectorSize
	if ss == 0 {
		ss = disklayout.SectorSize
	}
	b.WriteString("BYT;\n")
	fmt.Fprintf(&b, "%s:%s:%s:%d:%d:%s:%s:;\n", dev, partedSize(d.Size), transport, ss, ss, label, model)
	for _, p := range d.Partitions {
		var flags []string
		if p.Bootable {
			flags = append(flags, "boot")
		}
		switch p.Type {
		case "c", "e", "f":
			flags = append(flags, "lba")
		}
		name := ""
		if d.Table == "gpt" {
			name = p.Label
		}
		fmt.Fprintf(&b, "%d:%s:%s:%s:%s:%s:%s;\n", p.Number, partedSize(p.Start), partedSize(p.Start+p.Size-1),
			partedSize(p.Size), partedFS(p), name, strings.Join(flags, ", "))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// partedSize formats bytes in parted's "compact" unit
// (ped_unit_format_custom_byte): SI units, the largest one that leaves at
// least 10, and 2, 1 or 0 decimals below 10, 100 and above.
func partedSize(n int64) string {
	units := []struct {
		name string
		size float64
	}{{"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"kB", 1e3}, {"B", 1}}
	u := units[len(units)-1]
	for _, cand := range units {
		if float64(n) >= 10*cand.size {
			u = cand
			break
		}
	}
	d := float64(n) / u.size * (1 + 0x1p-52) // 1+DBL_EPSILON, as parted rounds
	w := d + 0.5
	switch {
	case d < 10:
		w = d + 0.005
	case d < 100:
		w = d + 0.05
	}
	p := 0
	switch {
	case w < 10:
		p = 2
	case w < 100:
		p = 1
	}
	return fmt.Sprintf("%.*f%s", p, d, u.name)
}

// partedFS is parted's name for the filesystem of p.
func partedFS(p backupset.Partition) string {
	switch p.FSType {
	case "vfat":
		switch p.Type {
		case "1":
			return "fat12"
		case "4", "6", "e":
			return "fat16"
		}
		return "fat32"
	case "swap":
		return "linux-swap(v1)"
	}
	return p.FSType
}

// WriteFdisk writes `fdisk -l DEV` output.
func WriteFdisk(w io.Writer, d *backupset.Disk, dev, model string, name partNamer) error {
	var b strings.Builder
	ss := int64(d.SectorSize)
	if ss == 0 {
		ss = disklayout.SectorSize
	}
	fmt.Fprintf(&b, "Disk %s: %s, %d bytes, %d sectors\n", dev, fdiskSize(d.Size, 2), d.Size, d.Size/ss)
	if model != "" {
		fmt.Fprintf(&b, "Disk model: %s\n", model)
	}
	fmt.Fprintf(&b, "Units: sectors of 1 * %d = %d bytes\n", ss, ss)
	fmt.Fprintf(&b, "Sector size (logical/physical): %d bytes / %d bytes\n", ss, ss)
	fmt.Fprintf(&b, "I/O size (minimum/optimal): %d bytes / %d bytes\n", ss, ss)
	fmt.Fprintf(&b, "Disklabel type: %s\n", d.Table)
	fmt.Fprintf(&b, "Disk identifier: %s\n\n", d.DiskID)
	rows := [][]string{}
	if d.Table == "gpt" {
		rows = append(rows, []string{"Device", "Start", "End", "Sectors", "Size", "Type"})
	} else {
		rows = append(rows, []string{"Device", "Boot", "Start", "End", "Sectors", "Size", "Id", "Type"})
	}
	for _, p := range d.Partitions {
		start, sectors := p.Start/ss, p.Size/ss
		row := []string{"/dev/" + name(p.Number)}
		if d.Table != "gpt" {
			boot := ""
			if p.Bootable {
				boot = "*"
			}
			row = append(row, boot)
		}
		row = append(row, fmt.Sprint(start), fmt.Sprint(start+sectors-1), fmt.Sprint(sectors), fdiskSize(p.Size, 1))
		if d.Table != "gpt" {
			row = append(row, p.Type)
		}
		row = append(row, fdiskTypeName(p.Type))
		rows = append(rows, row)
	}
	// Columns are right-aligned except the first and the last, as fdisk does.
	widths := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], len(c))
		}
	}
	for _, r := range rows {
		var cols []string
		for i, c := range r {
			switch {
			case i == 0:
				cols = append(cols, fmt.Sprintf("%-*s", widths[i], c))
			case i == len(r)-1:
				cols = append(cols, c)
			default:
				cols = append(cols, fmt.Sprintf("%*s", widths[i], c))
			}
		}
		b.WriteString(strings.TrimRight(strings.Join(cols, " "), " ") + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// fdiskSize formats bytes the way fdisk does: binary units, "GiB" with
// decimals in the disk line, "256M"/"29.5G" in the table.
func fdiskSize(n int64, style int) string {
	units := []string{"B", "K", "M", "G", "T", "P"}
	v := float64(n)
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if style == 2 {
		if i == 0 {
			return fmt.Sprintf("%d B", n)
		}
		return fmt.Sprintf("%.2f %siB", v, units[i])
	}
	if v == math.Trunc(v) || v >= 100 {
		return fmt.Sprintf("%.0f%s", math.Round(v), units[i])
	}
	return strings.TrimSuffix(fmt.Sprintf("%.1f", v), ".0") + units[i]
}

func fdiskTypeName(t string) string {
	switch strings.ToLower(t) {
	case "c":
		return "W95 FAT32 (LBA)"
	case "b":
		return "W95 FAT32"
	case "e":
		return "W95 FAT16 (LBA)"
	case "6":
		return "FAT16"
	case "83":
		return "Linux"
	case "82":
		return "Linux swap / Solaris"
	case "5":
		return "Extended"
	case "f":
		return "W95 Ext'd (LBA)"
	case "0fc63daf-8483-4772-8e79-3d69d8477de4":
		return "Linux filesystem"
	case "c12a7328-f81f-11d2-ba4b-00a0c93ec93b":
		return "EFI System"
	case "ebd0a0a2-b9e5-4433-87c0-68b6b72699c7":
		return "Microsoft basic data"
	case "0657fd6d-a4ab-43c4-84e5-0933c84b4f4f":
		return "Linux swap"
	}
	return "unknown"
}
