//go:build !race

package qemutests

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/disklayout"
	"github.com/pibackup/pibackup/internal/imageio"
	"github.com/pibackup/pibackup/internal/testfs"
)

// TestLiveBackup backs up a running system, the way backupctl runs on a
// Pi from its timer: the fixture disk boots in QEMU (root=PARTUUID from
// its cmdline.txt, root mounted by the kernel, boot partition at its
// fstab mount point), its init runs the arm64 backupctl onto a second
// disk, and the host then verifies the set, restores it with its own
// backupctl, judges the result against the fixture and boots it.
func TestLiveBackup(t *testing.T) {
	a := requireArtifacts(t)
	tools := liveTools(t, a)
	for _, typ := range liveTypes() {
		t.Run(typ, func(t *testing.T) { liveCase(t, a, tools, typ) })
	}
}

// liveTools builds backupctl for arm64 and unpacks the recovery's
// initramfs, whose Debian arm64 tar, rsync and libraries the fixture
// root gets (it has no userland of its own).
func liveTools(t *testing.T, a *artifacts) string {
	t.Helper()
	dir := filepath.Join(a.dir, "live-tools")
	if _, err := os.Stat(filepath.Join(dir, "usr", "local", "sbin", "backupctl")); err == nil {
		return dir
	}
	os.RemoveAll(dir)
	if err := os.MkdirAll(filepath.Join(dir, "usr", "local", "sbin"), 0o755); err != nil {
		t.Fatal(err)
	}
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	initrd := filepath.Join(a.dir, "initrd")
	if err := os.MkdirAll(initrd, 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := exec.Command("zstd", "-dcq", a.boot.Initramfs).Output()
	if err != nil {
		t.Fatalf("decompress the initramfs: %v", err)
	}
	// The initramfs is u-root's archive followed by ours (the kernel
	// reads concatenated archives); cpio stops at the first trailer, so
	// each archive is unpacked on its own.
	starts := []int{0}
	for off := 0; ; {
		i := bytes.Index(data[off:], []byte("TRAILER!!!"))
		if i < 0 {
			break
		}
		off += i
		if j := bytes.Index(data[off:], []byte("070701")); j >= 0 {
			starts = append(starts, off+j)
		}
		off += len("TRAILER!!!")
	}
	for _, st := range starts {
		cmd := exec.Command("cpio", "-idmu", "--quiet", "--no-absolute-filenames")
		cmd.Dir, cmd.Stdin = initrd, bytes.NewReader(data[st:])
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("unpack the initramfs: %v\n%s", err, out)
		}
	}
	for _, p := range []string{"usr/bin/tar", "usr/bin/rsync", "lib"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		run(t, "cp", "-a", filepath.Join(initrd, p), filepath.Join(dir, p))
	}
	build := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(dir, "usr", "local", "sbin", "backupctl"), "./backupctl")
	build.Dir = root
	build.Env = append(os.Environ(), "GOARCH=arm64", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build backupctl for arm64: %v\n%s", err, out)
	}
	return dir
}

