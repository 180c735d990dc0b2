package disklayout

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/diskfs/go-diskfs/partition/gpt"
	"github.com/diskfs/go-diskfs/partition/mbr"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/size"
)

// Alignment is where partitions start and how grown partitions end: 1 MiB,
// what sfdisk, parted and the Raspberry Pi Imager use. It keeps partitions
// on erase-block boundaries of SD cards.
const Alignment = 1 << 20

// gptReserved is what a GPT keeps at the end of a disk: the backup header
// (1 sector) and the backup partition array (128 entries × 128 bytes = 32
// sectors). A partition must end before it.
const gptReserved = 33 * SectorSize

// mbrMaxBytes is the largest disk an MBR can address: 2^32 sectors.
const mbrMaxBytes = (1 << 32) * SectorSize

// TooSmallError says how many bytes a target needs. Callers show it as is:
// it names both sizes.
type TooSmallError struct {
	What string // "target", "root partition", ...
	Need int64
	Have int64
}

func (e *TooSmallError) Error() string {
	return fmt.Sprintf("%s too small: %s needed, %s available (%d bytes needed)", e.What, size.Format(e.Need), size.Format(e.Have), e.Need)
}

// ErrTooSmall matches any *TooSmallError with errors.Is.
var ErrTooSmall = errors.New("target too small")

// Is lets errors.Is(err, ErrTooSmall) match.
func (e *TooSmallError) Is(target error) bool { return target == ErrTooSmall }

// End returns the byte just past the last partition of d: the smallest
// disk that holds the layout, not counting a GPT's backup header.
func End(d *backupset.Disk) int64 {
	var end int64
	for _, p := range d.Partitions {
		end = max(end, p.Start+p.Size)
	}
	return end
}

// MinDiskSize returns the smallest disk that holds d's partitions
// unchanged, including the space a GPT needs after the last one.
func MinDiskSize(d *backupset.Disk) int64 {
	if d.Table == "gpt" {
		return End(d) + gptReserved
	}
	return End(d)
}

// UsableEnd returns the byte just past the last byte a partition may use
// on a disk of size bytes with the given table type.
func UsableEnd(table string, size int64) int64 {
	if table == "gpt" {
		return size - gptReserved
	}
	return min(size, mbrMaxBytes)
}

// ResizeOptions tunes Resize.
type ResizeOptions struct {
	// MinSize is the smallest size the resized partition may get: the data
	// that must fit in it plus filesystem overhead. 0 means "any size".
	MinSize int64
	// KeepFollowing forbids moving partitions that come after the resized
	// one. A dd restore sets it: the data of those partitions sits at fixed
	// offsets in the image.
	KeepFollowing bool
}

// ResizeResult tells what Resize did.
type ResizeResult struct {
	Number  int   // the resized partition, 0 when none was resized
	OldSize int64 // its size before, bytes
	NewSize int64 // its size after, bytes
}

