//go:build !race

package qemutests

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/disklayout"
	"github.com/pibackup/pibackup/internal/testfs"
	"github.com/pibackup/pibackup/internal/testsrv"
)

// Result is the RECOVERY-RESULT line's JSON.
type Result struct {
	Set        string  `json:"set"`
	Target     string  `json:"target"`
	Bytes      int64   `json:"bytes"`
	Seconds    float64 `json:"seconds"`
	Verified   bool    `json:"verified"`
	Incomplete bool    `json:"incomplete"`
	Error      string  `json:"error"`
}

var resultRE = regexp.MustCompile(`RECOVERY-RESULT (\{[^\r\n]*\})`)

// Phase deadlines under TCG on 2 cores (boot-stack.md: virt boots in 3-9 s).
const (
	restoreDeadline = 6 * time.Minute
	markerDeadline  = 90 * time.Second
)

// source is where the guest finds the backups.
type source struct {
	name string
	// prepare returns the backup folder backupctl writes into, and after
	// the backup, the recovery.source URL, recovery.conf lines and extra
	// drives for the guest.
	prepare func(t *testing.T, work string) (backupDir string, finish func() (url string, conf []string, drives []Drive))
}

func sources() []source {
	return []source{
		{name: "usb", prepare: func(t *testing.T, work string) (string, func() (string, []string, []Drive)) {
			// A USB disk holding one ext4 partition labelled PIBACKUPS,
			// written by backupctl through a loop mount.
			img := filepath.Join(work, "usb.img")
			mkImage(t, img, 512<<20)
			run(t, "mkfs.ext4", "-q", "-L", "PIBACKUPS", img)
			dev := testfs.AttachLoop(t, img, 0, 0, false)
			mnt := filepath.Join(work, "usbmnt")
			os.Mkdir(mnt, 0o755)
			run(t, "mount", dev, mnt)
			dir := filepath.Join(mnt, "backups")
			os.Mkdir(dir, 0o755)
			return dir, func() (string, []string, []Drive) {
				run(t, "umount", mnt)
				return "usb:PIBACKUPS/backups", nil, []Drive{{Path: img, USB: true}}
			}
		}},
		{name: "sftp", prepare: func(t *testing.T, work string) (string, func() (string, []string, []Drive)) {
			dir := filepath.Join(work, "backups")
			os.Mkdir(dir, 0o755)
			return dir, func() (string, []string, []Drive) {
				s := testsrv.StartSSHD(t)
				key, err := os.ReadFile(s.KeyPath)
				if err != nil {
					t.Fatal(err)
				}
				conf := []string{"identity=id_ed25519", "known_host=" + s.Fingerprint, "#file:id_ed25519=" + string(key)}
				return fmt.Sprintf("sftp://root@10.0.2.2:%d%s", s.Port, dir), conf, nil
			}
		}},
		{name: "nfs", prepare: func(t *testing.T, work string) (string, func() (string, []string, []Drive)) {
			dir := filepath.Join(work, "export")
			os.Mkdir(dir, 0o755)
			return dir, func() (string, []string, []Drive) {
				n := testsrv.StartNFS(t, dir)
				return fmt.Sprintf("nfs://10.0.2.2:%d%s?vers=3&mountport=%d", n.Port, dir, n.MountPort), nil, nil
			}
		}},
		{name: "smb", prepare: func(t *testing.T, work string) (string, func() (string, []string, []Drive)) {
			dir := filepath.Join(work, "share")
			os.Mkdir(dir, 0o755)
			return dir, func() (string, []string, []Drive) {
				s := testsrv.StartSMB(t, dir)
				return fmt.Sprintf("smb://%s@10.0.2.2:%d/%s", s.User, s.Port, s.Share), []string{"password=" + s.Password}, nil
			}
		}},
	}
}

