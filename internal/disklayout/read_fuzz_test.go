package disklayout

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// tableSeeds returns small disks with a partition table made by the real
// sfdisk (dos and gpt), each 96 KiB so the fuzzer stays fast. Without
// sfdisk only hand-made seeds are used.
func tableSeeds(f *testing.F) [][]byte {
	if _, err := exec.LookPath("sfdisk"); err != nil {
		return nil
	}
	var out [][]byte
	for _, script := range []string{
		"label: dos\nlabel-id: 0x1234abcd\nstart=34, size=40, type=c, bootable\nstart=80, size=100, type=83\n",
		"label: gpt\nfirst-lba: 34\nstart=40, size=40, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\nstart=80, size=50\n",
	} {
		img := filepath.Join(f.TempDir(), "seed.img")
		if err := os.WriteFile(img, make([]byte, 192*512), 0o644); err != nil {
			f.Fatal(err)
		}
		cmd := exec.Command("sfdisk", "--no-reread", "--no-tell-kernel", img)
		cmd.Stdin = strings.NewReader(script)
		if b, err := cmd.CombinedOutput(); err != nil {
			f.Fatalf("sfdisk: %v\n%s", err, b)
		}
		b, err := os.ReadFile(img)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// extSeed is the start of an ext4 filesystem: 2 KiB with a superblock.
func extSeed(blocks, free uint32, logBlock uint32) []byte {
	b := make([]byte, 4096)
	sb := b[1024:]
	binary.LittleEndian.PutUint32(sb[0x4:], blocks)
	binary.LittleEndian.PutUint32(sb[0xc:], free)
	binary.LittleEndian.PutUint32(sb[0x18:], logBlock)
	binary.LittleEndian.PutUint16(sb[0x38:], 0xEF53)
	binary.LittleEndian.PutUint32(sb[0x60:], 0x40|0x80) // extents, 64bit
	copy(sb[0x68:], "0123456789abcdef")
	copy(sb[0x78:], "rootfs")
	return b
}

// fatSeed is a FAT32 boot sector.
func fatSeed() []byte {
	b := make([]byte, 512)
	binary.LittleEndian.PutUint16(b[11:], 512)
	b[13] = 8
	copy(b[82:], "FAT32   ")
	copy(b[71:], "BOOTFS     ")
	b[510], b[511] = 0x55, 0xaa
	return b
}

// FuzzRead reads arbitrary bytes as a disk, the way restore and list read
// a target disk or a set's image. It must not panic or hang, and what it
// returns must be a layout the rest of the code can trust: partitions
// inside the disk with positive sizes.
func FuzzRead(f *testing.F) {
	for _, s := range tableSeeds(f) {
		f.Add(s)
	}
	mbr := make([]byte, 1024)
	mbr[446+4], mbr[446+8], mbr[446+12] = 0x83, 1, 1 // type 83, start 1, size 1
	mbr[510], mbr[511] = 0x55, 0xaa
	f.Add(mbr)
	f.Add(append(fatSeed(), make([]byte, 512)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "disk.img")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		d, err := ReadFile(p)
		if err != nil {
			return
		}
		for _, q := range d.Partitions {
			if q.Size <= 0 || q.Start < 0 || q.FSUsed < 0 {
				t.Fatalf("partition %d: start %d size %d used %d", q.Number, q.Start, q.Size, q.FSUsed)
			}
		}
		// ReadTable reads the same bytes from memory (verify's image check).
		_, _ = ReadTable(data, int64(len(data)))
	})
}

// FuzzIdentify feeds arbitrary superblocks to Identify. It must not
// panic, and the bytes it reports in use must be a size (not negative).
func FuzzIdentify(f *testing.F) {
	f.Add(extSeed(1000, 10, 2))
	f.Add(extSeed(10, 1000, 2))
	f.Add(extSeed(1000, 10, 60))
	f.Add(fatSeed())
	f.Add(append(make([]byte, 4086), "SWAPSPACE2"...))
	f.Add([]byte("XFSB"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fs, err := Identify(bytes.NewReader(data))
		if err != nil {
			return
		}
		if fs.Used < 0 {
			t.Fatalf("Identify = %+v; negative bytes in use", fs)
		}
		if fs.Type == "vfat" {
			if _, err := FATSerialOffset(data); err != nil {
				t.Fatalf("Identify says vfat, FATSerialOffset: %v", err)
			}
		}
	})
}