// Resize returns a copy of d laid out for a disk of size bytes: the last
// Linux partition (the root filesystem on a Pi, the one raspiBackup
// resizes) grows or shrinks so that the layout fills the disk, and
// partitions after it move by the same amount (unless
// opts.KeepFollowing); the extended partition holding it, when it is a
// logical partition, changes size with it. It refuses, with a *TooSmallError naming the bytes
// needed, a disk on which that partition would be smaller than
// opts.MinSize or on which the other partitions do not fit. Without a
// Linux partition the layout is kept as is if it fits.
//
// A resized last partition fills the disk up to its last usable 4 KiB;
// when partitions follow, the resized one changes by whole MiB so that
// they stay aligned.
func Resize(d *backupset.Disk, size int64, opts ResizeOptions) (*backupset.Disk, ResizeResult, error) {
	out := cloneDisk(d)
	out.Size = size
	var res ResizeResult
	usable := UsableEnd(d.Table, size)
	idx := -1
	for i, p := range d.Partitions {
		if IsLinuxType(p.Type) && (idx < 0 || p.Start > d.Partitions[idx].Start) {
			idx = i
		}
	}
	if idx < 0 {
		if end := End(d); end > usable {
			return nil, res, &TooSmallError{What: "target", Need: size - usable + end, Have: size}
		}
		return out, res, nil
	}
	rp := d.Partitions[idx]
	res.Number, res.OldSize = rp.Number, rp.Size
	// Partitions after the resized one, in disk order, and the room they
	// take (they keep their sizes and their gaps).
	var after int64
	var following []int
	for i, p := range d.Partitions {
		if i != idx && p.Start >= rp.Start {
			following = append(following, i)
			after = max(after, p.Start+p.Size-(rp.Start+rp.Size))
		}
	}
	// A logical partition's extended partition ends with it and the
	// logical partitions after it: it changes size by the same amount.
	container := -1
	for i, p := range d.Partitions {
		if contains(d, p, rp) {
			container = i
			after = max(after, p.Start+p.Size-(rp.Start+rp.Size))
		}
	}
	if len(following) > 0 && opts.KeepFollowing {
		if end := End(d); end > usable {
			return nil, res, &TooSmallError{What: "target", Need: size - usable + end, Have: size}
		}
		res.NewSize = rp.Size
		return out, res, nil
	}
	newSize := usable - after - rp.Start
	if len(following) > 0 {
		// Partitions that move keep their alignment.
		newSize -= newSize % Alignment
	} else {
		// The last partition ends at the last usable 4 KiB, like sfdisk's
		// "fill the rest" but on a filesystem-block boundary.
		newSize -= newSize % 4096
	}
	need := opts.MinSize
	if need <= 0 {
		need = Alignment
	}
	if newSize < need {
		// The disk needs to be larger by what is missing, rounded up so the
		// next attempt's alignment cannot eat it.
		missing := need - newSize
		missing = (missing + Alignment - 1) / Alignment * Alignment
		return nil, res, &TooSmallError{What: "target", Need: size + missing, Have: size}
	}
	delta := newSize - rp.Size
	out.Partitions[idx].Size = newSize
	if container >= 0 {
		out.Partitions[container].Size += delta
	}
	for _, i := range following {
		out.Partitions[i].Start += delta
	}
	res.NewSize = newSize
	return out, res, nil
}

func cloneDisk(d *backupset.Disk) *backupset.Disk {
	out := *d
	out.Partitions = append([]backupset.Partition(nil), d.Partitions...)
	return &out
}

// Validate checks that d can be written to a disk of d.Size bytes:
// partitions are inside the usable area, do not overlap, have numbers an
// MBR or GPT can hold, and an MBR's logical partitions lie in its
// extended partition in an order an EBR chain can hold (validateLogical).
func Validate(d *backupset.Disk) error {
	usable := UsableEnd(d.Table, d.Size)
	first := int64(SectorSize)
	if d.Table == "gpt" {
		first = 34 * SectorSize
	}
	_, hasExtended := Extended(d)
	for i, p := range d.Partitions {
		switch {
		case d.Table == "dos" && p.Number > 4 && !hasExtended:
			return fmt.Errorf("partition %d is a logical partition, but the table has no extended partition", p.Number)
		case p.Number < 1 || (d.Table == "dos" && p.Number > 4+maxLogical) || (d.Table != "dos" && p.Number > 128):
			return fmt.Errorf("partition %d: number out of range for a %s table", p.Number, d.Table)
		case p.Start < 0 || p.Size > math.MaxInt64-p.Start:
			// Start+Size below would wrap around and pass every check.
			return fmt.Errorf("partition %d: start %d and size %d lie beyond the end of any disk", p.Number, p.Start, p.Size)
		case p.Start%SectorSize != 0 || p.Size%SectorSize != 0 || p.Size <= 0:
			return fmt.Errorf("partition %d: start %d / size %d not whole sectors", p.Number, p.Start, p.Size)
		case p.Start < first:
			return fmt.Errorf("partition %d starts at %d, inside the partition table", p.Number, p.Start)
		case p.Start+p.Size > usable:
			return &TooSmallError{What: "target", Need: d.Size - usable + p.Start + p.Size, Have: d.Size}
		}
		for _, q := range d.Partitions[i+1:] {
			if q.Number == p.Number {
				return fmt.Errorf("partition %d appears twice", p.Number)
			}
			if contains(d, p, q) || contains(d, q, p) {
				continue // an extended partition and one of its logical partitions
			}
			if p.Start < q.Start+q.Size && q.Start < p.Start+p.Size {
				return fmt.Errorf("partitions %d and %d overlap", p.Number, q.Number)
			}
		}
	}
	if d.Table == "dos" {
		return validateLogical(d)
	}
	return nil
}

