package disklayout

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/size"
)

const mib = 1 << 20

func piDisk(size int64) *backupset.Disk {
	return &backupset.Disk{Size: size, SectorSize: 512, Table: "dos", DiskID: "0x5e3da1b7", Partitions: []backupset.Partition{
		{Number: 1, Start: 4 * mib, Size: 512 * mib, Type: "c", PartUUID: "5e3da1b7-01"},
		{Number: 2, Start: 516 * mib, Size: size - 516*mib, Type: "83", PartUUID: "5e3da1b7-02"},
	}}
}

func TestResize(t *testing.T) {
	withSwap := piDisk(8192 * mib)
	withSwap.Partitions[1].Size = 6000 * mib
	withSwap.Partitions = append(withSwap.Partitions, backupset.Partition{Number: 3, Start: 6516 * mib, Size: 1024 * mib, Type: "82"})
	gptDisk := &backupset.Disk{Size: 4096 * mib, Table: "gpt", DiskID: "A", Partitions: []backupset.Partition{
		{Number: 1, Start: mib, Size: 256 * mib, Type: "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"},
		{Number: 2, Start: 257 * mib, Size: 4096*mib - 257*mib - 33*512, Type: "0FC63DAF-8483-4772-8E79-3D69D8477DE4"},
	}}
	tests := []struct {
		name     string
		d        *backupset.Disk
		size     int64
		opts     ResizeOptions
		wantSize map[int]int64
		wantPos  map[int]int64
		need     int64 // >0: want a TooSmallError with this Need
	}{
		{name: "grow", d: piDisk(4096 * mib), size: 16384 * mib, wantSize: map[int]int64{1: 512 * mib, 2: 16384*mib - 516*mib}},
		{name: "shrink", d: piDisk(16384 * mib), size: 4096 * mib, opts: ResizeOptions{MinSize: 2000 * mib}, wantSize: map[int]int64{2: 4096*mib - 516*mib}},
		{name: "same", d: piDisk(4096 * mib), size: 4096 * mib, wantSize: map[int]int64{2: 4096*mib - 516*mib}},
		{name: "unaligned disk", d: piDisk(4096 * mib), size: 4096*mib + 7*512, wantSize: map[int]int64{2: 4096*mib - 516*mib}},
		{name: "too small", d: piDisk(16384 * mib), size: 2048 * mib, opts: ResizeOptions{MinSize: 2000 * mib}, need: 2048*mib + 468*mib},
		{name: "boot does not fit", d: piDisk(16384 * mib), size: 100 * mib, need: 517 * mib},
		{name: "swap moves", d: withSwap, size: 16384 * mib, wantSize: map[int]int64{2: 16384*mib - 516*mib - 1024*mib, 3: 1024 * mib}, wantPos: map[int]int64{3: 16384*mib - 1024*mib}},
		{name: "swap kept for dd", d: withSwap, size: 16384 * mib, opts: ResizeOptions{KeepFollowing: true}, wantSize: map[int]int64{2: 6000 * mib}, wantPos: map[int]int64{3: 6516 * mib}},
		{name: "swap kept, too small", d: withSwap, size: 4096 * mib, opts: ResizeOptions{KeepFollowing: true}, need: 7540 * mib},
		{name: "gpt grow", d: gptDisk, size: 8192 * mib, wantSize: map[int]int64{2: 8192*mib - 257*mib - 20480}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := Resize(tt.d, tt.size, tt.opts)
			if tt.need > 0 {
				var ts *TooSmallError
				if !errors.As(err, &ts) || !errors.Is(err, ErrTooSmall) {
					t.Fatalf("Resize = %v; want TooSmallError", err)
				}
				if ts.Need != tt.need {
					t.Errorf("Need = %d (%s); want %d (%s)", ts.Need, size.Format(ts.Need), tt.need, size.Format(tt.need))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Size != tt.size {
				t.Errorf("Size = %d", got.Size)
			}
			for n, want := range tt.wantSize {
				p, _ := PartitionByNumber(got, n)
				if p.Size != want {
					t.Errorf("partition %d size = %d; want %d", n, p.Size, want)
				}
			}
			for n, want := range tt.wantPos {
				p, _ := PartitionByNumber(got, n)
				if p.Start != want {
					t.Errorf("partition %d start = %d; want %d", n, p.Start, want)
				}
			}
			if err := Validate(got); err != nil {
				t.Errorf("Validate: %v", err)
			}
			if &got.Partitions[0] == &tt.d.Partitions[0] {
				t.Error("Resize shares the partition slice with its input")
			}
		})
	}
}

func TestValidate(t *testing.T) {
	overlap := piDisk(4096 * mib)
	overlap.Partitions[1].Start = 100 * mib
	logical := piDisk(4096 * mib)
	logical.Partitions = append(logical.Partitions, backupset.Partition{Number: 5, Start: 3000 * mib, Size: mib, Type: "83"})
	for name, d := range map[string]*backupset.Disk{"overlap": overlap, "logical": logical} {
		if err := Validate(d); err == nil {
			t.Errorf("Validate(%s) = nil", name)
		}
	}
}

// TestWriteTable writes DOS and GPT tables into image files and lets
// sfdisk, an independent reader, judge them; then reads them back.
func TestWriteTable(t *testing.T) {
	sfdisk, err := exec.LookPath("sfdisk")
	if err != nil {
		if _, err2 := os.Stat("/usr/sbin/sfdisk"); err2 != nil {
			t.Skip("sfdisk not installed (apt install fdisk)")
		}
		sfdisk = "/usr/sbin/sfdisk"
	}
	dir := t.TempDir()
	gptDisk := &backupset.Disk{Size: 64 * mib, Table: "gpt", DiskID: "0A1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D", Partitions: []backupset.Partition{
		{Number: 1, Start: mib, Size: 16 * mib, Type: "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7", PartUUID: "11111111-2222-4333-8444-555555555555", Label: "boot"},
		{Number: 2, Start: 17 * mib, Size: 64*mib - 17*mib - 33*512, Type: "0FC63DAF-8483-4772-8E79-3D69D8477DE4", PartUUID: "66666666-7777-4888-8999-aaaaaaaaaaaa"},
	}}
	dos := piDisk(600 * mib)
	dos.Partitions[0].Bootable = true
	for name, d := range map[string]*backupset.Disk{"dos": dos, "gpt": gptDisk} {
		t.Run(name, func(t *testing.T) {
			img := filepath.Join(dir, name+".img")
			f, err := os.Create(img)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := f.Truncate(d.Size); err != nil {
				t.Fatal(err)
			}
			if err := WriteTable(f, d, WriteOptions{BootCode: []byte{0xfa, 0xeb}, Wipe: true}); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(sfdisk, "--dump", img).CombinedOutput()
			if err != nil {
				t.Fatalf("sfdisk --dump: %v\n%s", err, out)
			}
			parsed, err := ParseSfdisk(strings.NewReader(string(out)))
			if err != nil {
				t.Fatalf("ParseSfdisk: %v\n%s", err, out)
			}
			if !strings.EqualFold(parsed.DiskID, d.DiskID) {
				t.Errorf("disk id = %s; want %s\n%s", parsed.DiskID, d.DiskID, out)
			}
			if len(parsed.Partitions) != len(d.Partitions) {
				t.Fatalf("sfdisk sees %d partitions:\n%s", len(parsed.Partitions), out)
			}
			for i, p := range parsed.Partitions {
				w := d.Partitions[i]
				if p.Start != w.Start || p.Size != w.Size || !strings.EqualFold(p.Type, w.Type) || !strings.EqualFold(p.PartUUID, w.PartUUID) || p.Bootable != w.Bootable {
					t.Errorf("partition %d = %+v; want %+v", i+1, p, w)
				}
			}
			if strings.Contains(string(out), "warning") || strings.Contains(string(out), "Warning") {
				t.Errorf("sfdisk warns:\n%s", out)
			}
			head := make([]byte, 34*512)
			if _, err := f.ReadAt(head, 0); err != nil {
				t.Fatal(err)
			}
			back, err := ReadTable(head, d.Size)
			if err != nil {
				t.Fatal(err)
			}
			if back.Table != d.Table || !strings.EqualFold(back.DiskID, d.DiskID) || len(back.Partitions) != len(d.Partitions) {
				t.Errorf("ReadTable = %+v", back)
			}
			if name == "dos" && (head[0] != 0xfa || head[1] != 0xeb) {
				t.Errorf("boot code not kept: % x", head[:2])
			}
		})
	}
}

func TestMBRDiskID(t *testing.T) {
	id, err := ParseMBRDiskID("0x5E3DA1B7")
	if err != nil || id != 0x5e3da1b7 {
		t.Fatalf("ParseMBRDiskID = %x, %v", id, err)
	}
	if s := FormatMBRDiskID(id); s != "0x5e3da1b7" {
		t.Errorf("FormatMBRDiskID = %s", s)
	}
	if s := MBRPartUUID(id, 2); s != "5e3da1b7-02" {
		t.Errorf("MBRPartUUID = %s", s)
	}
}
