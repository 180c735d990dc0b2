package disklayout

import (
	"encoding/binary"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/pibackup/pibackup/internal/backupset"
)

// Logical partitions (NOOBS and PINN cards: a recovery FAT in p1, an
// extended p2, the installed systems in p5, p6, ...) live in a chain of
// extended boot records inside the extended partition. go-diskfs reads and
// writes only the four primary entries, so the chain is walked and
// written here. Each EBR is one sector with the MBR's layout: entry 1 is
// the logical partition, relative to the EBR's own sector; entry 2 points
// at the next EBR, relative to the start of the extended partition; bytes
// 510-511 are 55 AA. Linux numbers the logical partitions 5, 6, ... in
// chain order.

// maxLogical bounds the chain walk: a looping or absurdly long chain is a
// damaged table, not a disk (Linux stops at 256 partitions too).
const maxLogical = 256

// IsExtendedType reports whether an MBR type is an extended partition
// (5 CHS, f LBA, 85 Linux extended): a container for logical partitions
// with no filesystem of its own.
func IsExtendedType(t string) bool {
	switch strings.ToLower(t) {
	case "5", "f", "85":
		return true
	}
	return false
}

// IsLogical reports whether p is a logical partition of a DOS table.
func IsLogical(d *backupset.Disk, p backupset.Partition) bool {
	return d.Table == "dos" && p.Number > 4
}

// Extended returns the extended partition of a DOS layout.
func Extended(d *backupset.Disk) (backupset.Partition, bool) {
	for _, p := range d.Partitions {
		if p.Number <= 4 && IsExtendedType(p.Type) {
			return p, true
		}
	}
	return backupset.Partition{}, false
}

// readLogical walks the EBR chain of the extended partition ext and
// returns its logical partitions, numbered from 5. diskID is the MBR disk
// identifier (hex, no 0x) for their PARTUUIDs.
func readLogical(r io.ReaderAt, ext backupset.Partition, diskID string) ([]backupset.Partition, error) {
	var out []backupset.Partition
	extStart := ext.Start / SectorSize
	extEnd := (ext.Start + ext.Size) / SectorSize
	ebr := extStart
	seen := map[int64]bool{}
	sector := make([]byte, SectorSize)
	for n := 5; ; n++ {
		if len(out) >= maxLogical || seen[ebr] || ebr < extStart || ebr >= extEnd {
			return nil, fmt.Errorf("extended partition %d: EBR chain is damaged (EBR at sector %d)", ext.Number, ebr)
		}
		seen[ebr] = true
		if _, err := r.ReadAt(sector, ebr*SectorSize); err != nil {
			return nil, fmt.Errorf("extended partition %d: read EBR at sector %d: %w", ext.Number, ebr, err)
		}
		if sector[510] != 0x55 || sector[511] != 0xaa {
			if ebr == extStart {
				return nil, nil // an empty extended partition
			}
			return nil, fmt.Errorf("extended partition %d: no EBR signature at sector %d", ext.Number, ebr)
		}
		typ, start, size := entry(sector, 0)
		if typ != 0 && size != 0 {
			s := ebr + start
			if s+size > extEnd {
				return nil, fmt.Errorf("partition %d (sectors %d+%d) reaches beyond its extended partition (ends at sector %d)", n, s, size, extEnd)
			}
			out = append(out, backupset.Partition{
				Number:   n,
				Start:    s * SectorSize,
				Size:     size * SectorSize,
				Type:     strconv.FormatUint(uint64(typ), 16),
				PartUUID: fmt.Sprintf("%s-%02x", diskID, n),
				Bootable: sector[446] == 0x80,
			})
		} else if ebr != extStart {
			return nil, fmt.Errorf("extended partition %d: EBR at sector %d describes no partition", ext.Number, ebr)
		} else {
			n-- // an empty first EBR may still link to the next one
		}
		ntyp, next, _ := entry(sector, 1)
		if ntyp == 0 || next == 0 {
			return out, nil
		}
		ebr = extStart + next
	}
}

// entry decodes partition entry i (0-3) of an MBR or EBR sector.
func entry(sector []byte, i int) (typ byte, start, size int64) {
	e := sector[446+16*i : 446+16*(i+1)]
	return e[4], int64(binary.LittleEndian.Uint32(e[8:12])), int64(binary.LittleEndian.Uint32(e[12:16]))
}

