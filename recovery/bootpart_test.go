package main

import (
	"testing"

	"github.com/pibackup/pibackup/internal/source"
)

func TestPickBoot(t *testing.T) {
	disk := func(name string, parts ...source.Partition) source.Disk {
		return source.Disk{Name: name, Path: "/dev/" + name, Partitions: parts}
	}
	fat := func(name, label string) source.Partition {
		return source.Partition{Name: name, Path: "/dev/" + name, FSType: "vfat", Label: label}
	}
	disks := []source.Disk{
		disk("sda", fat("sda1", "BACKUP"), source.Partition{Name: "sda2", FSType: "ext4"}),
		disk("mmcblk0", fat("mmcblk0p1", "RECOVERY")),
		disk("sdb", fat("sdb1", "bootfs")),
	}
	cands := bootCandidates(disks)
	if len(cands) != 3 {
		t.Fatalf("bootCandidates() = %d; want 3 FAT partitions", len(cands))
	}
	with := func(files map[int][]string) []candidate {
		out := append([]candidate(nil), cands...)
		for i := range out {
			out[i].files = map[string]bool{}
			for _, f := range files[i] {
				out[i].files[f] = true
			}
		}
		return out
	}
	for _, tt := range []struct {
		name  string
		files map[int][]string
		want  string
	}{
		{"recovery.conf wins over the label", map[int][]string{2: {"recovery.conf", "vmlinuz"}}, "/dev/sdb"},
		{"label", map[int][]string{2: {"kernel8.img"}}, "/dev/mmcblk0"},
	} {
		c, ok := pickBoot(with(tt.files))
		if !ok || c.disk.Path != tt.want {
			t.Errorf("%s: pickBoot() = %s, %v; want %s", tt.name, c.disk.Path, ok, tt.want)
		}
	}
	noLabel := with(map[int][]string{0: nil, 2: {"vmlinuz"}})
	noLabel[1].part.Label = "boot"
	if c, ok := pickBoot(noLabel); !ok || c.disk.Path != "/dev/sdb" {
		t.Errorf("kernel file: pickBoot() = %s, %v; want /dev/sdb", c.disk.Path, ok)
	}
	if _, ok := pickBoot(nil); ok {
		t.Errorf("pickBoot(nil) found a partition")
	}
}
