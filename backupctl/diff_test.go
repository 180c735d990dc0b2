package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pibackup/pibackup/internal/testfs"
)

// TestDiff makes two sets of each of rsync and tgz around four changes
// to the source (a file added, one removed, one rewritten, one chmod'ed)
// and checks that diff reports exactly those.
func TestDiff(t *testing.T) {
	src := copyFixture(t)
	backups := t.TempDir()
	before := map[string]string{}
	for _, typ := range []string{"rsync", "tgz"} {
		before[typ] = backupOK(t, backups, "-t", typ, "--source-disk", src.Path)
	}
	changeSource(t, src)
	after := map[string]string{}
	for _, typ := range []string{"rsync", "tgz"} {
		after[typ] = backupOK(t, backups, "-t", typ, "--source-disk", src.Path)
	}
	for _, typ := range []string{"rsync", "tgz"} {
		t.Run(typ, func(t *testing.T) {
			code, out, errOut := cli(context.Background(), "diff", before[typ], after[typ])
			if code != 0 {
				t.Fatalf("diff: exit %d\n%s%s", code, out, errOut)
			}
			checkFourChanges(t, typ, out)
		})
	}
}

// changeSource makes the four changes TestDiff looks for in the root
// filesystem of src: a file added, one removed, one rewritten, one
// chmod'ed.
func changeSource(t *testing.T, src *testfs.PiDisk) {
	t.Run("change", func(t *testing.T) { // the root is unmounted when it ends
		root := mountRoot(t, src, true)
		must(t, os.WriteFile(filepath.Join(root, "srv", "new.txt"), []byte("new\n"), 0o644))
		must(t, os.Remove(filepath.Join(root, testfs.PathSyslog)))
		must(t, os.WriteFile(filepath.Join(root, testfs.PathNotes), []byte("remember the milk and the eggs\n"), 0o644))
		must(t, os.Chmod(filepath.Join(root, testfs.PathSudo), 0o755))
	})
}

// checkFourChanges checks diff's output out: exactly the changes of
// changeSource, and the summary line.
func checkFourChanges(t *testing.T, what, out string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	got := slices.Clone(lines[:len(lines)-1])
	want := []string{
		"+ /srv/new.txt",
		"- /" + testfs.PathSyslog,
		"M /" + testfs.PathNotes + " (size 18 → 31)",
		"M /" + testfs.PathSudo + " (mode 4755 → 0755)",
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("diff %s:\n%s\nwant (in any order):\n%s", what, out, strings.Join(want, "\n"))
	}
	if last := lines[len(lines)-1]; last != "1 added, 1 removed, 2 changed" {
		t.Errorf("summary %q", last)
	}
}
