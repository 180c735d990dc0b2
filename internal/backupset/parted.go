package backupset

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Parted is `parted -m DEV print` output (<host>-backup.parted). Sizes
// are as parted prints them in its "compact" unit ("4194kB", "31.9GB"):
// the file is for humans and for the filesystem column, not for offsets
// (those come from the .sfdisk dump).
type Parted struct {
	Device, Size, Transport       string
	LogicalSector, PhysicalSector int
	Label, Model                  string // Label is parted's: "msdos" or "gpt"
	Partitions                    []PartedPartition
}

// PartedPartition is one partition line of Parted.
type PartedPartition struct {
	Number           int
	Start, End, Size string
	FS, Name         string // FS: fat16, fat32, ext4, linux-swap(v1), ...
	Flags            []string
}

// FSByNumber is the filesystem column by partition number: parted tells
// FAT16 from FAT32, which blkid does not.
func (p *Parted) FSByNumber() map[int]string {
	out := map[int]string{}
	for _, q := range p.Partitions {
		out[q.Number] = q.FS
	}
	return out
}

// WriteParted writes `parted -m DEV print` output (unit "compact").
// transport is parted's name for the bus: "sd/mmc", "scsi", "nvme",
// "file", "loopback".
func WriteParted(w io.Writer, d *Disk, dev, transport, model string) error {
	var b strings.Builder
	label := d.Table
	if label == "dos" {
		label = "msdos"
	}
	ss := cmp.Or(d.SectorSize, defaultSectorSize)
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

// ParseParted parses `parted -m print` output:
//
//	BYT;
//	/dev/mmcblk0:31.9GB:sd/mmc:512:512:msdos:SD32G:;
//	1:4194kB:541MB:537MB:fat32::lba;
//
// A partition line starts with its number and has at least the
// filesystem column; other lines before the partitions are skipped, as
// are lines that are neither.
func ParseParted(r io.Reader) (*Parted, error) {
	out := &Parted{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Split(strings.TrimSuffix(strings.TrimSpace(sc.Text()), ";"), ":")
		if n, err := strconv.Atoi(f[0]); err == nil && n > 0 && strconv.Itoa(n) == f[0] {
			if len(f) < 5 {
				continue
			}
			q := PartedPartition{Number: n, Start: f[1], End: f[2], Size: f[3], FS: f[4]}
			if len(f) > 5 {
				q.Name = f[5]
			}
			if len(f) > 6 && f[6] != "" {
				q.Flags = strings.Split(f[6], ", ")
			}
			out.Partitions = append(out.Partitions, q)
			continue
		}
		if len(f) >= 7 && strings.HasPrefix(f[0], "/") && out.Device == "" && len(out.Partitions) == 0 {
			out.Device, out.Size, out.Transport, out.Label, out.Model = f[0], f[1], f[2], f[5], f[6]
			out.LogicalSector, _ = strconv.Atoi(f[3])
			out.PhysicalSector, _ = strconv.Atoi(f[4])
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read parted lines: %w", err)
	}
	return out, nil
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
func partedFS(p Partition) string {
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