// contains reports whether ext is the extended partition of a DOS table
// and p one of its logical partitions.
func contains(d *backupset.Disk, ext, p backupset.Partition) bool {
	return d.Table == "dos" && ext.Number <= 4 && IsExtendedType(ext.Type) && IsLogical(d, p)
}

// WriteOptions tunes WriteTable.
type WriteOptions struct {
	// BootCode is up to 440 bytes of MBR boot code to keep in front of a
	// DOS table (raspiBackup's <host>-backup.mbr holds it). The Pi's
	// firmware ignores it, but a disk copied from a PC may need it.
	BootCode []byte
	// Wipe zeroes the areas where the other table kind lives (GPT headers
	// at LBA 1 and at the end of the disk when writing an MBR; the MBR
	// boot code when writing a GPT), so blkid and the kernel see exactly
	// one partition table.
	Wipe bool
}

// Disk is what WriteTable writes to: an image file, a block device, or a
// buffer in tests.
type Disk interface {
	io.ReaderAt
	io.WriterAt
}

// WriteTable writes d's partition table (DOS or GPT) to w natively with
// go-diskfs, using d.Size as the disk size and d.DiskID and each
// partition's PartUUID as the identifiers (a GPT gets random GUIDs where
// they are empty). It writes nothing else: filesystems are the caller's.
func WriteTable(w Disk, d *backupset.Disk, opts WriteOptions) error {
	if err := Validate(d); err != nil {
		return fmt.Errorf("write partition table: %w", err)
	}
	f := &writableFile{Disk: w, size: d.Size}
	switch d.Table {
	case "dos":
		return writeMBR(f, d, opts)
	case "gpt":
		return writeGPT(f, d, opts)
	}
	return fmt.Errorf("write partition table: table type %q not supported", d.Table)
}

func writeMBR(f *writableFile, d *backupset.Disk, opts WriteOptions) error {
	id, err := ParseMBRDiskID(d.DiskID)
	if err != nil {
		return fmt.Errorf("write partition table: %w", err)
	}
	t := &mbr.Table{LogicalSectorSize: SectorSize, PhysicalSectorSize: SectorSize}
	for _, p := range d.Partitions {
		if p.Number > 4 {
			continue // logical: in the EBR chain (writeEBRs)
		}
		typ, err := strconv.ParseUint(p.Type, 16, 8)
		if err != nil {
			return fmt.Errorf("write partition table: partition %d: MBR type %q: %w", p.Number, p.Type, err)
		}
		for len(t.Partitions) < p.Number-1 {
			// A gap in the numbering (p1, p3): an empty slot keeps p3 in
			// entry 3. go-diskfs writes the slice in order.
			t.Partitions = append(t.Partitions, &mbr.Partition{Index: len(t.Partitions) + 1, Type: mbr.Empty})
		}
		t.Partitions = append(t.Partitions, &mbr.Partition{
			// Index must be set: go-diskfs finds partitions by it.
			Index:    p.Number,
			Bootable: p.Bootable,
			Type:     mbr.Type(typ),
			Start:    uint32(p.Start / SectorSize),
			Size:     uint32(p.Size / SectorSize),
		})
	}
	sortMBR(t.Partitions)
	sector := make([]byte, SectorSize)
	if _, err := f.ReadAt(sector, 0); err != nil && err != io.EOF {
		return fmt.Errorf("write partition table: read sector 0: %w", err)
	}
	if opts.BootCode != nil {
		clear(sector[:440])
		copy(sector[:440], opts.BootCode)
	}
	// The disk identifier (bytes 440..443) is what Linux turns into the
	// PARTUUIDs <id>-01, <id>-02 that cmdline.txt and fstab name.
	// go-diskfs only writes from byte 446 on, so it is written here.
	binary.LittleEndian.PutUint32(sector[440:444], id)
	sector[444], sector[445] = 0, 0
	if _, err := f.WriteAt(sector[:446], 0); err != nil {
		return fmt.Errorf("write partition table: %w", err)
	}
	if opts.Wipe {
		if err := wipeGPT(f, d.Size); err != nil {
			return fmt.Errorf("write partition table: %w", err)
		}
	}
	if err := t.Write(f, d.Size); err != nil {
		return fmt.Errorf("write partition table: %w", err)
	}
	if err := writeEBRs(f, d); err != nil {
		return fmt.Errorf("write partition table: %w", err)
	}
	return nil
}

