package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pibackup/pibackup/internal/disklayout"
	"github.com/pibackup/pibackup/internal/testfs"
)

// TestRestoreImageOntoSmaller backs the fixture (a 256 MiB card) up as dd
// and ddz with `backupctl backup`, restores each onto a 170 MiB image
// (the root partition shrinks from 188 to 102 MiB and is refilled from
// the image's files) and judges the result with testfs.CompareDisks
// (trees with all metadata, boot files, ids, e2fsck -fn, fsck.vfat -n)
// and sfdisk. A 72 MiB target is refused before anything is written,
// naming the data and the size needed.
func TestRestoreImageOntoSmaller(t *testing.T) {
	d := fixture(t)
	ctx := context.Background()
	backups := t.TempDir()
	for _, typ := range []string{"dd", "ddz"} {
		t.Run(typ, func(t *testing.T) {
			set := backupOK(t, backups, "--source-disk", d.Path, "-t", typ)
			img := filepath.Join(t.TempDir(), "small.img")
			code, out, errOut := cli(ctx, "restore", "--yes", set, "--to", img, "--size", "170M")
			if code != 0 {
				t.Fatalf("restore onto 170 MiB: exit %d\n%s\n%s", code, out, errOut)
			}
			if !strings.Contains(out, "(shrunk from 188.0 MiB)") || !strings.Contains(out, "shrink the root") {
				t.Errorf("the plan does not say the root shrinks:\n%s", out)
			}
			rep, err := testfs.CompareDisks(d.Path, img)
			if err != nil {
				t.Fatal(err)
			}
			if !rep.OK() {
				t.Errorf("restored disk differs from the source:\n%s", rep)
			}
			dump, err := disklayout.ParseSfdisk(strings.NewReader(runTool(t, "sfdisk", "--dump", img)))
			if err != nil {
				t.Fatal(err)
			}
			if r, ok := disklayout.PartitionByNumber(dump, 2); !ok || r.Start+r.Size > 170<<20 || r.Size >= d.RootSize {
				t.Errorf("sfdisk: root partition %+v; want it shrunk into 170 MiB", r)
			}

			tiny := filepath.Join(t.TempDir(), "tiny.img")
			code, _, errOut = cli(ctx, "restore", "--yes", set, "--to", tiny, "--size", "72M")
			t.Logf("restore onto 72 MiB: exit %d: %s", code, strings.TrimSpace(errOut))
			if code != exitPreflight || !strings.Contains(errOut, "bytes needed") || !strings.Contains(errOut, "of data") {
				t.Errorf("exit %d %q; want %d, the data and the bytes needed", code, errOut, exitPreflight)
			}
			if _, err := os.Stat(tiny); err == nil {
				t.Errorf("the refused target was created")
			}
		})
	}
}
