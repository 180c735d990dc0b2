package backupset

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// defaultSectorSize is the logical sector size of a Disk that does not
// say (disklayout.SectorSize; Pi cards and USB disks all have 512).
const defaultSectorSize = 512

// Fdisk is `fdisk -l DEV` output (<host>-backup.fdisk), for humans: a
// restore takes the layout from the .sfdisk dump. Sizes in the table are
// as fdisk prints them ("512M", "29.2G").
type Fdisk struct {
	Device     string
	Size       int64 // bytes
	Sectors    int64
	Model      string
	SectorSize int
	Table      string // "dos" or "gpt"
	DiskID     string
	Partitions []FdiskPartition
}

// FdiskPartition is one row of the partition table of Fdisk.
type FdiskPartition struct {
	Device              string // /dev/mmcblk0p1
	Boot                bool   // dos only
	Start, End, Sectors int64  // in sectors
	Size                string
	ID                  string // dos only: the MBR type, "c", "83"
	Type                string // fdisk's name of the type
}

// WriteFdisk writes `fdisk -l DEV` output.
func WriteFdisk(w io.Writer, d *Disk, dev, model string, name PartNamer) error {
	var b strings.Builder
	ss := int64(cmp.Or(d.SectorSize, defaultSectorSize))
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

// ParseFdisk parses `fdisk -l DEV` output of one disk (util-linux 2.3x):
// the header lines it knows, then the table rows below the "Device"
// heading. Lines it does not know (fdisk's notes, such as "Partition
// table entries are not in disk order") are skipped.
func ParseFdisk(r io.Reader) (*Fdisk, error) {
	out := &Fdisk{}
	sc := bufio.NewScanner(r)
	inTable := false
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "Disk /"):
			// Disk /dev/mmcblk0: 29.72 GiB, 31914983424 bytes, 62333952 sectors
			dev, rest, _ := strings.Cut(strings.TrimPrefix(line, "Disk "), ": ")
			out.Device = dev
			for _, f := range strings.Split(rest, ", ") {
				if v, ok := strings.CutSuffix(f, " bytes"); ok {
					out.Size, _ = strconv.ParseInt(v, 10, 64)
				}
				if v, ok := strings.CutSuffix(f, " sectors"); ok {
					out.Sectors, _ = strconv.ParseInt(v, 10, 64)
				}
			}
		case strings.HasPrefix(line, "Disk model: "):
			out.Model = strings.TrimPrefix(line, "Disk model: ")
		case strings.HasPrefix(line, "Units: sectors of 1 * "):
			v, _, _ := strings.Cut(strings.TrimPrefix(line, "Units: sectors of 1 * "), " ")
			out.SectorSize, _ = strconv.Atoi(v)
		case strings.HasPrefix(line, "Disklabel type: "):
			out.Table = strings.TrimPrefix(line, "Disklabel type: ")
		case strings.HasPrefix(line, "Disk identifier: "):
			out.DiskID = strings.TrimPrefix(line, "Disk identifier: ")
		case strings.HasPrefix(line, "Device "):
			inTable = true
		case inTable && strings.HasPrefix(line, "/"):
			p, err := parseFdiskRow(line, out.Table != "gpt")
			if err != nil {
				return nil, err
			}
			out.Partitions = append(out.Partitions, p)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read fdisk lines: %w", err)
	}
	return out, nil
}

// parseFdiskRow parses one row of fdisk's table: Device [Boot] Start End
// Sectors Size [Id] Type, where an empty Boot column is only spaces and
// Type may hold spaces.
func parseFdiskRow(line string, dos bool) (FdiskPartition, error) {
	f := strings.Fields(line)
	p := FdiskPartition{Device: f[0]}
	i := 1
	if dos && len(f) > 1 && f[1] == "*" {
		p.Boot, i = true, 2
	}
	want := 5 // Start End Sectors Size Type
	if dos {
		want = 6 // and Id
	}
	if len(f)-i < want {
		return p, fmt.Errorf("fdisk row %q: want %d columns after the device", line, want)
	}
	for j, v := range []*int64{&p.Start, &p.End, &p.Sectors} {
		n, err := strconv.ParseInt(f[i+j], 10, 64)
		if err != nil {
			return p, fmt.Errorf("fdisk row %q: %w", line, err)
		}
		*v = n
	}
	p.Size = f[i+3]
	i += 4
	if dos {
		p.ID = f[i]
		i++
	}
	p.Type = strings.Join(f[i:], " ")
	return p, nil
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
