package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pibackup/pibackup/internal/testfs"
)

// TestExtract gets folders and a file back from sets of every type that
// extract reads, raspiBackup's included: each lands under DIR with its
// full path and equals the source in every attribute the tree comparison
// knows (owners, modes, ns times, xattrs, ACLs, capabilities, hardlinks,
// sparse holes); a path the set does not have is refused with exit 3.
func TestExtract(t *testing.T) {
	d := fixture(t)
	src := mountRoot(t, d, false)
	backups := t.TempDir()
	sets := map[string]string{}
	for _, typ := range [][]string{{"-t", "tgz"}, {"-t", "tar", "-z", "zstd"}, {"-t", "rsync"}, {"-t", "dd"}} {
		sets[strings.Join(typ, "")] = backupOK(t, backups, append([]string{"--source-disk", d.Path}, typ...)...)
	}
	sets["raspiBackup-tgz"] = asRaspiBackupSet(t, sets["-ttgz"], t.TempDir())
	paths := []string{"/" + testfs.PathFstab, "home/pi", testfs.PathACLDir, "usr/bin", "var/lib"}
	for name, set := range sets {
		t.Run(name, func(t *testing.T) {
			// ext4 keeps xattrs and ACLs; /tmp may not.
			dest := newExt4(t, 256<<20)
			code, out, errOut := cli(context.Background(), append(append([]string{"extract", set}, paths...), "--to", dest)...)
			if code != 0 {
				t.Fatalf("extract: exit %d\n%s%s", code, out, errOut)
			}
			for _, p := range paths[1:] {
				diffs, err := testfs.Compare(filepath.Join(src, p), filepath.Join(dest, p), testfs.CompareOptions{Sparse: true})
				if err != nil {
					t.Fatal(err)
				}
				if len(diffs) > 0 {
					t.Errorf("/%s differs from the source:\n%s", p, testfs.FormatDiffs(diffs, 10))
				}
			}
			want, _ := os.ReadFile(filepath.Join(src, testfs.PathFstab))
			if got, err := os.ReadFile(filepath.Join(dest, testfs.PathFstab)); err != nil || string(got) != string(want) {
				t.Errorf("etc/fstab: %v %q", err, got)
			}
			code, _, errOut = cli(context.Background(), "extract", set, "/no/such/file", "--to", t.TempDir())
			if code != exitPreflight || !strings.Contains(errOut, "not in the backup set") {
				t.Errorf("a missing path: exit %d %q; want %d and 'not in the backup set'", code, errOut, exitPreflight)
			}
		})
	}
	// ".." cannot climb out of the backed-up system: the path is taken
	// inside it, and lands inside DIR.
	outer := t.TempDir()
	dest := filepath.Join(outer, "dest")
	code, _, errOut := cli(context.Background(), "extract", sets["-trsync"], "../../"+testfs.PathHostname, "--to", dest)
	if code != 0 {
		t.Fatalf("extract ../../%s: exit %d %s", testfs.PathHostname, code, errOut)
	}
	if _, err := os.Stat(filepath.Join(dest, testfs.PathHostname)); err != nil {
		t.Errorf("../../%s did not land inside DIR: %v", testfs.PathHostname, err)
	}
	if es, _ := os.ReadDir(outer); len(es) != 1 {
		t.Errorf("extract wrote outside DIR: %v", es)
	}
}
