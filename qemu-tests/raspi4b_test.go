//go:build !race

package qemutests

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/pibackup/pibackup/internal/boardcfg"
	"github.com/pibackup/pibackup/internal/imagebuild"
)

// slowEnv turns on the QEMU cases that take minutes each under TCG; `make
// qemu-test` sets it, `make test` does not.
const slowEnv = "PIBACKUP_SLOW_QEMU"

func requireSlow(t *testing.T) {
	t.Helper()
	if os.Getenv(slowEnv) == "" {
		t.Skipf("slow QEMU case: set %s=1 (make qemu-test does)", slowEnv)
	}
}

// TestRaspi4bRestore restores a set on QEMU's Pi 4 (raspi4b) onto its SD
// card and boots the restored card.
//
// raspi4b has one SD slot and no USB or network (QEMU emulates no PCIe, so
// no VL805 USB, and GENET is disabled), so the set cannot come from a
// stick or a server. The recovery card's files are booted directly instead,
// as the firmware would load them: the pi4 image's own vmlinuz, DTB and
// cmdline.txt with -kernel/-dtb/-append, which leaves the SD slot free for
// the target, a blank card. The set reaches the machine inside the
// initramfs: the kernel unpacks concatenated cpio archives one after the
// other, so a second, uncompressed archive holding the set's folder is
// appended to the image's initramfs.cpio.zst and the recovery reads it as
// a dir: source (a folder already present on the recovery system). That is
// also what a user with a Pi 4 and no network could do with a second
// archive named on config.txt's initramfs line.
func TestRaspi4bRestore(t *testing.T) {
	a := requireArtifacts(t)
	requireSlow(t)
	root := filepath.Join(t.TempDir(), "initrd-root")
	const setDir = "/sets/backups"
	dirSource := source{name: "initramfs", prepare: func(t *testing.T, work string) (string, func() (string, []string, []Drive)) {
		dir := filepath.Join(root, setDir)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir, func() (string, []string, []Drive) { return "dir:" + setDir, nil, nil }
	}}
	c := stageCase(t, a, dirSource, "tgz", nil)
	// QEMU's SD card must be a power of two in size.
	fi, err := os.Stat(c.target)
	if err != nil {
		t.Fatal(err)
	}
	sd := int64(1)
	for sd < fi.Size() {
		sd <<= 1
	}
	if err := os.Truncate(c.target, sd); err != nil {
		t.Fatal(err)
	}

	pi4, bs := pi4Boot(t, a, c.work)
	bs.Initramfs = appendArchive(t, bs.Initramfs, root, filepath.Join(c.work, "initramfs-with-set"))
	// The SD card is mmcblk1 on raspi4b: QEMU wires the slot to the
	// sdhost controller at fe300000, not to emmc2 as on a real Pi 4.
	argv, err := imagebuild.QEMUArgs(pi4, bs, "recovery.source=dir:"+setDir, "recovery.set=latest",
		"recovery.target=/dev/mmcblk1", "recovery.yes=1", "recovery.after=poweroff")
	if err != nil {
		t.Fatal(err)
	}
	argv = append(argv, "-drive", "file="+c.target+",if=sd,format=raw")

	res := bootRecoveryVM(t, c.work, VMConfig{Argv: argv}, nil)
	if res.Error != "" || !res.Verified {
		t.Fatalf("restore in the guest: %+v", res)
	}
	judge(t, c.fx, c.target)
	bootRestored(t, a, c.work, c.target)
}

// pi4Boot builds the pi4 recovery image around the test's arm64 initramfs
// (the same one every arm64 board ships) and takes the kernel, the Pi 4
// DTB and cmdline.txt out of its FAT as the firmware would.
func pi4Boot(t *testing.T, a *artifacts, work string) (*boardcfg.Board, *imagebuild.BootSet) {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(work, "recovery-pi4.img")
	cmd := exec.Command("go", "run", "./buildimage", "-board", "pi4", "-version", artifactVersion,
		"-initramfs", a.boot.Initramfs, "-o", img)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the pi4 image: %v\n%s", err, out)
	}
	b, err := boardcfg.Load(filepath.Join(root, "board-configs"), "pi4")
	if err != nil {
		t.Fatal(err)
	}
	if b.QEMU == nil || b.QEMU.Machine != "raspi4b" {
		t.Fatalf("board pi4 has no raspi4b [qemu] section: %+v", b.QEMU)
	}
	bs, err := imagebuild.ExtractBoot(img, work, b.QEMU.DTB)
	if err != nil {
		t.Fatal(err)
	}
	return b, bs
}

// appendArchive writes initrd followed by a newc cpio archive of dir's
// tree (owned by root) to out and returns out. The kernel unpacks the
// archives of an initrd one after the other, but it looks for the next
// cpio header only at a 4-byte boundary (init/initramfs.c,
// unpack_to_rootfs, skipping zero bytes), so the compressed archive is
// padded with zeros first.
func appendArchive(t *testing.T, initrd, dir, out string) string {
	t.Helper()
	cmd := exec.Command("sh", "-c", `cat "$1" > "$0" && truncate -s %4 "$0" && find . | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 >> "$0"`, out, initrd)
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("append %s to the initramfs: %v\n%s", dir, err, b)
	}
	if fi, err := os.Stat(out); err == nil {
		t.Logf("initramfs with %s: %.1f MiB", dir, float64(fi.Size())/(1<<20))
	}
	return out
}
