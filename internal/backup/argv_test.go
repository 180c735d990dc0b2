package backup

import (
	"slices"
	"strings"
	"testing"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/size"
)

func TestTarArgs(t *testing.T) {
	got := TarArgs("/mnt/root", []string{"/proc/*", "*.tmp", "/home/**/cache/", "node_modules"})
	want := []string{
		"--create", "--one-file-system", "--numeric-owner",
		"--xattrs", "--xattrs-include=*", "--acls", "--sparse", "--format=posix",
		"--warning=no-xdev", "--warning=no-file-ignored",
		"-C", "/mnt/root",
		"--anchored", "--no-wildcards-match-slash", "--exclude=./proc/*",
		"--no-anchored", "--no-wildcards-match-slash", "--exclude=*.tmp",
		"--anchored", "--wildcards-match-slash", "--exclude=./home/*/cache",
		"--no-anchored", "--no-wildcards-match-slash", "--exclude=node_modules",
		"-f", "-", ".",
	}
	if !slices.Equal(got, want) {
		t.Errorf("TarArgs =\n%q\nwant\n%q", got, want)
	}
}

func TestRsyncArgs(t *testing.T) {
	tests := []struct {
		root, dest, link string
		ex               []string
		progress         bool
		want             []string
	}{
		{"/", "/b/pi/tmp/S", "", nil, false,
			[]string{"-aHAX", "--numeric-ids", "--one-file-system", "--delete", "--force", "--sparse", "/", "/b/pi/tmp/S/"}},
		{"/mnt/r/", "/b/pi/tmp/S/", "/b/pi/P", []string{"/proc/*", "*.tmp"}, true,
			[]string{"-aHAX", "--numeric-ids", "--one-file-system", "--delete", "--force", "--sparse",
				"--info=progress2", "--link-dest=/b/pi/P",
				"--exclude=/proc/*", "--exclude=*.tmp", "/mnt/r/", "/b/pi/tmp/S/"}},
	}
	for _, tt := range tests {
		if got := RsyncArgs(tt.root, tt.dest, tt.link, tt.ex, tt.progress); !slices.Equal(got, tt.want) {
			t.Errorf("RsyncArgs(%q, %q, %q, %q) =\n%q\nwant\n%q", tt.root, tt.dest, tt.link, tt.ex, got, tt.want)
		}
	}
}

// TestMatch pins our exclude syntax, which is rsync's: the same patterns
// must select the same paths in tar (TarExcludeArgs), rsync and Go.
func TestMatch(t *testing.T) {
	tests := []struct {
		pattern, rel string
		want         bool
	}{
		{"/proc/*", "proc/1", true},
		{"/proc/*", "proc", false},
		{"/proc/*", "x/proc/1", false},
		{"/var/swap", "var/swap", true},
		{"/var/swap", "x/var/swap", false},
		{".gvfs", "home/pi/.gvfs", true},
		{".gvfs", ".gvfs", true},
		{"*.tmp", "a/b/c.tmp", true},
		{"*.tmp", "a/b.tmp/c", false}, // c itself does not match; its parent is excluded as a whole
		{"*.tmp", "a/b.tmp", true},
		{"/home/*/.cache", "home/pi/.cache", true},
		{"/home/*/.cache", "home/pi/x/.cache", false},
		{"/home/**/.cache", "home/pi/x/.cache", true},
		{"cache/x", "a/cache/x", true},
		{"cache/x", "acache/x", false},
		{"/srv/", "srv", true},
	}
	for _, tt := range tests {
		if got := Match(tt.pattern, tt.rel); got != tt.want {
			t.Errorf("Match(%q, %q) = %v; want %v", tt.pattern, tt.rel, got, tt.want)
		}
	}
}