func sortMBR(ps []*mbr.Partition) {
	for i := 1; i < len(ps); i++ {
		for j := i; j > 0 && ps[j].Index < ps[j-1].Index; j-- {
			ps[j], ps[j-1] = ps[j-1], ps[j]
		}
	}
}

// wipeGPT zeroes both GPT headers, so a disk that had a GPT before is not
// seen as one (blkid and the kernel would otherwise find the old table).
func wipeGPT(f *writableFile, size int64) error {
	zero := make([]byte, SectorSize)
	for _, off := range []int64{SectorSize, size - SectorSize} {
		if off <= 0 {
			continue
		}
		hdr := make([]byte, 8)
		if _, err := f.ReadAt(hdr, off); err != nil && err != io.EOF {
			return fmt.Errorf("read sector at %d: %w", off, err)
		}
		if string(hdr) != "EFI PART" {
			continue
		}
		if _, err := f.WriteAt(zero, off); err != nil {
			return fmt.Errorf("wipe GPT header at %d: %w", off, err)
		}
	}
	return nil
}

func writeGPT(f *writableFile, d *backupset.Disk, opts WriteOptions) error {
	t := &gpt.Table{
		LogicalSectorSize:  SectorSize,
		PhysicalSectorSize: SectorSize,
		GUID:               strings.ToUpper(d.DiskID),
		ProtectiveMBR:      true,
	}
	for _, p := range d.Partitions {
		t.Partitions = append(t.Partitions, &gpt.Partition{
			Index: p.Number,
			Start: uint64(p.Start / SectorSize),
			End:   uint64((p.Start+p.Size)/SectorSize - 1),
			Size:  uint64(p.Size),
			Type:  gpt.Type(strings.ToUpper(p.Type)),
			Name:  gptName(p),
			GUID:  strings.ToUpper(p.PartUUID),
		})
	}
	// go-diskfs writes entry i of the array from t.Partitions[i]; a
	// partition numbered n must be entry n-1, so gaps become unused entries.
	var entries []*gpt.Partition
	for _, p := range t.Partitions {
		for len(entries) < p.Index-1 {
			entries = append(entries, &gpt.Partition{Index: len(entries) + 1, Type: gpt.Unused})
		}
		if len(entries) >= p.Index {
			entries[p.Index-1] = p
			continue
		}
		entries = append(entries, p)
	}
	t.Partitions = entries
	if opts.Wipe {
		// Old MBR boot code must not survive under a protective MBR.
		if _, err := f.WriteAt(make([]byte, 446), 0); err != nil {
			return fmt.Errorf("write partition table: %w", err)
		}
	}
	if err := t.Write(f, d.Size); err != nil {
		return fmt.Errorf("write partition table: %w", err)
	}
	if err := writeEBRs(f, d); err != nil {
		return fmt.Errorf("write partition table: %w", err)
	}
	return nil
}

