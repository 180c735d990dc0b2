package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/disklayout"
	"github.com/pibackup/pibackup/internal/testfs"
)

// raspiBackup (0.7.4) restores an rsync set by copying the whole set folder
// onto the new root, leaving out only /<host>-backup.*: every file
// backupctl adds to a set must be named so, or it lands in the restored
// root. These tests hold every type to that, restore an rsync set the
// way raspiBackup does, and keep sets written with the old names
// (pibackup-manifest.json, pibackup-tree.list, backupctl.log) working.

// TestSetTopLevelRaspiBackupSkips makes a set of every type and mode and
// checks that its top level holds nothing but the payload, the tree
// (rsync) and <host>-backup.* files; that the sets raspiBackup cannot
// restore are said to be so by backup and list; and that an rsync set
// copied back with raspiBackup's rsync exclude gives the source root.
func TestSetTopLevelRaspiBackupSkips(t *testing.T) {
	d := fixture(t)
	src := mountRoot(t, d, false)
	const host = "testpi"
	srcTop := map[string]bool{}
	es, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		srcTop[e.Name()] = true
	}
	tests := []struct {
		name  string
		args  []string
		noRB  bool // raspiBackup cannot restore it
		parts bool // -P: payload per partition
	}{
		{"dd", []string{"-t", "dd"}, false, false},
		{"ddz-gzip", []string{"-t", "ddz"}, false, false},
		{"ddz-zstd", []string{"-t", "dd", "-z", "zstd"}, true, false},
		{"tar", []string{"-t", "tar"}, false, false},
		{"tar-zstd", []string{"-t", "tar", "-z", "zstd"}, false, false},
		{"tgz", []string{"-t", "tgz"}, false, false},
		{"rsync", []string{"-t", "rsync"}, false, false},
		{"tar-P", []string{"-t", "tar", "-P", "*"}, false, true},
		{"rsync-P", []string{"-t", "rsync", "-P", "*"}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := t.TempDir()
			code, out, errOut := cli(context.Background(), append(append([]string{"backup"}, tt.args...), "--source-disk", d.Path, target)...)
			if code != 0 {
				t.Fatalf("backup %q = exit %d\nstdout: %s\nstderr: %s", tt.args, code, out, errOut)
			}
			sets := setDirs(t, target)
			if len(sets) != 1 {
				t.Fatalf("backup made sets %q; want one", sets)
			}
			set := sets[0]
			name := filepath.Base(set)
			m := readManifest(t, set) // under its new name, or this fails
			parts := map[string]bool{}
			for _, p := range m.Disk.Partitions {
				parts[p.Device] = true
			}
			for _, f := range setFiles(t, set) {
				dir := strings.HasSuffix(f, "/")
				f = strings.TrimSuffix(f, "/")
				base, _, isTar := backupset.TarPayloadBase(f)
				switch {
				case strings.HasPrefix(f, host+"-backup.") && !dir:
				case !tt.parts && !dir && (backupset.IsImagePayload(name, f) || isTar && base == name):
				case tt.parts && dir && m.Type == backupset.TypeRsync && parts[f]:
				case tt.parts && !dir && isTar && parts[base]:
				case !tt.parts && m.Type == backupset.TypeRsync && srcTop[f]:
				default:
					t.Errorf("top level of the set holds %q: neither payload, tree nor %s-backup.*", f, host)
				}
			}
			if got := strings.Contains(out, "raspiBackup cannot restore"); got != tt.noRB {
				t.Errorf("backup says raspiBackup cannot restore the set: %v; want %v\n%s", got, tt.noRB, out)
			}
			code, out, errOut = cli(context.Background(), "list", "--json", target)
			var entries []listEntry
			if err := json.Unmarshal([]byte(out), &entries); code != 0 || err != nil || len(entries) != 1 {
				t.Fatalf("list --json: exit %d, %v\n%s%s", code, err, out, errOut)
			}
			if got := entries[0].NotRaspiBackup != ""; got != tt.noRB {
				t.Errorf("list marks the set not for raspiBackup: %q; want a mark: %v", entries[0].NotRaspiBackup, tt.noRB)
			}
			if m.Type != backupset.TypeRsync || tt.parts {
				return
			}
			// raspiBackup's restore: rsync the set folder onto the new
			// root, leaving out /<host>-backup.* and nothing else.
			root := newExt4(t, 512<<20)
			runTool(t, "rsync", "-aHAX", "--numeric-ids", "--exclude=/"+host+"-backup.*", set+"/", root+"/")
			compareTrees(t, src, root)
		})
	}
}

