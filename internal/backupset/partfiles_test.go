package backupset

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

// piCard is a 32 GB Raspberry Pi OS card as backup reads it.
func piCard() *Disk {
	const s = 512 // sector
	boot := Partition{Number: 1, Start: 8192 * s, Size: 1048576 * s, Type: "c", PartUUID: "5e3da3da-01",
		FSType: "vfat", UUID: "5E3D-A3DA", Label: "bootfs"}
	root := Partition{Number: 2, Start: 1056768 * s, Size: 61278208 * s, Type: "83", PartUUID: "5e3da3da-02",
		FSType: "ext4", UUID: "0a1b2c3d-0000-4000-8000-000000000002", Label: "rootfs"}
	return &Disk{Size: 31914983424, SectorSize: s, Table: "dos", DiskID: "0x5e3da3da", Partitions: []Partition{boot, root}}
}

func mmc(n int) string { return "mmcblk0p" + string(rune('0'+n)) }

func TestWriteBlkid(t *testing.T) {
	var b bytes.Buffer
	if err := WriteBlkid(&b, piCard(), mmc); err != nil {
		t.Fatal(err)
	}
	want := `/dev/mmcblk0p1: LABEL_FATBOOT="bootfs" LABEL="bootfs" UUID="5E3D-A3DA" TYPE="vfat" PARTUUID="5e3da3da-01"
/dev/mmcblk0p2: LABEL="rootfs" UUID="0a1b2c3d-0000-4000-8000-000000000002" TYPE="ext4" PARTUUID="5e3da3da-02"
`
	if b.String() != want {
		t.Errorf("WriteBlkid =\n%s\nwant\n%s", b.String(), want)
	}
}

// TestWriteParted checks our parted -m text against what parted 3.5
// prints for a 32 GB Raspberry Pi OS card.
func TestWriteParted(t *testing.T) {
	var b bytes.Buffer
	if err := WriteParted(&b, piCard(), "/dev/mmcblk0", "sd/mmc", "SD32G"); err != nil {
		t.Fatal(err)
	}
	want := "BYT;\n/dev/mmcblk0:31.9GB:sd/mmc:512:512:msdos:SD32G:;\n" +
		"1:4194kB:541MB:537MB:fat32::lba;\n" +
		"2:541MB:31.9GB:31.4GB:ext4::;\n"
	if b.String() != want {
		t.Errorf("WriteParted =\n%s\nwant\n%s", b.String(), want)
	}
	for n, want := range map[int64]string{0: "0.00B", 999: "999B", 10000: "10.0kB", 4194304: "4194kB", 99999999: "100MB"} {
		if got := partedSize(n); got != want {
			t.Errorf("partedSize(%d) = %q; want %q", n, got, want)
		}
	}
}

func TestWriteFdisk(t *testing.T) {
	var b bytes.Buffer
	if err := WriteFdisk(&b, piCard(), "/dev/mmcblk0", "", mmc); err != nil {
		t.Fatal(err)
	}
	want := `Disk /dev/mmcblk0: 29.72 GiB, 31914983424 bytes, 62333952 sectors
Units: sectors of 1 * 512 = 512 bytes
Sector size (logical/physical): 512 bytes / 512 bytes
I/O size (minimum/optimal): 512 bytes / 512 bytes
Disklabel type: dos
Disk identifier: 0x5e3da3da

Device         Boot   Start      End  Sectors  Size Id Type
/dev/mmcblk0p1         8192  1056767  1048576  512M  c W95 FAT32 (LBA)
/dev/mmcblk0p2      1056768 62334975 61278208 29.2G 83 Linux
`
	if b.String() != want {
		t.Errorf("WriteFdisk =\n%s\nwant\n%s", b.String(), want)
	}
}

// gptDisk is a GPT disk with an EFI partition, a root and swap, none
// bootable (GPT has no boot flag in the MBR sense).
func gptDisk() *Disk {
	const s = 512
	return &Disk{Size: 8 << 30, SectorSize: s, Table: "gpt", DiskID: "7A3F0C1E-2B4D-4E5F-8A9B-0C1D2E3F4A5B", Partitions: []Partition{
		{Number: 1, Start: 2048 * s, Size: 1048576 * s, Type: "c12a7328-f81f-11d2-ba4b-00a0c93ec93b", PartUUID: "0b1c2d3e-0000-4000-8000-000000000001",
			FSType: "vfat", UUID: "1234-ABCD", Label: "EFI"},
		{Number: 2, Start: 1050624 * s, Size: 14000000 * s, Type: "0fc63daf-8483-4772-8e79-3d69d8477de4", PartUUID: "0b1c2d3e-0000-4000-8000-000000000002",
			FSType: "ext4", UUID: "0a1b2c3d-0000-4000-8000-000000000003", Label: "root"},
		{Number: 3, Start: 15050624 * s, Size: 1000000 * s, Type: "0657fd6d-a4ab-43c4-84e5-0933c84b4f4f", PartUUID: "0b1c2d3e-0000-4000-8000-000000000003",
			FSType: "swap"},
	}}
}

