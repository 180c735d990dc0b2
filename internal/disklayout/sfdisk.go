package disklayout

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/pibackup/pibackup/internal/backupset"
)

// WriteSfdisk writes d in the text format of `sfdisk --dump` (util-linux
// 2.38), which raspiBackup keeps as <host>-backup.sfdisk. dev is the device
// name to print, e.g. /dev/mmcblk0.
func WriteSfdisk(w io.Writer, d *backupset.Disk, dev string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "label: %s\n", d.Table)
	fmt.Fprintf(&b, "label-id: %s\n", d.DiskID)
	fmt.Fprintf(&b, "device: %s\n", dev)
	b.WriteString("unit: sectors\n")
	if d.Table == "gpt" {
		last := d.Size/SectorSize - 34
		fmt.Fprintf(&b, "first-lba: 34\nlast-lba: %d\n", last)
	}
	fmt.Fprintf(&b, "sector-size: %d\n\n", SectorSize)
	for _, p := range d.Partitions {
		fmt.Fprintf(&b, "%s : start=%12d, size=%12d, type=%s", PartDevice(dev, p.Number), p.Start/SectorSize, p.Size/SectorSize, p.Type)
		if d.Table == "gpt" {
			fmt.Fprintf(&b, ", uuid=%s", strings.ToUpper(p.PartUUID))
			if p.Label != "" {
				fmt.Fprintf(&b, ", name=%q", p.Label)
			}
		}
		if p.Bootable {
			b.WriteString(", bootable")
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// ParseSfdisk reads sfdisk --dump text as written by any util-linux release
// raspiBackup users have met: with or without sector-size:, with
// first-lba/last-lba, with sizes in sectors. Unknown header keys are
// ignored rather than fatal; that drift is what broke raspiBackup restores.
// PartUUIDs of dos tables are derived from label-id as the kernel does.
func ParseSfdisk(r io.Reader) (*backupset.Disk, error) {
	d := &backupset.Disk{SectorSize: SectorSize}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	line := 0
	var lastLBA int64
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		if dev, rest, ok := strings.Cut(s, " : "); ok {
			p, err := parsePartLine(dev, rest, d.SectorSize)
			if err != nil {
				return nil, fmt.Errorf("sfdisk dump line %d: %w", line, err)
			}
			d.Partitions = append(d.Partitions, p)
			continue
		}
		k, v, ok := strings.Cut(s, ":")
		if !ok {
			return nil, fmt.Errorf("sfdisk dump line %d: unrecognized %q", line, s)
		}
		v = strings.TrimSpace(v)
		switch strings.TrimSpace(k) {
		case "label":
			d.Table = v
		case "label-id":
			d.DiskID = v
		case "device":
			d.Device = v
		case "unit":
			if v != "sectors" {
				return nil, fmt.Errorf("sfdisk dump line %d: unit %q not supported", line, v)
			}
		case "sector-size":
			n, err := strconv.Atoi(v)
			if err != nil || n < 512 || n&(n-1) != 0 {
				return nil, fmt.Errorf("sfdisk dump line %d: bad sector-size %q", line, v)
			}
			d.SectorSize = n
		case "last-lba":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("sfdisk dump line %d: bad last-lba %q", line, v)
			}
			lastLBA = n
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read sfdisk dump: %w", err)
	}
	switch d.Table {
	case "dos", "gpt":
	case "":
		return nil, fmt.Errorf("sfdisk dump has no label: line")
	default:
		return nil, fmt.Errorf("sfdisk dump: partition table %q not supported", d.Table)
	}
	if len(d.Partitions) == 0 {
		return nil, fmt.Errorf("sfdisk dump lists no partitions")
	}
	for i := range d.Partitions {
		p := &d.Partitions[i]
		// Sizes were read in sectors of the dump's sector size.
		p.Start *= int64(d.SectorSize)
		p.Size *= int64(d.SectorSize)
		if d.Table == "dos" && p.PartUUID == "" {
			p.PartUUID = fmt.Sprintf("%s-%02x", strings.TrimPrefix(strings.ToLower(d.DiskID), "0x"), p.Number)
		}
		if end := p.Start + p.Size; end > d.Size {
			d.Size = end
		}
	}
	if lastLBA > 0 {
		d.Size = (lastLBA + 34) * int64(d.SectorSize)
	}
	return d, nil
}

func parsePartLine(dev, rest string, _ int) (backupset.Partition, error) {
	var p backupset.Partition
	dev = strings.TrimSpace(dev)
	i := len(dev)
	for i > 0 && dev[i-1] >= '0' && dev[i-1] <= '9' {
		i--
	}
	n, err := strconv.Atoi(dev[i:])
	if err != nil {
		return p, fmt.Errorf("partition device %q has no number", dev)
	}
	p.Number = n
	p.Device = strings.TrimPrefix(dev, "/dev/")
	for _, field := range splitFields(rest) {
		k, v, _ := strings.Cut(field, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "start":
			p.Start, err = strconv.ParseInt(v, 10, 64)
		case "size":
			p.Size, err = strconv.ParseInt(v, 10, 64)
		case "type", "Id":
			p.Type = strings.ToLower(v)
			if len(v) > 2 {
				p.Type = strings.ToUpper(v)
			}
		case "uuid":
			p.PartUUID = strings.ToLower(v)
		case "name":
			p.Label, _ = strconv.Unquote(v)
		case "bootable":
			p.Bootable = true
		}
		if err != nil {
			return p, fmt.Errorf("field %q: %w", field, err)
		}
	}
	if p.Size <= 0 || p.Start <= 0 || p.Type == "" {
		return p, fmt.Errorf("partition %s lacks start, size or type", dev)
	}
	return p, nil
}

// splitFields splits on commas outside double quotes (GPT names may hold
// commas).
func splitFields(s string) []string {
	var out []string
	var cur strings.Builder
	quoted := false
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
			cur.WriteRune(r)
		case r == ',' && !quoted:
			out = append(out, cur.String())
			cur.Reset()
		default:
			cur.WriteRune(r)
		}
	}
	if strings.TrimSpace(cur.String()) != "" {
		out = append(out, cur.String())
	}
	return out
}