// TestLegacyRsyncSet takes an rsync set with the names backupctl used
// before (testfs.MakeLegacySet) through everything that reads sets: list,
// verify, restore, the next backup of the series (link-dest and listing
// hashes from the old set) and retention.
func TestLegacyRsyncSet(t *testing.T) {
	d := fixture(t)
	ctx := context.Background()
	backups := t.TempDir()
	old := backupOK(t, backups, "--source-disk", d.Path, "-t", "rsync")
	if err := testfs.MakeLegacySet(old); err != nil {
		t.Fatal(err)
	}
	files := setFiles(t, old)
	for _, want := range []string{backupset.LegacyManifestFile, "pibackup-tree.list", "pibackup-extras.list", backupset.LegacyRunLogFile} {
		if !slices.Contains(files, want) {
			t.Fatalf("legacy set lacks %s: %q", want, files)
		}
	}

	t.Run("list", func(t *testing.T) {
		code, out, errOut := cli(ctx, "list", "--json", backups)
		var entries []listEntry
		if err := json.Unmarshal([]byte(out), &entries); code != 0 || err != nil || len(entries) != 1 {
			t.Fatalf("list --json: exit %d, %v\n%s%s", code, err, out, errOut)
		}
		if e := entries[0]; !e.Manifest || e.Verifiable != "checksums" || e.Size == 0 {
			t.Errorf("list entry %+v; want it read through its legacy manifest", e)
		}
	})
	t.Run("verify", func(t *testing.T) {
		code, out, errOut := cli(ctx, "verify", old)
		if code != 0 || !strings.HasPrefix(out, "OK") {
			t.Errorf("verify legacy set: exit %d\n%s%s", code, out, errOut)
		}
	})
	t.Run("restore", func(t *testing.T) {
		img := filepath.Join(t.TempDir(), "pi.img")
		code, out, errOut := cli(ctx, "restore", "--yes", old, "--to", img, "--size", "300M")
		if code != 0 {
			t.Fatalf("restore legacy set: exit %d\n%s\n%s", code, out, errOut)
		}
		root := restoredRoot(t, img)
		compareTrees(t, mountRoot(t, d, false), root, "etc/fstab")
		for _, n := range []string{backupset.LegacyManifestFile, "pibackup-tree.list", "pibackup-extras.list", backupset.LegacyRunLogFile} {
			if _, err := os.Lstat(filepath.Join(root, n)); !os.IsNotExist(err) {
				t.Errorf("restored root holds the set's %s: %v", n, err)
			}
		}
	})
	t.Run("next backup and retention", func(t *testing.T) {
		next := backupOK(t, backups, "--source-disk", d.Path, "-t", "rsync")
		m := readManifest(t, next)
		if m.PreviousSet != filepath.Base(old) {
			t.Errorf("previous set %q; want the legacy set %q", m.PreviousSet, filepath.Base(old))
		}
		if !sameInode(t, filepath.Join(old, testfs.PathRandom), filepath.Join(next, testfs.PathRandom)) {
			t.Errorf("%s is not hardlinked to the legacy set", testfs.PathRandom)
		}
		checkListing(t, next, "testpi")
		// Retention counts the legacy set like any other.
		last := backupOK(t, backups, "--source-disk", d.Path, "-t", "rsync", "-k", "1")
		if got := setDirs(t, backups); len(got) != 1 || got[0] != last {
			t.Errorf("sets after -k 1: %q; want only %s", got, last)
		}
	})
}

// restoredRoot mounts the root filesystem (partition 2) of a restored
// disk image read-only.
func restoredRoot(t *testing.T, img string) string {
	t.Helper()
	l, err := disklayout.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := disklayout.PartitionByNumber(l, 2)
	if root == nil {
		t.Fatalf("%s has no partition 2: %+v", img, l)
	}
	return mountRO(t, img, root.Start, root.Size)
}
