package backupset

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
)

func TestOwnFileNames(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{ManifestName("pi"), "pi-backup.manifest.json"},
		{RunLogName("pi"), "pi-backup.backupctl.log"},
		{TreeListingName("pi", ""), "pi-backup.tree.list"},
		{TreeListingName("pi", "mmcblk0p2"), "pi-backup.tree.mmcblk0p2.list"},
		{TreeExtrasName("pi", ""), "pi-backup.extras.list"},
		{TreeExtrasName("my-pi", "sda1"), "my-pi-backup.extras.sda1.list"},
	} {
		if tt.got != tt.want {
			t.Errorf("name = %q; want %q", tt.got, tt.want)
		}
	}
	// raspiBackup's rsync restore skips exactly /<host>-backup.*: every
	// name we write must start so, and none may be a name raspiBackup
	// itself looks up.
	raspiBackups := []string{SuffixBootImage, SuffixBootTar, SuffixSfdisk, SuffixMBR, SuffixBlkid, SuffixParted, SuffixFdisk}
	for _, n := range []string{ManifestName("pi"), RunLogName("pi"), TreeListingName("pi", ""), TreeExtrasName("pi", ""),
		TreeListingName("pi", "mmcblk0p2"), TreeExtrasName("pi", "mmcblk0p2")} {
		if !strings.HasPrefix(n, "pi-backup.") || !IsOwnFile("pi", n) {
			t.Errorf("%q is not named <host>-backup.* or not an own file", n)
		}
		for _, suf := range raspiBackups {
			if n == "pi"+suf {
				t.Errorf("%q is one of raspiBackup's own files", n)
			}
		}
	}
}

func TestIsOwnFile(t *testing.T) {
	for name, want := range map[string]bool{
		"pi-backup.manifest.json": true, "pi-backup.img": true, "pi-backup.backupctl.log": true,
		"pibackup-manifest.json": true, "pibackup-tree.mmcblk0p2.list": true, "backupctl.log": true,
		"raspiBackup.log": true, "raspiBackup.msg": true,
		"etc": false, "other-backup.manifest.json": false, "pi-backup": false, "backupctl.log.old": false,
	} {
		if got := IsOwnFile("pi", name); got != want {
			t.Errorf("IsOwnFile(pi, %q) = %v; want %v", name, got, want)
		}
	}
}

func TestFindManifest(t *testing.T) {
	const m = `{"format_version":1,"type":"rsync","host":"pi","files":[]}`
	fsys := fstest.MapFS{
		"new/pi-backup.manifest.json":      {Data: []byte(m)},
		"old/pibackup-manifest.json":       {Data: []byte(m)},
		"both/pi-backup.manifest.json":     {Data: []byte(m)},
		"both/pibackup-manifest.json":      {Data: []byte("not json")},
		"none/pi-backup.img":               {},
		"otherhost/x-backup.manifest.json": {Data: []byte(m)},
	}
	for dir, want := range map[string]string{
		"new": "pi-backup.manifest.json", "old": "pibackup-manifest.json", "both": "pi-backup.manifest.json",
	} {
		got, err := FindManifest(fsys, dir, "pi")
		if err != nil || got != want {
			t.Errorf("FindManifest(%s) = %q, %v; want %q", dir, got, err, want)
		}
		if _, name, err := ReadManifestIn(fsys, dir, "pi"); err != nil || name != want {
			t.Errorf("ReadManifestIn(%s) = %q, %v; want %q", dir, name, err, want)
		}
	}
	for _, dir := range []string{"none", "otherhost", "missing"} {
		if got, err := FindManifest(fsys, dir, "pi"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("FindManifest(%s) = %q, %v; want fs.ErrNotExist", dir, got, err)
		}
	}
	fsys["bad/pibackup-manifest.json"] = &fstest.MapFile{Data: []byte("{")}
	if _, _, err := ReadManifestIn(fsys, "bad", "pi"); err == nil || !strings.Contains(err.Error(), "pibackup-manifest.json") {
		t.Errorf("ReadManifestIn(bad) = %v; want an error naming the file", err)
	}
}

func TestRaspiBackupProblem(t *testing.T) {
	for _, tt := range []struct {
		t    Type
		c    Compression
		fail bool
	}{
		{TypeDD, CompressNone, false}, {TypeDDZ, CompressGzip, false}, {TypeDDZ, CompressZstd, true},
		{TypeTar, CompressNone, false}, {TypeTar, CompressZstd, false}, {TypeTGZ, CompressGzip, false}, {TypeRsync, CompressNone, false},
	} {
		if got := RaspiBackupProblem(tt.t, tt.c); (got != "") != tt.fail {
			t.Errorf("RaspiBackupProblem(%s, %s) = %q; want a problem: %v", tt.t, tt.c, got, tt.fail)
		}
	}
	zst := Set{Name: Name{Host: "pi", Type: TypeDDZ}, Payload: []string{"x.img.zst"}}
	gz := Set{Name: Name{Host: "pi", Type: TypeDDZ}, Payload: []string{"x.img.gz"}}
	if zst.RaspiBackupProblem() == "" || gz.RaspiBackupProblem() != "" {
		t.Errorf("Set.RaspiBackupProblem: zstd %q, gzip %q", zst.RaspiBackupProblem(), gz.RaspiBackupProblem())
	}
}

// TestTreeExclude checks that a set's own files, current and legacy
// names, are left out of its listing at the top of the tree only.
func TestTreeExclude(t *testing.T) {
	ex := TreeExclude("pi")
	for rel, want := range map[string]bool{
		"pi-backup.img": true, "pi-backup.sfdisk": true, "pi-backup.manifest.json": true, "pi-backup.tree.list": true,
		"pi-backup.extras.list": true, "pi-backup.backupctl.log": true,
		"pibackup-manifest.json": true, "pibackup-tree.list": true, "pibackup-extras.list": true, "backupctl.log": true,
		"raspiBackup.log": true, "etc": false, "etc/pi-backup.img": false, "home/pibackup-x": false, "other-backup.img": false,
		"pi-backup": false, "backupctl.log.1": false,
	} {
		if got := ex(rel); got != want {
			t.Errorf("TreeExclude(pi)(%q) = %v; want %v", rel, got, want)
		}
	}
}

// TestHostFolderNames checks that none of the files backupctl keeps in a
// host folder, and no set being deleted, is listed as a set.
func TestHostFolderNames(t *testing.T) {
	set := "pi@debian12-rsync-backup-20250101-030000"
	if _, err := Parse(set); err != nil {
		t.Fatalf("Parse(%q): %v", set, err)
	}
	for _, n := range []string{LockFile, StateFile, FailedRunLog, DeletingName(set)} {
		if _, err := Parse(n); err == nil {
			t.Errorf("Parse(%q) succeeded; a host folder's own file must not parse as a set", n)
		}
	}
	if got := DeletingName(set); got != set+".deleting" || !IsDeleting(got) || IsDeleting(set) {
		t.Errorf("DeletingName(%q) = %q, IsDeleting = %v, %v", set, got, IsDeleting(got), IsDeleting(set))
	}
}