func mkImage(t *testing.T, path string, size int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// recoveryImage copies the recovery image and writes recovery.conf (and
// any files it names) onto its FAT, as a user would on their PC.
func recoveryImage(t *testing.T, a *artifacts, work string, conf []string) string {
	t.Helper()
	return recoveryImageOf(t, a.image, filepath.Join(work, "recovery.img"), work, conf)
}

// recoveryImageOf is recoveryImage for another board's image, copied to
// img.
func recoveryImageOf(t *testing.T, image, img, work string, conf []string) string {
	t.Helper()
	run(t, "cp", "--sparse=always", image, img)
	layout, err := disklayout.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	boot := layout.Partitions[0].Start
	var lines []string
	for _, c := range conf {
		if rest, ok := strings.CutPrefix(c, "#file:"); ok {
			name, content, _ := strings.Cut(rest, "=")
			p := filepath.Join(work, name)
			if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			mtools(t, "mcopy", "-o", "-i", fmt.Sprintf("%s@@%d", img, boot), p, "::/"+name)
			continue
		}
		lines = append(lines, c)
	}
	p := filepath.Join(work, "recovery.conf")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mtools(t, "mcopy", "-o", "-i", fmt.Sprintf("%s@@%d", img, boot), p, "::/recovery.conf")
	return img
}

// TestRestoreMatrix backs the fixture up with backupctl in every type,
// serves the backups from every kind of source, restores each in the
// recovery image under QEMU onto a blank disk 50% larger, judges the disk
// on the host and boots it.
func TestRestoreMatrix(t *testing.T) {
	a := requireArtifacts(t)
	types := []string{"dd", "ddz", "tar", "tgz", "rsync"}
	if s := os.Getenv("PIBACKUP_QEMU_TYPES"); s != "" {
		types = strings.Split(s, ",")
	}
	for _, src := range sources() {
		for _, typ := range types {
			t.Run(src.name+"/"+typ, func(t *testing.T) {
				restoreCase(t, a, src, typ)
			})
		}
	}
	// One case on a PC: the x86_64 recovery restores a card in a USB
	// reader, a real use when the Pi itself is the broken part.
	t.Run("x86_64/nfs/tar", func(t *testing.T) {
		restoreCaseX86(t, a, sourceNamed(t, "nfs"), "tar")
	})
}

// restoreCaseX86 is restoreCase with the qemu-x86_64 recovery image on a
// PC and the target, a Pi's card, in a USB card reader (/dev/sda). The
// restored card is judged on the host and booted on arm64 as always.
func restoreCaseX86(t *testing.T, a *artifacts, src source, typ string) {
	x := requireX86(t, a)
	c := stageCase(t, a, src, typ, nil)
	for _, d := range c.drives {
		if d.USB {
			t.Fatalf("source %s brings a USB disk: /dev/sda would not be the target", src.name)
		}
	}
	rec := recoveryImageOf(t, x.image, filepath.Join(c.work, "recovery-x86_64.img"), c.work, c.conf)
	keys := []string{"recovery.source=" + c.url, "recovery.set=latest", "recovery.target=/dev/sda", "recovery.yes=1", "recovery.after=poweroff"}
	cfg := VMConfig{Arch: "amd64", Kernel: x.boot.Kernel, Initrd: x.boot.Initramfs,
		Append: x.boot.Cmdline + " " + strings.Join(keys, " "),
		Drives: append([]Drive{{Path: rec}, {Path: c.target, USB: true}}, c.drives...)}
	res := bootRecoveryVM(t, c.work, cfg, nil)
	if res.Error != "" || !res.Verified || res.Target != "/dev/sda" {
		t.Fatalf("restore in the guest: %+v", res)
	}
	judge(t, c.fx, c.target)
	bootRestored(t, a, c.work, c.target)
}

func restoreCase(t *testing.T, a *artifacts, src source, typ string) {
	c := stageCase(t, a, src, typ, nil)
	res := bootRecovery(t, a, c.work, c.rec, c.target, c.drives, c.unattended()...)
	if res.Error != "" || !res.Verified {
		t.Fatalf("restore in the guest: %+v", res)
	}
	judge(t, c.fx, c.target)
	bootRestored(t, a, c.work, c.target)
}

// TestRestoreLegacyNames restores, from USB in the guest, an rsync set
// with the file names backupctl used before it named them all
// <host>-backup.* (pibackup-manifest.json, pibackup-tree.list,
// pibackup-extras.list, backupctl.log): sets on users' disks keep those.
func TestRestoreLegacyNames(t *testing.T) {
	a := requireArtifacts(t)
	c := stageCase(t, a, usbSource(t), "rsync", func(t *testing.T, backupDir string) {
		l, err := backupset.List(os.DirFS(backupDir), ".")
		if err != nil || len(l.Sets) != 1 {
			t.Fatalf("sets in %s: %+v, %v; want one", backupDir, l, err)
		}
		if err := testfs.MakeLegacySet(filepath.Join(backupDir, filepath.FromSlash(l.Sets[0].Dir))); err != nil {
			t.Fatal(err)
		}
	})
	res := bootRecovery(t, a, c.work, c.rec, c.target, c.drives, c.unattended()...)
	if res.Error != "" || !res.Verified {
		t.Fatalf("restore in the guest: %+v", res)
	}
	judge(t, c.fx, c.target)
}

// stagedCase is a case ready to boot: the fixture, backed up by backupctl
// into a source; the recovery image with its recovery.conf; a blank
// target disk 50 % larger than the fixture.
type stagedCase struct {
	work, url, rec, target string
	conf                   []string // the recovery.conf lines rec got
	fx                     *testfs.PiDisk
	drives                 []Drive
}

// stageCase backs the fixture up as typ into src, lets damage (if any)
// change the backup folder before the source is served, and writes the
// recovery image with the source's recovery.conf lines plus conf.
func stageCase(t *testing.T, a *artifacts, src source, typ string, damage func(t *testing.T, backupDir string), conf ...string) *stagedCase {
	t.Helper()
	c := &stagedCase{work: t.TempDir()}
	c.fx = fixture(t, a, c.work)
	backupDir, finish := src.prepare(t, c.work)
	run(t, a.backupctl, "backup", "-t", typ, "--source-disk", c.fx.Path, backupDir)
	if damage != nil {
		damage(t, backupDir)
	}
	var srcConf []string
	c.url, srcConf, c.drives = finish()
	c.conf = append(srcConf, conf...)
	c.rec = recoveryImage(t, a, c.work, c.conf)
	c.target = filepath.Join(c.work, "target.img")
	fi, _ := os.Stat(c.fx.Path)
	mkImage(t, c.target, fi.Size()*3/2)
	return c
}

// unattended are the kernel command line keys of an unattended restore
// of the newest set onto /dev/vdb.
func (c *stagedCase) unattended() []string {
	return []string{"recovery.source=" + c.url, "recovery.set=latest", "recovery.target=/dev/vdb", "recovery.yes=1", "recovery.after=poweroff"}
}

// bootRecovery boots the recovery image with the target as the second
// virtio disk and waits for the RECOVERY-RESULT line.
func bootRecovery(t *testing.T, a *artifacts, work, rec, target string, drives []Drive, keys ...string) Result {
	t.Helper()
	return bootRecoveryDuring(t, a, work, rec, target, drives, nil, keys...)
}

// bootRecoveryDuring is bootRecovery with during run while the guest
// works (a fault injected mid-restore); during gets the running VM.
func bootRecoveryDuring(t *testing.T, a *artifacts, work, rec, target string, drives []Drive, during func(vm *VM), keys ...string) Result {
	t.Helper()
	cfg := VMConfig{Arch: "arm64", Kernel: a.boot.Kernel, Initrd: a.boot.Initramfs,
		Append: a.boot.Cmdline + " " + strings.Join(keys, " "),
		Drives: append([]Drive{{Path: rec}, {Path: target}}, drives...)}
	return bootRecoveryVM(t, work, cfg, during)
}

// bootRecoveryVM boots the recovery as cfg says (its kernel, initramfs,
// command line and drives; the log and monitor go into work) and waits for
// the RECOVERY-RESULT line and the power-off.
func bootRecoveryVM(t *testing.T, work string, cfg VMConfig, during func(vm *VM)) Result {
	t.Helper()
	cfg.LogPath = filepath.Join(work, "recovery-console.log")
	cfg.Monitor = filepath.Join(work, "monitor.sock")
	ctx, cancel := context.WithTimeout(context.Background(), restoreDeadline+time.Minute)
	defer cancel()
	vm, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Kill()
	start := time.Now()
	if during != nil {
		during(vm)
	}
	m, err := vm.Expect(resultRE, restoreDeadline)
	if err != nil {
		t.Fatalf("%v\nconsole:\n%s", err, tailString(vm.Console(), 6000))
	}
	var res Result
	if err := json.Unmarshal([]byte(m[1]), &res); err != nil {
		t.Fatalf("RECOVERY-RESULT %s: %v", m[1], err)
	}
	t.Logf("guest restore: %s in %s (guest says %.1fs, %d bytes)", res.Set, time.Since(start).Round(time.Second), res.Seconds, res.Bytes)
	if err := vm.Wait(60 * time.Second); err != nil {
		t.Errorf("recovery did not power off: %v", err)
	}
	if t.Failed() {
		t.Logf("console:\n%s", tailString(vm.Console(), 6000))
	}
	return res
}

// judge checks the restored disk on the host with the independent tools
// and the tree comparison.
func judge(t *testing.T, fx *testfs.PiDisk, target string) {
	t.Helper()
	fsckRestored(t, target)
	dump := run(t, "sfdisk", "--dump", target)
	t.Logf("restored table:\n%s", dump)
	r, err := testfs.CompareDisks(fx.Path, target)
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() {
		t.Fatalf("restored disk differs from the source:\n%s", r)
	}
}

// fsckRestored checks both filesystems of a restored disk (the boot
// partition first, the root last) and returns where they are.
func fsckRestored(t *testing.T, target string) *testfs.PiDisk {
	t.Helper()
	layout, err := disklayout.ReadFile(target)
	if err != nil {
		t.Fatal(err)
	}
	if len(layout.Partitions) < 2 {
		t.Fatalf("restored disk has %d partitions", len(layout.Partitions))
	}
	boot, root := layout.Partitions[0], layout.Partitions[len(layout.Partitions)-1]
	pd := &testfs.PiDisk{Path: target, BootStart: boot.Start, BootSize: boot.Size, RootStart: root.Start, RootSize: root.Size}
	if err := pd.Fsck(); err != nil {
		t.Fatalf("fsck of the restored disk: %v", err)
	}
	return pd
}

// bootRestored boots the restored disk with the kernel of the image and
// the command line from the restored cmdline.txt, and waits for the
// fixture's own init to print its marker.
func bootRestored(t *testing.T, a *artifacts, work, target string) {
	t.Helper()
	bootRestoredDrive(t, a, work, Drive{Path: target, ReadOnly: true})
}

// bootRestoredDrive is bootRestored with the restored disk attached as d
// says (an NVMe disk); guest writes should be discarded (d.ReadOnly).
func bootRestoredDrive(t *testing.T, a *artifacts, work string, d Drive) {
	t.Helper()
	target := d.Path
	layout, err := disklayout.ReadFile(target)
	if err != nil {
		t.Fatal(err)
	}
	cmdline, err := testfs.ExtractFile(target, layout.Partitions[0].Start, "cmdline.txt")
	if err != nil {
		t.Fatal(err)
	}
	// serial0 is the Pi's alias; on virt the console is ttyAMA0, named
	// last so it becomes /dev/console.
	cfg := VMConfig{Arch: "arm64", Kernel: a.boot.Kernel, LogPath: filepath.Join(work, "restored-console.log"),
		Append: strings.TrimSpace(string(cmdline)) + " console=ttyAMA0",
		Drives: []Drive{d}}
	ctx, cancel := context.WithTimeout(context.Background(), markerDeadline+30*time.Second)
	defer cancel()
	vm, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Kill()
	m, err := vm.Expect(regexp.MustCompile(`PIBACKUP-MARKER-BOOTED host=(\S+) fstab-root=`), markerDeadline)
	if err != nil {
		t.Fatalf("restored disk did not boot to its init: %v\nconsole:\n%s", err, tailString(vm.Console(), 6000))
	}
	if m[1] != "pi-under-test" {
		t.Errorf("restored disk booted host %q", m[1])
	}
}

func tailString(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
