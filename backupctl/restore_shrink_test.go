package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
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

// TestCloneExternalRootCLI clones a system whose root is on a second disk
// (SD boot + USB root) with --source-disk/--source-root-disk onto two
// image files: refused without --root-to, each target confirmed by its
// name, and the root copy equal to the source root (testfs.Compare) with
// e2fsck, fsck.vfat and the PARTUUIDs cmdline.txt and fstab name checked.
func TestCloneExternalRootCLI(t *testing.T) {
	d := fixture(t)
	ctx := context.Background()
	dir := t.TempDir()
	sd, usb := filepath.Join(dir, "sd.img"), filepath.Join(dir, "usb.img")
	runTool(t, "cp", "--sparse=always", d.Path, sd)
	// usb.img: the fixture's root as partition 1 at 1 MiB.
	runTool(t, "truncate", "-s", fmt.Sprint(d.RootSize+2<<20), usb)
	runTool(t, "dd", "if="+d.Path, "of="+usb, "bs=1M", fmt.Sprintf("skip=%d", d.RootStart>>20), "seek=1", fmt.Sprintf("count=%d", d.RootSize>>20), "conv=notrunc,sparse", "status=none")
	sf := exec.Command("sfdisk", "-q", usb)
	sf.Stdin = strings.NewReader(fmt.Sprintf("label: dos\nlabel-id: 0x0badc0de\nstart=2048, size=%d, type=83\n", d.RootSize/512))
	if out, err := sf.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}

	bootT, rootT := filepath.Join(dir, "sd2.img"), filepath.Join(dir, "usb2.img")
	args := []string{"clone", "--source-disk", sd, "--source-root-disk", usb, "--to", bootT, "--size", "128M"}
	if code, _, errOut := cli(ctx, args...); code != exitPreflight || !strings.Contains(errOut, "--root-to") {
		t.Errorf("without --root-to: exit %d %q", code, errOut)
	}
	args = append(args, "--root-to", rootT, "--root-size", "200M")
	if code, _, errOut := cliIn(ctx, "sd2.img\nwrong\n", args...); code != exitPreflight || !strings.Contains(errOut, "not confirmed") {
		t.Errorf("root target not confirmed: exit %d %q", code, errOut)
	}
	if _, err := os.Stat(rootT); err == nil {
		t.Error("the unconfirmed root target was created")
	}
	code, out, errOut := cliIn(ctx, "sd2.img\nusb2.img\n", args...)
	if code != 0 || !strings.Contains(out, "Cloned onto") || !strings.Contains(out, "external root") {
		t.Fatalf("clone: exit %d\n%s\n%s", code, out, errOut)
	}
	boot, err := disklayout.ReadFile(bootT)
	if err != nil {
		t.Fatal(err)
	}
	root, err := disklayout.ReadFile(rootT)
	if err != nil {
		t.Fatal(err)
	}
	if len(boot.Partitions) != 1 || len(root.Partitions) != 1 {
		t.Fatalf("partitions: boot target %+v, root target %+v", boot.Partitions, root.Partitions)
	}
	bp, rp := boot.Partitions[0], root.Partitions[0]
	runTool(t, "e2fsck", "-fn", fmt.Sprintf("%s?offset=%d", rootT, rp.Start))
	bootCopy := filepath.Join(dir, "boot.part")
	runTool(t, "dd", "if="+bootT, "of="+bootCopy, "bs=1M", fmt.Sprintf("skip=%d", bp.Start>>20), fmt.Sprintf("count=%d", bp.Size>>20), "status=none")
	runTool(t, "fsck.vfat", "-n", bootCopy)
	cmdline, err := testfs.ExtractFile(bootT, bp.Start, "cmdline.txt")
	if err != nil || !strings.Contains(string(cmdline), "root=PARTUUID="+rp.PartUUID+" ") {
		t.Errorf("cmdline.txt %q (%v) does not name the root copy %s", cmdline, err, rp.PartUUID)
	}
	fstab, err := testfs.ReadRootFile(rootT, rp.Start, "/etc/fstab")
	if err != nil || !strings.Contains(string(fstab), "PARTUUID="+rp.PartUUID+" ") || !strings.Contains(string(fstab), "PARTUUID="+bp.PartUUID+" ") {
		t.Errorf("fstab (%v) does not name the copies %s and %s:\n%s", err, rp.PartUUID, bp.PartUUID, fstab)
	}
	a := mountRO(t, usb, 1<<20, d.RootSize)
	b := mountRO(t, rootT, rp.Start, rp.Size)
	diffs, err := testfs.Compare(a, b, testfs.CompareOptions{Ignore: []string{"etc/fstab", ".pibackup-clone"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(diffs) > 0 {
		t.Errorf("the root copy differs: %s", testfs.FormatDiffs(diffs, 20))
	}
}