// putEntry encodes an entry. CHS fields stay zero, as go-diskfs writes
// them for the primary entries: every reader since LBA uses the sector
// numbers.
func putEntry(sector []byte, i int, bootable bool, typ byte, start, size int64) {
	e := sector[446+16*i : 446+16*(i+1)]
	clear(e)
	if bootable {
		e[0] = 0x80
	}
	e[4] = typ
	binary.LittleEndian.PutUint32(e[8:12], uint32(start))
	binary.LittleEndian.PutUint32(e[12:16], uint32(size))
}

// ebrSectors returns where the EBR of each logical partition (sorted by
// start) goes: the first at the start of the extended partition, as the
// chain requires; each following one in the sector after the previous
// logical partition ends, which Validate has checked lies before the
// partition.
func ebrSectors(ext backupset.Partition, logical []backupset.Partition) []int64 {
	out := make([]int64, len(logical))
	for i := range logical {
		if i == 0 {
			out[i] = ext.Start / SectorSize
		} else {
			out[i] = (logical[i-1].Start + logical[i-1].Size) / SectorSize
		}
	}
	return out
}

// writeEBRs writes the EBR chain of d's logical partitions; with none, it
// writes an empty first EBR so that no stale chain of an earlier table
// survives.
func writeEBRs(w io.WriterAt, d *backupset.Disk) error {
	ext, ok := Extended(d)
	if !ok {
		return nil
	}
	logical := logicalPartitions(d)
	extStart := ext.Start / SectorSize
	if len(logical) == 0 {
		sector := make([]byte, SectorSize)
		sector[510], sector[511] = 0x55, 0xaa
		_, err := w.WriteAt(sector, ext.Start)
		return err
	}
	at := ebrSectors(ext, logical)
	for i, p := range logical {
		typ, err := strconv.ParseUint(p.Type, 16, 8)
		if err != nil {
			return fmt.Errorf("partition %d: MBR type %q: %w", p.Number, p.Type, err)
		}
		sector := make([]byte, SectorSize)
		putEntry(sector, 0, p.Bootable, byte(typ), p.Start/SectorSize-at[i], p.Size/SectorSize)
		if i+1 < len(logical) {
			next := logical[i+1]
			putEntry(sector, 1, false, 0x05, at[i+1]-extStart, (next.Start+next.Size)/SectorSize-at[i+1])
		}
		sector[510], sector[511] = 0x55, 0xaa
		if _, err := w.WriteAt(sector, at[i]*SectorSize); err != nil {
			return fmt.Errorf("write EBR of partition %d: %w", p.Number, err)
		}
	}
	return nil
}

// logicalPartitions returns d's logical partitions in number order.
func logicalPartitions(d *backupset.Disk) []backupset.Partition {
	var out []backupset.Partition
	for _, p := range d.Partitions {
		if IsLogical(d, p) {
			out = append(out, p)
		}
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].Number < out[j-1].Number; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// validateLogical checks the logical partitions of a DOS layout: one
// extended partition holds them all, they are numbered 5, 6, ... in disk
// order (the order Linux numbers a chain in), and before each there is a
// free sector for its EBR.
func validateLogical(d *backupset.Disk) error {
	var exts int
	for _, p := range d.Partitions {
		if p.Number <= 4 && IsExtendedType(p.Type) {
			exts++
		}
		if p.Number > 4 && IsExtendedType(p.Type) {
			return fmt.Errorf("partition %d: a logical partition cannot be an extended partition", p.Number)
		}
	}
	if exts > 1 {
		return fmt.Errorf("%d extended partitions; an MBR holds one", exts)
	}
	logical := logicalPartitions(d)
	if len(logical) == 0 {
		return nil
	}
	ext, ok := Extended(d)
	if !ok {
		return fmt.Errorf("partition %d is a logical partition, but the table has no extended partition", logical[0].Number)
	}
	at := ebrSectors(ext, logical)
	for i, p := range logical {
		switch {
		case p.Number != 5+i:
			return fmt.Errorf("partition %d should be numbered %d: logical partitions are numbered 5, 6, ... in disk order, as their EBR chain numbers them", p.Number, 5+i)
		case p.Start < ext.Start || p.Start+p.Size > ext.Start+ext.Size:
			return fmt.Errorf("partition %d lies outside its extended partition %d", p.Number, ext.Number)
		case p.Start/SectorSize <= at[i]:
			return fmt.Errorf("partition %d starts at sector %d, leaving no room for its EBR at sector %d", p.Number, p.Start/SectorSize, at[i])
		}
	}
	return nil
}
