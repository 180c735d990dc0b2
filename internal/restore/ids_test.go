package restore

import (
	"reflect"
	"strings"
	"testing"

	"github.com/pibackup/pibackup/internal/backupset"
)

func testIDs() *ids {
	return &ids{
		OldDiskID: "0x5e3da1b7", NewDiskID: "0x0badf00d", Boot: 1, Root: 2,
		Parts: map[int]*partIDs{
			1: {OldPartUUID: "5e3da1b7-01", NewPartUUID: "0badf00d-01", OldUUID: "5E3D-A1B7", NewUUID: "1234-ABCD", Label: "bootfs"},
			2: {OldPartUUID: "5e3da1b7-02", NewPartUUID: "0badf00d-02", OldUUID: "aaaaaaaa-0000-4000-8000-000000000002", NewUUID: "bbbbbbbb-0000-4000-8000-000000000002", Label: "rootfs"},
			3: {OldPartUUID: "5e3da1b7-03", NewPartUUID: "0badf00d-03", OldUUID: "cccccccc-0000-4000-8000-000000000003", NewUUID: "dddddddd-0000-4000-8000-000000000003"},
		},
	}
}

func TestRewriteCmdline(t *testing.T) {
	m := testIDs()
	tests := []struct{ in, want string }{
		{"console=serial0,115200 console=tty1 root=PARTUUID=5e3da1b7-02 rootfstype=ext4 fsck.repair=yes rootwait\n",
			"console=serial0,115200 console=tty1 root=PARTUUID=0badf00d-02 rootfstype=ext4 fsck.repair=yes rootwait\n"},
		{"root=UUID=aaaaaaaa-0000-4000-8000-000000000002  quiet", "root=UUID=bbbbbbbb-0000-4000-8000-000000000002  quiet"},
		// A UUID we did not know (raspiBackup set): root= still names the new root.
		{"quiet root=UUID=ffffffff-0000-4000-8000-00000000ffff", "quiet root=UUID=bbbbbbbb-0000-4000-8000-000000000002"},
		{"root=LABEL=rootfs quiet", "root=LABEL=rootfs quiet"},
		{"root=/dev/mmcblk0p2 quiet", "root=/dev/mmcblk0p2 quiet"},
		{"noroot=PARTUUID=5e3da1b7-02", "noroot=PARTUUID=5e3da1b7-02"},
	}
	for _, tt := range tests {
		got, _ := m.rewriteCmdline(tt.in)
		if got != tt.want {
			t.Errorf("rewriteCmdline(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

func TestRewriteFstab(t *testing.T) {
	m := testIDs()
	in := "# comment PARTUUID=5e3da1b7-02\n" +
		"proc            /proc           proc    defaults          0       0\n" +
		"PARTUUID=5e3da1b7-01  /boot/firmware  vfat    defaults          0       2\n" +
		"PARTUUID=5e3da1b7-02  /               ext4    defaults,noatime  0       1\n" +
		"UUID=cccccccc-0000-4000-8000-000000000003 /data ext4 defaults 0 2\n" +
		"UUID=99999999-0000-4000-8000-000000000009 /usb ext4 defaults,nofail 0 2\n" +
		"LABEL=rootfs /mnt/x ext4 defaults 0 0\n"
	want := "# comment PARTUUID=5e3da1b7-02\n" +
		"proc            /proc           proc    defaults          0       0\n" +
		"PARTUUID=0badf00d-01  /boot/firmware  vfat    defaults          0       2\n" +
		"PARTUUID=0badf00d-02  /               ext4    defaults,noatime  0       1\n" +
		"UUID=dddddddd-0000-4000-8000-000000000003 /data ext4 defaults 0 2\n" +
		"UUID=99999999-0000-4000-8000-000000000009 /usb ext4 defaults,nofail 0 2\n" +
		"LABEL=rootfs /mnt/x ext4 defaults 0 0\n"
	got, changes := m.rewriteFstab(in)
	if got != want {
		t.Errorf("rewriteFstab:\n%s\nwant:\n%s", got, want)
	}
	if len(changes) != 3 {
		t.Errorf("changes = %v", changes)
	}
	// UUID form for /boot names the new FAT serial.
	got, _ = m.rewriteFstab("UUID=5E3D-A1B7 /boot vfat defaults 0 2\n")
	if got != "UUID=1234-ABCD /boot vfat defaults 0 2\n" {
		t.Errorf("boot by UUID: %q", got)
	}
}

func TestNewIDs(t *testing.T) {
	src := &backupset.Disk{Table: "dos", DiskID: "0x5e3da1b7", Partitions: []backupset.Partition{
		{Number: 1, PartUUID: "5e3da1b7-01", FSType: "vfat", UUID: "5E3D-A1B7"},
		{Number: 2, PartUUID: "5e3da1b7-02", FSType: "ext4", UUID: "aaaaaaaa-0000-4000-8000-000000000002", Label: "rootfs"},
	}}
	for _, keep := range []bool{false, true} {
		layout := &backupset.Disk{Table: "dos", DiskID: src.DiskID, Partitions: append([]backupset.Partition(nil), src.Partitions...)}
		m, err := newIDs(src, layout, 1, 2, keep)
		if err != nil {
			t.Fatal(err)
		}
		if keep {
			if layout.DiskID != src.DiskID || m.partUUID(2) != "5e3da1b7-02" || m.fsUUID(2) != src.Partitions[1].UUID {
				t.Errorf("keep: %+v %+v", layout, m.Parts[2])
			}
			continue
		}
		if layout.DiskID == src.DiskID || !strings.HasPrefix(layout.DiskID, "0x") || len(layout.DiskID) != 10 {
			t.Errorf("new disk id %q", layout.DiskID)
		}
		if want := strings.TrimPrefix(layout.DiskID, "0x") + "-02"; m.partUUID(2) != want || layout.Partitions[1].PartUUID != want {
			t.Errorf("root PARTUUID %q / %q; want %q", m.partUUID(2), layout.Partitions[1].PartUUID, want)
		}
		if m.fsUUID(2) == src.Partitions[1].UUID || len(m.fsUUID(2)) != 36 {
			t.Errorf("root UUID %q", m.fsUUID(2))
		}
		if s := m.fsUUID(1); len(s) != 9 || s[4] != '-' {
			t.Errorf("FAT serial %q", s)
		}
		if v, err := parseFATSerial(m.fsUUID(1)); err != nil || fatSerialString(v) != m.fsUUID(1) {
			t.Errorf("parseFATSerial(%q) = %x, %v", m.fsUUID(1), v, err)
		}
	}
}

func TestArgv(t *testing.T) {
	tests := []struct {
		got, want []string
	}{
		{mkfsExt4Args("/dev/loop3", "rootfs", "u-u", 8<<30), []string{"-F", "-q", "-I", "256", "-L", "rootfs", "-U", "u-u", "/dev/loop3"}},
		{mkfsExt4Args("/dev/loop3", "", "", 200<<20), []string{"-F", "-q", "-T", "default", "-I", "256", "/dev/loop3"}},
		{tarExtractArgs("/mnt/x"), []string{"--extract", "--numeric-owner", "--xattrs", "--xattrs-include=*", "--acls", "--same-permissions", "--same-owner", "--file=-", "--directory=/mnt/x"}},
		{rsyncRestoreArgs("/b/pi/set", "/mnt/x/", "pi"), []string{"-aHAX", "--numeric-ids", "--sparse", "--exclude=/pi-backup.*", "--exclude=/pibackup-*",
			"--exclude=/backupctl.log", "--exclude=/raspiBackup.log", "--exclude=/raspiBackup.msg", "--exclude=/*.logr", "--exclude=/*.msgr", "/b/pi/set/", "/mnt/x/"}},
		{cloneRsyncArgs("/", "/mnt/c", []string{"/proc/*"}), []string{"-aHAXx", "--numeric-ids", "--sparse", "--delete", "--force", "--stats", "--exclude=/" + cloneMarker, "--exclude=/etc/fstab", "--exclude=/proc/*", "/", "/mnt/c/"}},
		{e2fsckArgs("/dev/loop1", true), []string{"-f", "-y", "/dev/loop1"}},
		{e2fsckArgs("/dev/loop1", false), []string{"-f", "-n", "/dev/loop1"}},
		{resize2fsArgs("/dev/loop1"), []string{"/dev/loop1"}},
		{tune2fsUUIDArgs("/dev/loop1", "u"), []string{"-U", "u", "/dev/loop1"}},
		{mkswapArgs("/dev/loop4", "", "u"), []string{"-U", "u", "/dev/loop4"}},
	}
	for i, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("case %d: argv = %q; want %q", i, tt.got, tt.want)
		}
	}
}
