package restore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/disklayout"
	"github.com/pibackup/pibackup/internal/testfs"
)

// externalRootDisks makes a system whose root is on a second disk, as a
// Pi that boots from SD with its root on USB: sd.img is the fixture disk
// (boot p1, the old root p2) with cmdline.txt naming the USB root;
// usb.img holds a copy of the fixture's root as its only partition, and
// its fstab names itself for / and the SD's p1 for /boot/firmware.
func externalRootDisks(t *testing.T, fx *fixture) (sd, usb string, usbPartUUID string) {
	t.Helper()
	dir := t.TempDir()
	sd, usb = filepath.Join(dir, "sd.img"), filepath.Join(dir, "usb.img")
	if err := copyFile(fx.disk.Path, sd, backupset.CompressNone); err != nil {
		t.Fatal(err)
	}
	const usbID, usbStart = "0x0badc0de", 1 << 20
	usbPartUUID = "0badc0de-01"
	f, err := os.Create(usb)
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(fx.disk.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	_, err = io.Copy(io.NewOffsetWriter(f, usbStart), io.NewSectionReader(src, fx.disk.RootStart, fx.disk.RootSize))
	if err == nil {
		err = f.Truncate(usbStart + fx.disk.RootSize + 8<<20)
	}
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	table := fmt.Sprintf("label: dos\nlabel-id: %s\nstart=%d, size=%d, type=83\n", usbID, usbStart/512, fx.disk.RootSize/512)
	cmd := exec.Command("sfdisk", "-q", usb)
	cmd.Stdin = strings.NewReader(table)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	dev := testfs.AttachLoop(t, usb, usbStart, fx.disk.RootSize, false)
	mnt := t.TempDir()
	if err := mountAndRun(dev, mnt, func() error {
		fstab := strings.Replace(fx.disk.Fstab, fx.disk.RootPARTUUID, usbPartUUID, 1)
		return os.WriteFile(filepath.Join(mnt, "etc/fstab"), []byte(fstab), 0o644)
	}); err != nil {
		t.Fatal(err)
	}
	cmdline := filepath.Join(dir, "cmdline.txt")
	if err := os.WriteFile(cmdline, []byte(strings.Replace(fx.disk.Cmdline, fx.disk.RootPARTUUID, usbPartUUID, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd = exec.Command("mcopy", "-o", "-i", fmt.Sprintf("%s@@%d", sd, fx.disk.BootStart), cmdline, "::/cmdline.txt")
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mcopy: %v\n%s", err, out)
	}
	return sd, usb, usbPartUUID
}

// TestCloneExternalRoot clones a system whose boot partition is on an SD
// card and whose root is on a USB disk onto two targets, as raspiBackup's
// hybrid boot keeps it: the boot partition alone onto the first, the
// root disk (root partition fitted) onto the second. Judged with sfdisk,
// fsck.vfat, e2fsck, the tree comparison, and the ids cmdline.txt and
// fstab name; a second run only syncs. Without --root-to it is refused.
func TestCloneExternalRoot(t *testing.T) {
	fx := getFixture(t)
	sd, usb, usbPartUUID := externalRootDisks(t, fx)
	dir := t.TempDir()
	bootT, rootT := filepath.Join(dir, "sd-clone.img"), filepath.Join(dir, "usb-clone.img")
	ctx := context.Background()

	if _, err := NewClonePlan(ctx, CloneOptions{Source: sd, RootSource: usb, Target: bootT, Size: 128 << 20}); !errors.Is(err, ErrRootElsewhere) {
		t.Errorf("external root without a root target: %v", err)
	}
	if _, err := NewClonePlan(ctx, CloneOptions{Source: sd, RootSource: usb, Target: bootT, Size: 128 << 20, RootTarget: usb}); err == nil {
		t.Error("the root source as root target was accepted")
	}

	clone := func(wantSync bool) *CloneResult {
		t.Helper()
		p, err := NewClonePlan(ctx, CloneOptions{Source: sd, RootSource: usb, Target: bootT, Size: 128 << 20,
			RootTarget: rootT, RootSize: 200 << 20, Log: testLogger(t)})
		if err != nil {
			t.Fatalf("NewClonePlan: %v", err)
		}
		t.Logf("plan:\n%s", p)
		if p.Sync != wantSync {
			t.Fatalf("Sync = %v (%s); want %v", p.Sync, p.why, wantSync)
		}
		if s := p.String(); !strings.Contains(s, "external root") || !strings.Contains(s, "root disk id") {
			t.Errorf("the plan does not show the two disks:\n%s", s)
		}
		res, err := p.Execute(ctx)
		if err != nil {
			t.Fatalf("Execute: %v", err)
		}
		t.Logf("clone (sync %v) took %v: root %d bytes in %d files, boot %d bytes written; changes %q", res.Sync, res.Duration, res.RootTransferred, res.FilesChanged, res.BootWritten, res.Changes)
		judgeExternalClone(t, fx, usb, usbPartUUID, bootT, rootT)
		return res
	}
	clone(false)
	if again := clone(true); again.RootTransferred != 0 || again.FilesChanged != 0 {
		t.Errorf("second run sent %d bytes in %d files; want nothing", again.RootTransferred, again.FilesChanged)
	}
}

func judgeExternalClone(t *testing.T, fx *fixture, usb, usbPartUUID, bootT, rootT string) {
	t.Helper()
	dump := func(img string) *backupset.Disk {
		out, err := exec.Command("sfdisk", "--dump", img).CombinedOutput()
		if err != nil {
			t.Fatalf("sfdisk --dump %s: %v\n%s", img, err, out)
		}
		d, err := disklayout.ParseSfdisk(bytes.NewReader(out))
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	bd, rd := dump(bootT), dump(rootT)
	if len(bd.Partitions) != 1 || bd.Partitions[0].Start != fx.disk.BootStart || bd.Partitions[0].Size != fx.disk.BootSize {
		t.Errorf("boot target partitions %+v; want the boot partition alone, where it was", bd.Partitions)
	}
	if len(rd.Partitions) != 1 || rd.Partitions[0].Start+rd.Partitions[0].Size < 200<<20-1<<20 {
		t.Errorf("root target partitions %+v; want one filling 200 MiB", rd.Partitions)
	}
	if strings.EqualFold(bd.DiskID, fmt.Sprintf("0x%08x", fx.disk.DiskID)) || strings.EqualFold(rd.DiskID, "0x0badc0de") || strings.EqualFold(bd.DiskID, rd.DiskID) {
		t.Errorf("disk ids %s and %s: want new ones of their own", bd.DiskID, rd.DiskID)
	}
	boot, err := disklayout.ReadFile(bootT)
	if err != nil {
		t.Fatal(err)
	}
	rootDisk, err := disklayout.ReadFile(rootT)
	if err != nil {
		t.Fatal(err)
	}
	bp, rp := boot.Partitions[0], rootDisk.Partitions[0]
	fsckVfat(t, bootT, bp.Start, bp.Size)
	if out, err := exec.Command("e2fsck", "-fn", fmt.Sprintf("%s?offset=%d", rootT, rp.Start)).CombinedOutput(); err != nil {
		t.Errorf("e2fsck -fn root: %v\n%s", err, out)
	}
	if bp.UUID == fx.disk.BootVolumeID || strings.EqualFold(rp.UUID, fx.disk.RootUUID) {
		t.Errorf("the clone shares filesystem ids: boot %s root %s", bp.UUID, rp.UUID)
	}
	if rp.PartUUID == usbPartUUID {
		t.Errorf("the root's clone kept the PARTUUID %s", rp.PartUUID)
	}
	checkBootConfig(t, fx, bootT, &bp, rootT, &rp)
	a := mountRO(t, usb, 1<<20, fx.disk.RootSize)
	b := mountRO(t, rootT, rp.Start, rp.Size)
	diffs, err := testfs.Compare(a, b, testfs.CompareOptions{Ignore: []string{"etc/fstab", cloneMarker}})
	if err != nil {
		t.Fatal(err)
	}
	if len(diffs) > 0 {
		t.Errorf("the root's clone differs from the source: %s", testfs.FormatDiffs(diffs, 20))
	}
}