func liveCase(t *testing.T, a *artifacts, tools, typ string) {
	work := t.TempDir()
	fx := fixture(t, a, work)
	// Install the tools into the fixture root: they are part of the
	// system being backed up, and of the comparison after the restore.
	dev := testfs.AttachLoop(t, fx.Path, fx.RootStart, fx.RootSize, false)
	mnt := filepath.Join(work, "rootmnt")
	os.Mkdir(mnt, 0o755)
	run(t, "mount", dev, mnt)
	run(t, "cp", "-a", "--no-preserve=timestamps", tools+"/.", mnt+"/")
	// Stale data in free space, as on a card in use: a dd that read free
	// blocks would carry it (liveImageRead tells).
	run(t, "dd", "if=/dev/urandom", "of="+filepath.Join(mnt, "stale.bin"), "bs=1M", "count=64", "status=none")
	run(t, "sync")
	run(t, "rm", filepath.Join(mnt, "stale.bin"))
	run(t, "umount", mnt)
	if err := fx.Fsck(); err != nil {
		t.Fatal(err)
	}

	backups := filepath.Join(work, "backups.img")
	mkImage(t, backups, 768<<20)
	seed := filepath.Join(work, "seed")
	if err := os.MkdirAll(filepath.Join(seed, "backups"), 0o700); err != nil {
		t.Fatal(err)
	}
	run(t, "mkfs.ext4", "-q", "-d", seed, backups)

	cfg := VMConfig{Arch: "arm64", Kernel: a.boot.Kernel, LogPath: filepath.Join(work, "live-console.log"), MemMiB: 512,
		Append: strings.TrimSpace(fx.Cmdline) + " console=ttyAMA0 pibackup.live=" + typ,
		// The fixture runs in snapshot mode: whatever the running system
		// writes is dropped, so the image stays the reference.
		Drives: []Drive{{Path: fx.Path, ReadOnly: true}, {Path: backups}}}
	took := runToEnd(t, cfg, regexp.MustCompile(`PIBACKUP-LIVE-RESULT rc=(-?\d+)`), restoreDeadline)
	t.Logf("live %s backup in the guest: %s", typ, took.Round(time.Second))

	// The host takes the backup disk and restores from it.
	bdev := testfs.AttachLoop(t, backups, 0, 0, true)
	bmnt := filepath.Join(work, "bmnt")
	os.Mkdir(bmnt, 0o755)
	run(t, "mount", "-o", "ro", bdev, bmnt)
	t.Cleanup(func() { exec.Command("umount", bmnt).Run() })
	sets, _ := filepath.Glob(filepath.Join(bmnt, "backups", "pi-under-test", "pi-under-test@*-"+typ+"-backup-*"))
	if len(sets) != 1 {
		t.Fatalf("want one %s set on the backup disk, found %v", typ, sets)
	}
	run(t, a.backupctl, "verify", sets[0])
	if typ == "dd" {
		liveImageRead(t, fx, sets[0])
	}
	target := filepath.Join(work, "target.img")
	fi, _ := os.Stat(fx.Path)
	mkImage(t, target, fi.Size()*3/2)
	run(t, a.backupctl, "restore", sets[0], "--to", target, "--yes")
	judge(t, fx, target)
	bootRestored(t, a, work, target)
}

// runToEnd boots cfg and waits, up to deadline, for the guest's result
// line done, whose first group must be "0", and for it to power off. It
// returns how long the guest took to the result line.
func runToEnd(t *testing.T, cfg VMConfig, done *regexp.Regexp, deadline time.Duration) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline+time.Minute)
	defer cancel()
	vm, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Kill()
	start := time.Now()
	m, err := vm.Expect(done, deadline)
	if err != nil || m[1] != "0" {
		t.Fatalf("%v %v\nconsole:\n%s", err, m, tailString(vm.Console(), 8000))
	}
	took := time.Since(start)
	if err := vm.Wait(60 * time.Second); err != nil {
		t.Errorf("guest did not power off: %v", err)
	}
	return took
}

// liveTypes are the types TestLiveBackup runs: the file-level ones, and
// dd, whose image of the mounted read-write root and boot partitions is
// mapped group by group while it is copied (usedblocks.Live).
// PIBACKUP_LIVE_TYPES narrows them when debugging.
func liveTypes() []string {
	if s := os.Getenv("PIBACKUP_LIVE_TYPES"); s != "" {
		return strings.Split(s, ",")
	}
	return []string{"tgz", "rsync", "dd"}
}

// liveImageRead checks that a live dd read only the blocks in use: the
// sparse image holds data only where the copy read (and found no zeros),
// so its allocated size may not pass 1.2 times what the fixture's
// filesystems use plus what lies outside them; and no partition may have
// been read in full.
func liveImageRead(t *testing.T, fx *testfs.PiDisk, set string) {
	t.Helper()
	imgs, _ := filepath.Glob(filepath.Join(set, filepath.Base(set)+".img"))
	if len(imgs) != 1 {
		t.Fatalf("no image in %s", set)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(imgs[0], &st); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(fx.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, err := disklayout.ReadFile(fx.Path)
	if err != nil {
		t.Fatal(err)
	}
	pl, err := imageio.PlanDisk(f, d, imageio.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	written, used := st.Blocks*512, pl.Read()
	t.Logf("live dd: image holds %d MiB of data; the fixture uses %d MiB (%.2f×) of %d MiB", written>>20, used>>20, float64(written)/float64(used), d.Size>>20)
	if float64(written) > 1.2*float64(used) {
		t.Errorf("the live dd image holds %d bytes of data, more than 1.2 × the %d bytes in use: free space was read", written, used)
	}
	man, err := os.ReadFile(filepath.Join(set, backupset.ManifestName("pi-under-test")))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(man), "read in full") {
		t.Errorf("a partition was read in full:\n%s", man)
	}
}