func sda(n int) string { return "sda" + string(rune('0'+n)) }

// roundTripDisks are the disks each file kind is written for and parsed
// back from: an MBR card with a bootable FAT partition and a GPT disk.
func roundTripDisks() map[string]*Disk {
	card := piCard()
	card.Partitions[0].Bootable = true
	return map[string]*Disk{"dos": card, "gpt": gptDisk()}
}

func TestBlkidRoundTrip(t *testing.T) {
	for table, d := range roundTripDisks() {
		var b bytes.Buffer
		if err := WriteBlkid(&b, d, sda); err != nil {
			t.Fatal(err)
		}
		got, err := ParseBlkid(&b)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]BlkidEntry{}
		for _, p := range d.Partitions {
			want[sda(p.Number)] = BlkidEntry{Dev: sda(p.Number), UUID: p.UUID, Label: p.Label, Type: p.FSType, PartUUID: p.PartUUID}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: ParseBlkid(WriteBlkid) = %+v; want %+v", table, got, want)
		}
	}
}

func TestPartedRoundTrip(t *testing.T) {
	for table, d := range roundTripDisks() {
		var b bytes.Buffer
		if err := WriteParted(&b, d, "/dev/sda", "scsi", "Ultra Fit"); err != nil {
			t.Fatal(err)
		}
		got, err := ParseParted(&b)
		if err != nil {
			t.Fatal(err)
		}
		label := map[string]string{"dos": "msdos", "gpt": "gpt"}[table]
		want := &Parted{Device: "/dev/sda", Size: partedSize(d.Size), Transport: "scsi", LogicalSector: 512, PhysicalSector: 512,
			Label: label, Model: "Ultra Fit"}
		for _, p := range d.Partitions {
			q := PartedPartition{Number: p.Number, Start: partedSize(p.Start), End: partedSize(p.Start + p.Size - 1),
				Size: partedSize(p.Size), FS: partedFS(p)}
			if table == "gpt" {
				q.Name = p.Label
			}
			if p.Bootable {
				q.Flags = append(q.Flags, "boot")
			}
			if p.Type == "c" {
				q.Flags = append(q.Flags, "lba")
			}
			want.Partitions = append(want.Partitions, q)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: ParseParted(WriteParted) =\n%+v\nwant\n%+v", table, got, want)
		}
	}
}

// TestParseParted reads parted's own output (raspiBackup's files come from
// parted itself): the filesystem column by partition number.
func TestParseParted(t *testing.T) {
	in := "BYT;\n/dev/mmcblk0:268MB:sd/mmc:512:512:msdos::;\n1:4194kB:71.3MB:67.1MB:fat32::lba;\n2:71.3MB:268MB:197MB:ext4::;\n3:268MB:300MB:32.0MB:fat16::;\n"
	want := map[int]string{1: "fat32", 2: "ext4", 3: "fat16"}
	p, err := ParseParted(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if got := p.FSByNumber(); !reflect.DeepEqual(got, want) {
		t.Errorf("FSByNumber = %v; want %v", got, want)
	}
	if p.Device != "/dev/mmcblk0" || p.Label != "msdos" || p.Transport != "sd/mmc" {
		t.Errorf("disk line = %+v", p)
	}
}

func TestFdiskRoundTrip(t *testing.T) {
	for table, d := range roundTripDisks() {
		var b bytes.Buffer
		if err := WriteFdisk(&b, d, "/dev/sda", "Ultra Fit", sda); err != nil {
			t.Fatal(err)
		}
		got, err := ParseFdisk(&b)
		if err != nil {
			t.Fatal(err)
		}
		ss := int64(d.SectorSize)
		want := &Fdisk{Device: "/dev/sda", Size: d.Size, Sectors: d.Size / ss, Model: "Ultra Fit", SectorSize: d.SectorSize,
			Table: d.Table, DiskID: d.DiskID}
		for _, p := range d.Partitions {
			q := FdiskPartition{Device: "/dev/" + sda(p.Number), Boot: p.Bootable, Start: p.Start / ss,
				End: (p.Start+p.Size)/ss - 1, Sectors: p.Size / ss, Size: fdiskSize(p.Size, 1), Type: fdiskTypeName(p.Type)}
			if table == "dos" {
				q.ID = p.Type
			}
			want.Partitions = append(want.Partitions, q)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: ParseFdisk(WriteFdisk) =\n%+v\nwant\n%+v", table, got, want)
		}
	}
}

// TestParseFdiskBad: a table row that lost columns is an error, not a
// partition with zero sectors.
func TestParseFdiskBad(t *testing.T) {
	in := "Disk /dev/sda: 8 GiB, 8589934592 bytes, 16777216 sectors\nDisklabel type: dos\n\nDevice Boot Start End Sectors Size Id Type\n/dev/sda1 2048 4095\n"
	if _, err := ParseFdisk(strings.NewReader(in)); err == nil {
		t.Error("ParseFdisk of a short row succeeded")
	}
}
