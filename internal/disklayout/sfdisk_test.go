package disklayout

import (
	"bytes"
	"strings"
	"testing"

	"github.com/pibackup/pibackup/internal/backupset"
)

// Dumps as three util-linux releases wrote them; raspiBackup's users hit
// the differences (no sector-size: line before 2.36, first-lba on GPT).
var dumps = map[string]string{
	"bookworm": `label: dos
label-id: 0x5e3da1b7
device: /dev/mmcblk0
unit: sectors
sector-size: 512

/dev/mmcblk0p1 : start=        8192, size=     1048576, type=c
/dev/mmcblk0p2 : start=     1056768, size=    61476864, type=83
`,
	"buster": `label: dos
label-id: 0x5e3da1b7
device: /dev/mmcblk0
unit: sectors

/dev/mmcblk0p1 : start=        8192, size=     1048576, type=c, bootable
/dev/mmcblk0p2 : start=     1056768, size=    61476864, type=83
`,
	"gpt": `label: gpt
label-id: 8E3A2B55-4C5D-4F3A-9A1B-2C3D4E5F6A7B
device: /dev/nvme0n1
unit: sectors
first-lba: 34
last-lba: 62533262
sector-size: 512

/dev/nvme0n1p1 : start=        2048, size=     1048576, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, uuid=11111111-2222-3333-4444-555555555555, name="boot, fat"
/dev/nvme0n1p2 : start=     1050624, size=    61482639, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=66666666-7777-8888-9999-AAAAAAAAAAAA
`,
}

func TestParseSfdisk(t *testing.T) {
	for name, dump := range dumps {
		d, err := ParseSfdisk(strings.NewReader(dump))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(d.Partitions) != 2 {
			t.Fatalf("%s: %d partitions", name, len(d.Partitions))
		}
		p2 := d.Partitions[1]
		if name != "gpt" {
			if p2.Start != 1056768*512 || p2.Size != 61476864*512 || p2.Type != "83" || p2.PartUUID != "5e3da1b7-02" {
				t.Errorf("%s: p2 = %+v", name, p2)
			}
			if d.Size != (1056768+61476864)*512 {
				t.Errorf("%s: size %d", name, d.Size)
			}
			if name == "buster" && !d.Partitions[0].Bootable {
				t.Errorf("%s: bootable lost", name)
			}
		} else {
			if !IsLinuxType(p2.Type) || p2.PartUUID != "66666666-7777-8888-9999-aaaaaaaaaaaa" || d.Partitions[0].Label != "boot, fat" {
				t.Errorf("gpt: %+v", d.Partitions)
			}
			if d.Size != (62533262+34)*512 {
				t.Errorf("gpt size %d", d.Size)
			}
		}
		// Writing and reading again keeps the layout.
		var buf bytes.Buffer
		if err := WriteSfdisk(&buf, d, d.Device); err != nil {
			t.Fatal(err)
		}
		d2, err := ParseSfdisk(&buf)
		if err != nil {
			t.Fatalf("%s: reparse: %v\n%s", name, err, buf.String())
		}
		for i := range d.Partitions {
			a, b := d.Partitions[i], d2.Partitions[i]
			if a.Start != b.Start || a.Size != b.Size || a.Type != b.Type || a.PartUUID != b.PartUUID || a.Bootable != b.Bootable {
				t.Errorf("%s: round trip p%d: %+v vs %+v", name, i+1, a, b)
			}
		}
	}
}

func TestParseSfdiskErrors(t *testing.T) {
	for _, bad := range []string{"", "label: sun\n/dev/sda1 : start=1, size=2, type=83\n", "label: dos\n", "label: dos\n/dev/sda : start=1, size=2, type=83\n", "label: dos\nunit: bytes\n", "label: dos\nsector-size: 513\n", "garbage"} {
		if _, err := ParseSfdisk(strings.NewReader(bad)); err == nil {
			t.Errorf("ParseSfdisk(%q) succeeded", bad)
		}
	}
}

func TestPartDevice(t *testing.T) {
	for disk, want := range map[string]string{"/dev/mmcblk0": "/dev/mmcblk0p2", "/dev/sda": "/dev/sda2", "nvme0n1": "nvme0n1p2", "/dev/loop7": "/dev/loop7p2", "/dev/vdb": "/dev/vdb2"} {
		if got := PartDevice(disk, 2); got != want {
			t.Errorf("PartDevice(%q) = %q", disk, got)
		}
	}
}

func FuzzParseSfdisk(f *testing.F) {
	for _, d := range dumps {
		f.Add(d)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseSfdisk(strings.NewReader(s))
		if err != nil {
			return
		}
		var buf bytes.Buffer
		_ = WriteSfdisk(&buf, d, "/dev/x")
		_ = backupset.Disk{}
	})
}
