package disklayout

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pibackup/pibackup/internal/backupset"
)

// noobsDisk is a NOOBS/PINN card: recovery FAT p1, extended p2 to the
// end, logical boot p5, root p6 and data p7.
func noobsDisk(size int64) *backupset.Disk {
	return &backupset.Disk{Size: size, SectorSize: 512, Table: "dos", DiskID: "0x4e4f4f42", Partitions: []backupset.Partition{
		{Number: 1, Start: 4 * mib, Size: 32 * mib, Type: "e", PartUUID: "4e4f4f42-01"},
		{Number: 2, Start: 36 * mib, Size: size - 36*mib, Type: "5", PartUUID: "4e4f4f42-02"},
		{Number: 5, Start: 40 * mib, Size: 64 * mib, Type: "c", PartUUID: "4e4f4f42-05", Bootable: true},
		{Number: 6, Start: 108 * mib, Size: 128 * mib, Type: "83", PartUUID: "4e4f4f42-06"},
		{Number: 7, Start: 240 * mib, Size: size - 240*mib, Type: "83", PartUUID: "4e4f4f42-07"},
	}}
}

// TestWriteTableLogical writes an MBR with an extended partition and
// logical partitions (the EBR chain go-diskfs cannot write) and lets
// sfdisk judge it; Read must find the same logical partitions.
func TestWriteTableLogical(t *testing.T) {
	if _, err := exec.LookPath("sfdisk"); err != nil {
		t.Skip("sfdisk not installed (apt install fdisk)")
	}
	d := noobsDisk(256 * mib)
	img := filepath.Join(t.TempDir(), "noobs.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(d.Size); err != nil {
		t.Fatal(err)
	}
	if err := WriteTable(f, d, WriteOptions{Wipe: true}); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("sfdisk", "--dump", img).CombinedOutput()
	if err != nil {
		t.Fatalf("sfdisk --dump: %v\n%s", err, out)
	}
	t.Logf("sfdisk --dump:\n%s", out)
	parsed, err := ParseSfdisk(strings.NewReader(string(out)))
	if err != nil {
		t.Fatal(err)
	}
	check := func(who string, got *backupset.Disk) {
		t.Helper()
		if len(got.Partitions) != len(d.Partitions) {
			t.Fatalf("%s sees %d partitions; want %d", who, len(got.Partitions), len(d.Partitions))
		}
		for i, p := range got.Partitions {
			w := d.Partitions[i]
			if p.Number != w.Number || p.Start != w.Start || p.Size != w.Size || !strings.EqualFold(p.Type, w.Type) || p.Bootable != w.Bootable || !strings.EqualFold(p.PartUUID, w.PartUUID) {
				t.Errorf("%s: partition %+v; want %+v", who, p, w)
			}
		}
	}
	check("sfdisk", parsed)
	back, err := ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	check("Read", back)
}

func TestValidateLogical(t *testing.T) {
	edit := func(f func(d *backupset.Disk)) *backupset.Disk {
		d := noobsDisk(256 * mib)
		f(d)
		return d
	}
	if err := Validate(noobsDisk(256 * mib)); err != nil {
		t.Fatalf("Validate(NOOBS) = %v", err)
	}
	for name, d := range map[string]*backupset.Disk{
		"outside extended": edit(func(d *backupset.Disk) { d.Partitions[1].Size = 200 * mib }),
		"no extended":      edit(func(d *backupset.Disk) { d.Partitions[1].Type = "83"; d.Partitions[1].Size = mib }),
		"numbering gap":    edit(func(d *backupset.Disk) { d.Partitions[3].Number = 8 }),
		"no room for EBR":  edit(func(d *backupset.Disk) { d.Partitions[3].Start = 104 * mib; d.Partitions[3].Size = 132 * mib }),
		"first at extended start": edit(func(d *backupset.Disk) {
			d.Partitions[2].Start = 36 * mib
			d.Partitions[2].Size = 68 * mib
		}),
		"two extended": edit(func(d *backupset.Disk) {
			d.Partitions[0].Type = "f"
		}),
	} {
		if err := Validate(d); err == nil {
			t.Errorf("Validate(%s) = nil", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

// TestResizeLogical: the last Linux partition is a logical one; the
// extended partition holding it changes size with it.
func TestResizeLogical(t *testing.T) {
	for _, size := range []int64{320 * mib, 250 * mib} {
		got, res, err := Resize(noobsDisk(256*mib), size, ResizeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ext, _ := PartitionByNumber(got, 2)
		last, _ := PartitionByNumber(got, 7)
		if res.Number != 7 || last.Start+last.Size != size || ext.Start+ext.Size != size || ext.Start != 36*mib {
			t.Errorf("Resize to %d MiB: %+v; extended %+v, p7 %+v", size/mib, res, ext, last)
		}
		got.Size = size
		if err := Validate(got); err != nil {
			t.Errorf("Validate(resized to %d MiB) = %v", size/mib, err)
		}
	}
}