// gptName is the partition name to write: Read puts the partition name in
// Label when the filesystem has none, so a label is the best we have.
func gptName(p backupset.Partition) string {
	if len(p.Label) > 36 {
		return p.Label[:36]
	}
	return p.Label
}

// ParseMBRDiskID parses a DOS disk identifier as sfdisk prints it
// ("0x5e3da1b7") or as go-diskfs reports it ("5e3da1b7").
func ParseMBRDiskID(s string) (uint32, error) {
	v, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(s), "0x"), 16, 32)
	if err != nil {
		return 0, fmt.Errorf("disk id %q: %w", s, err)
	}
	return uint32(v), nil
}

// FormatMBRDiskID formats a DOS disk identifier as sfdisk and Read do.
func FormatMBRDiskID(id uint32) string { return fmt.Sprintf("0x%08x", id) }

// MBRPartUUID is the PARTUUID Linux gives partition n of a DOS disk.
func MBRPartUUID(id uint32, n int) string { return fmt.Sprintf("%08x-%02x", id, n) }

// ReadTable reads the partition table from the first bytes of a disk
// image held in head (at least 34 sectors for a GPT; the backup GPT is not
// needed). It is for streams, such as a compressed dd image, whose
// filesystems cannot be probed: FSType, UUID and Label stay empty. size is
// the disk size when known (0: the end of the last partition).
func ReadTable(head []byte, size int64) (*backupset.Disk, error) {
	if len(head) < SectorSize || head[510] != 0x55 || head[511] != 0xaa {
		return nil, ErrNoTable
	}
	f := &writableFile{Disk: bytesDisk(head), size: int64(len(head))}
	d := &backupset.Disk{Size: size, SectorSize: SectorSize}
	if head[450] == 0xee && len(head) >= 34*SectorSize {
		t, err := gpt.Read(f, SectorSize, SectorSize)
		if err != nil {
			return nil, fmt.Errorf("read GPT: %w", err)
		}
		fromGPT(d, t)
	} else {
		t, err := mbr.Read(f, SectorSize, SectorSize)
		if err != nil {
			return nil, fmt.Errorf("read MBR: %w", err)
		}
		fromMBR(d, t)
	}
	if d.Size == 0 {
		d.Size = MinDiskSize(d)
	}
	return d, nil
}

type bytesDisk []byte

func (b bytesDisk) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(b)) {
		return 0, io.EOF
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (b bytesDisk) WriteAt([]byte, int64) (int, error) {
	return 0, errors.New("BUG: write to a read-only table buffer")
}

// writableFile dresses a Disk up as the backend.WritableFile go-diskfs
// wants (fs.File + io.Seeker); only ReadAt and WriteAt are ever used.
type writableFile struct {
	Disk
	size int64
	off  int64
}

func (w *writableFile) Stat() (fs.FileInfo, error) { return sizeInfo(w.size), nil }
func (w *writableFile) Read(p []byte) (int, error) {
	n, err := w.ReadAt(p, w.off)
	w.off += int64(n)
	return n, err
}
func (w *writableFile) Close() error { return nil }
func (w *writableFile) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
		w.off = off
	case io.SeekCurrent:
		w.off += off
	case io.SeekEnd:
		w.off = w.size + off
	}
	return w.off, nil
}

// Sync passes through to the underlying file, so go-diskfs' crash-safe
// GPT write order reaches the disk in that order.
func (w *writableFile) Sync() error {
	if s, ok := w.Disk.(interface{ Sync() error }); ok {
		return s.Sync()
	}
	return nil
}

type sizeInfo int64

func (s sizeInfo) Name() string       { return "disk" }
func (s sizeInfo) Size() int64        { return int64(s) }
func (s sizeInfo) Mode() fs.FileMode  { return 0o600 }
func (s sizeInfo) ModTime() time.Time { return time.Time{} }
func (s sizeInfo) IsDir() bool        { return false }
func (s sizeInfo) Sys() any           { return nil }