func TestCheckExclude(t *testing.T) {
	for _, ok := range []string{"/proc/*", "*.tmp", "/home/**/cache", "a[bc]d"} {
		if err := CheckExclude(ok); err != nil {
			t.Errorf("CheckExclude(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", " ", "/", "--exclude=/x", "-x", "a\nb", "a[b"} {
		if err := CheckExclude(bad); err == nil {
			t.Errorf("CheckExclude(%q) accepted", bad)
		}
	}
}

func TestResolveType(t *testing.T) {
	tests := []struct {
		t    backupset.Type
		c    backupset.Compression
		want backupset.Type
		comp backupset.Compression
		ext  string
		err  bool
	}{
		{"dd", "", "dd", "none", ".img", false},
		{"dd", "none", "dd", "none", ".img", false},
		{"dd", "gzip", "ddz", "gzip", ".img.gz", false},
		{"dd", "zstd", "ddz", "zstd", ".img.zst", false},
		{"ddz", "", "ddz", "gzip", ".img.gz", false},
		{"ddz", "none", "", "", "", true},
		{"tar", "", "tar", "none", ".tar", false},
		{"tar", "gzip", "tgz", "gzip", ".tgz", false},
		{"tar", "zstd", "tar", "zstd", ".tar.zst", false},
		{"tgz", "", "tgz", "gzip", ".tgz", false},
		{"tgz", "zstd", "", "", "", true},
		{"rsync", "", "rsync", "none", "", false},
		{"rsync", "gzip", "", "", "", true},
	}
	for _, tt := range tests {
		typ, comp, ext, err := ResolveType(tt.t, tt.c)
		if (err != nil) != tt.err || typ != tt.want || comp != tt.comp || ext != tt.ext {
			t.Errorf("ResolveType(%s, %s) = %s, %s, %q, %v; want %s, %s, %q, err %v", tt.t, tt.c, typ, comp, ext, err, tt.want, tt.comp, tt.ext, tt.err)
		}
	}
}

func TestParsePartitions(t *testing.T) {
	tests := []struct {
		in   string
		nums []int
		all  bool
		err  bool
	}{
		{"*", nil, true, false},
		{" * ", nil, true, false},
		{"1 2", []int{1, 2}, false, false},
		{"5,1 2 1", []int{1, 2, 5}, false, false},
		{"", nil, false, true},
		{"0", nil, false, true},
		{"1 x", nil, false, true},
	}
	for _, tt := range tests {
		nums, all, err := ParsePartitions(tt.in)
		if (err != nil) != tt.err || all != tt.all || !slices.Equal(nums, tt.nums) {
			t.Errorf("ParsePartitions(%q) = %v, %v, %v", tt.in, nums, all, err)
		}
	}
}

// TestTreeExclude checks that the rsync patterns the backup excludes
// (backupset.OwnFilePatterns, matched by Match as rsync does) leave out
// the same top-level names as backupset.TreeExclude, which lists the tree
// (its own test holds what each name should be).
func TestTreeExclude(t *testing.T) {
	ex := backupset.TreeExclude("pi")
	for _, rel := range []string{"pi-backup.img", "pi-backup.sfdisk", "pi-backup.manifest.json", "pi-backup.tree.list",
		"pi-backup.extras.list", "pi-backup.backupctl.log", "pibackup-manifest.json", "pibackup-tree.list",
		"pibackup-extras.list", "backupctl.log", "raspiBackup.log", "etc", "other-backup.img", "pi-backup", "backupctl.log.1",
	} {
		matched := false
		for _, p := range backupset.OwnFilePatterns("pi") {
			matched = matched || Match(p, rel)
		}
		if want := ex(rel); matched != want {
			t.Errorf("OwnFilePatterns(pi) match %q = %v; TreeExclude says %v", rel, matched, want)
		}
	}
}

func piDisk() *backupset.Disk {
	return &backupset.Disk{
		Size: 31914983424, SectorSize: 512, Table: "dos", DiskID: "0x5e3da3da",
		Partitions: []backupset.Partition{
			{Number: 1, Start: 8192 * 512, Size: 1048576 * 512, Type: "c", PartUUID: "5e3da3da-01", FSType: "vfat", UUID: "5E3D-A3DA", Label: "bootfs"},
			{Number: 2, Start: 1056768 * 512, Size: 61278208 * 512, Type: "83", PartUUID: "5e3da3da-02", FSType: "ext4", UUID: "0a1b2c3d-0000-4000-8000-000000000002", Label: "rootfs"},
		},
	}
}

func TestUsedEnd(t *testing.T) {
	d := piDisk()
	d.Size = 64 << 30
	if got, want := usedEnd(d), int64(62334976*512); got != want {
		t.Errorf("usedEnd = %d; want %d", got, want)
	}
	d.Size = 62334976*512 - 4096 // a partition past the end is clipped to the disk
	if got := usedEnd(d); got != d.Size {
		t.Errorf("usedEnd = %d; want the disk size %d", got, d.Size)
	}
	if !strings.HasSuffix(size.Format(3<<30), "GiB") {
		t.Error(size.Format(3 << 30))
	}
}
