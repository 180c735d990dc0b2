package disklayout

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestReadRealImage checks our reader against a disk made by the real
// sfdisk, mkfs.vfat and mkfs.ext4 (no root needed: they work on files).
func TestReadRealImage(t *testing.T) {
	for _, tool := range []string{"sfdisk", "mkfs.vfat", "mkfs.ext4"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("PIBACKUP_TEST_REQUIRE") != "" {
				t.Fatalf("%s missing (apt-get install fdisk dosfstools e2fsprogs)", tool)
			}
			t.Skipf("%s missing (apt-get install fdisk dosfstools e2fsprogs)", tool)
		}
	}
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 128<<20); err != nil {
		t.Fatal(err)
	}
	run := func(stdin string, name string, args ...string) {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Stdin = strings.NewReader(stdin)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
	run("label: dos\nlabel-id: 0x1234abcd\nstart=2048, size=65536, type=c, bootable\nstart=67584, type=83\n", "sfdisk", img)
	run("", "mkfs.vfat", "-F", "16", "-n", "BOOTFS", "-i", "a1b2c3d4", "--offset", "2048", img, "32768")
	run("", "mkfs.ext4", "-q", "-F", "-L", "rootfs", "-U", "0b1e2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", "-E", "offset="+itoa(67584*512), img, itoa((128<<20-67584*512)/1024)+"k")
	d, err := ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if d.Table != "dos" || d.DiskID != "0x1234abcd" || len(d.Partitions) != 2 {
		t.Fatalf("disk = %+v", d)
	}
	p1, p2 := d.Partitions[0], d.Partitions[1]
	if p1.FSType != "vfat" || p1.UUID != "A1B2-C3D4" || p1.Label != "BOOTFS" || !p1.Bootable || p1.PartUUID != "1234abcd-01" {
		t.Errorf("p1 = %+v", p1)
	}
	if p2.FSType != "ext4" || p2.UUID != "0b1e2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d" || p2.Label != "rootfs" || p2.Start != 67584*512 || p2.FSUsed <= 0 {
		t.Errorf("p2 = %+v", p2)
	}
	// Our dump must be what the real sfdisk reads back identically.
	var ours strings.Builder
	if err := WriteSfdisk(&ours, d, img); err != nil {
		t.Fatal(err)
	}
	real, err := exec.Command("sfdisk", "--dump", img).Output()
	if err != nil {
		t.Fatal(err)
	}
	if normalize(ours.String()) != normalize(string(real)) {
		t.Errorf("dump differs from sfdisk's:\nours:\n%s\nsfdisk:\n%s", ours.String(), real)
	}
}

func normalize(s string) string { return strings.Join(strings.Fields(s), " ") }

func itoa(n int) string { return strconv.Itoa(n) }
