package restore

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/pibackup/pibackup/internal/backup"
	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/blockdev"
	"github.com/pibackup/pibackup/internal/compress"
	"github.com/pibackup/pibackup/internal/disklayout"
	"github.com/pibackup/pibackup/internal/testfs"
)

// The fixture is one Pi-like disk (testfs.BuildPiDisk) and backup sets of
// it laid out exactly as raspiBackup writes them (no manifest): tar, tgz,
// rsync, dd and ddz. Building it takes a few seconds, so all tests share
// it; TestMain removes it.

const fxHost = "raspberrypi"

type fixture struct {
	dir     string
	disk    *testfs.PiDisk
	backups string // the backup folder holding raspberrypi/<set>/
	sets    map[string]string
}

var (
	fxOnce  sync.Once
	fxVal   *fixture
	fxErr   error
	fxBase  string
	fxSetID = map[string]string{
		"tar":   fxHost + "@debian12-tar-backup-20240416-094106",
		"tgz":   fxHost + "@debian12-tgz-backup-20240416-094107",
		"rsync": fxHost + "@debian12-rsync-backup-20240416-094108",
		"dd":    fxHost + "@debian12-dd-backup-20240416-094109",
		"ddz":   fxHost + "@debian12-ddz-backup-20240416-094110",
		"ddzst": fxHost + "@debian12-ddz-backup-20240416-094111",
		// A card larger than its partitions: 32 MiB unpartitioned at the end.
		"ddpad": fxHost + "@debian12-ddz-backup-20240416-094112",
	}
)

func TestMain(m *testing.M) {
	code := m.Run()
	if fxBase != "" {
		os.RemoveAll(fxBase)
	}
	os.Exit(code)
}

func getFixture(t *testing.T) *fixture {
	t.Helper()
	testfs.Require(t, "pidisk")
	testfs.Require(t, "rsync")
	fxOnce.Do(func() { fxVal, fxErr = buildFixture() })
	if fxErr != nil {
		t.Fatalf("fixture: %v", fxErr)
	}
	return fxVal
}

func buildFixture() (*fixture, error) {
	base, err := os.MkdirTemp("", "restore-fixture-")
	if err != nil {
		return nil, err
	}
	fxBase = base
	f := &fixture{dir: base, backups: filepath.Join(base, "backups"), sets: map[string]string{}}
	d, err := testfs.BuildPiDisk(base, testfs.DiskOptions{})
	if err != nil {
		return nil, err
	}
	f.disk = d
	ctx := context.Background()
	root, err := blockdev.AttachPartition(ctx, d.Path, 0, d.RootStart, d.RootSize, true)
	if err != nil {
		return nil, err
	}
	defer root.Detach()
	mnt := filepath.Join(base, "srcroot")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		return nil, err
	}
	if err := unix.Mount(root.Path, mnt, "ext4", unix.MS_RDONLY|unix.MS_NOATIME, ""); err != nil {
		return nil, fmt.Errorf("mount fixture root: %w", err)
	}
	defer unix.Unmount(mnt, 0)

	for kind, name := range fxSetID {
		dir := filepath.Join(f.backups, fxHost, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		f.sets[kind] = dir
		switch kind {
		case "tar", "tgz", "rsync":
			if err := writeMeta(d, dir); err != nil {
				return nil, err
			}
		}
		switch kind {
		case "tar":
			// raspiBackup: tar -cpi --one-file-system --numeric-owner ...
			err = sh("tar", "-cpi", "--one-file-system", "--numeric-owner", "--xattrs", "--xattrs-include=*", "--acls",
				"-f", filepath.Join(dir, name+".tar"), "-C", mnt, ".")
		case "tgz":
			err = sh("tar", "-cpiz", "--one-file-system", "--numeric-owner", "--xattrs", "--xattrs-include=*", "--acls",
				"-f", filepath.Join(dir, name+".tgz"), "-C", mnt, ".")
		case "rsync":
			// --modify-window=-1: rsync takes two mtimes in the same
			// second as equal and then leaves a folder it created with
			// its creation time; lost+found, made by mkfs in the same
			// second as this copy, kept the copy's time now and then.
			err = sh("rsync", "-aHAX", "--numeric-ids", "--sparse", "--modify-window=-1", mnt+"/", dir+"/")
		case "dd":
			err = copyFile(d.Path, filepath.Join(dir, name+".img"), backupset.CompressNone)
		case "ddz":
			err = copyFile(d.Path, filepath.Join(dir, name+".img.gz"), backupset.CompressGzip)
		case "ddzst":
			err = copyFile(d.Path, filepath.Join(dir, name+".img.zst"), backupset.CompressZstd)
		case "ddpad":
			padded := filepath.Join(base, "padded.img")
			if err = copyFile(d.Path, padded, backupset.CompressNone); err == nil {
				if err = os.Truncate(padded, d.BootStart+d.BootSize+d.RootSize+32<<20); err == nil {
					err = copyFile(padded, filepath.Join(dir, name+".img.gz"), backupset.CompressGzip)
				}
			}
		}
		if err != nil {
			return nil, fmt.Errorf("set %s: %w", kind, err)
		}
	}
	// Sets made by backupctl's engine, with manifests.
	bdir := filepath.Join(base, "bsets")
	if err := os.Mkdir(bdir, 0o755); err != nil {
		return nil, err
	}
	for _, c := range []struct {
		label string
		typ   backupset.Type
		comp  backupset.Compression
	}{
		{"b-dd", backupset.TypeDD, ""},
		{"b-ddz", backupset.TypeDDZ, backupset.CompressZstd},
		{"b-tgz", backupset.TypeTGZ, ""},
		{"b-tarzst", backupset.TypeTar, backupset.CompressZstd},
		{"b-rsync", backupset.TypeRsync, ""},
	} {
		res, err := backup.Run(ctx, backup.Options{Target: bdir, Type: c.typ, Compression: c.comp, SourceDisk: d.Path, Snapshot: c.label}, backup.Deps{})
		if err != nil {
			return nil, fmt.Errorf("backupctl set %s: %w", c.label, err)
		}
		f.sets[c.label] = res.SetDir
	}
	// The rsync set as a backupctl made it before its own files were
	// named <host>-backup.* (pibackup-manifest.json, pibackup-tree.list,
	// ...): such sets must keep restoring.
	legacy := filepath.Join(base, "legacy", fxHost, filepath.Base(f.sets["b-rsync"]))
	if err := os.MkdirAll(filepath.Dir(legacy), 0o755); err != nil {
		return nil, err
	}
	if err := sh("cp", "-a", "--sparse=always", f.sets["b-rsync"], legacy); err != nil {
		return nil, err
	}
	if err := testfs.MakeLegacySet(legacy); err != nil {
		return nil, err
	}
	f.sets["b-rsync-legacy"] = legacy
	return f, nil
}

// writeMeta writes <host>-backup.img, .sfdisk and .mbr as raspiBackup does.
func writeMeta(d *testfs.PiDisk, dir string) error {
	src, err := os.Open(d.Path)
	if err != nil {
		return err
	}
	defer src.Close()
	img, err := os.Create(filepath.Join(dir, fxHost+"-backup.img"))
	if err != nil {
		return err
	}
	if _, err := io.Copy(img, io.NewSectionReader(src, d.BootStart, d.BootSize)); err != nil {
		return err
	}
	if err := img.Close(); err != nil {
		return err
	}
	mbr := make([]byte, 512)
	if _, err := src.ReadAt(mbr, 0); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, fxHost+"-backup.mbr"), mbr, 0o644); err != nil {
		return err
	}
	out, err := exec.Command("sfdisk", "--dump", d.Path).Output()
	if err != nil {
		return fmt.Errorf("sfdisk --dump: %w", err)
	}
	// raspiBackup dumps the device, not an image: make it look so.
	dump := strings.ReplaceAll(string(out), d.Path, "/dev/mmcblk0p")
	dump = strings.ReplaceAll(dump, "device: /dev/mmcblk0p", "device: /dev/mmcblk0")
	return os.WriteFile(filepath.Join(dir, fxHost+"-backup.sfdisk"), []byte(dump), 0o644)
}

func copyFile(src, dst string, c backupset.Compression) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer out.Close()
	zw, err := compress.NewWriter(out, c)
	if err != nil {
		return err
	}
	if _, err := io.Copy(zw, in); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return out.Close()
}

func sh(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

// judge checks a restored image with independent tools and the fixture:
// e2fsck -fn on the root, fsck.vfat -n on the boot partition, sfdisk's
// view of the table, testfs.Compare of the root against the fixture's,
// and cmdline.txt/fstab naming ids that exist on the new disk.
func judge(t *testing.T, fx *fixture, p *Plan, img string, keepIDs bool) {
	t.Helper()
	got, err := disklayout.ReadFile(img)
	if err != nil {
		t.Fatalf("read restored table: %v", err)
	}
	// sfdisk shows the planned table.
	out, err := exec.Command("sfdisk", "--dump", img).CombinedOutput()
	if err != nil {
		t.Fatalf("sfdisk --dump: %v\n%s", err, out)
	}
	dump, err := disklayout.ParseSfdisk(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("parse sfdisk dump: %v\n%s", err, out)
	}
	if !strings.EqualFold(dump.DiskID, p.Layout.DiskID) || len(dump.Partitions) != len(p.Layout.Partitions) {
		t.Errorf("sfdisk sees %s with %d partitions; planned %s with %d\n%s", dump.DiskID, len(dump.Partitions), p.Layout.DiskID, len(p.Layout.Partitions), out)
	}
	for i, q := range dump.Partitions {
		w := p.Layout.Partitions[i]
		if q.Start != w.Start || q.Size != w.Size || !strings.EqualFold(q.Type, w.Type) {
			t.Errorf("sfdisk partition %d: start %d size %d type %s; planned %d %d %s", q.Number, q.Start, q.Size, q.Type, w.Start, w.Size, w.Type)
		}
	}
	boot, _ := disklayout.PartitionByNumber(got, 1)
	root, _ := disklayout.PartitionByNumber(got, 2)
	if boot == nil || root == nil {
		t.Fatalf("restored disk lacks p1/p2: %+v", got)
	}
	// Independent filesystem checks.
	if out, err := exec.Command("e2fsck", "-fn", fmt.Sprintf("%s?offset=%d", img, root.Start)).CombinedOutput(); err != nil {
		t.Errorf("e2fsck -fn root: %v\n%s", err, out)
	}
	fsckVfat(t, img, boot.Start, boot.Size)

	// Ids: new unless kept, and what cmdline.txt and fstab name exists.
	if keepIDs {
		if got.DiskID != fmt.Sprintf("0x%08x", fx.disk.DiskID) || boot.UUID != fx.disk.BootVolumeID {
			t.Errorf("--keep-ids: disk id %s boot %s; want the source's", got.DiskID, boot.UUID)
		}
		// A raspiBackup tar/rsync set does not record the root's UUID
		// (the fixture's fstab and cmdline name PARTUUIDs); sets that
		// know it (manifest, dd image) must keep it.
		if (p.set.manifest != nil || p.set.kind == kindImage) && !strings.EqualFold(root.UUID, fx.disk.RootUUID) {
			t.Errorf("--keep-ids: root UUID %s; want %s", root.UUID, fx.disk.RootUUID)
		}
	} else {
		if got.DiskID == fmt.Sprintf("0x%08x", fx.disk.DiskID) || strings.EqualFold(root.UUID, fx.disk.RootUUID) || boot.UUID == fx.disk.BootVolumeID {
			t.Errorf("ids not renewed: disk id %s root UUID %s boot %s", got.DiskID, root.UUID, boot.UUID)
		}
	}
	checkBootConfig(t, fx, img, boot, img, root)

	// The restored tree equals the source's.
	kind := "raspiBackup"
	if p.set.manifest != nil {
		kind = "b-"
	}
	compareRoots(t, fx, kind, img, root.Start, root.Size)
}

// checkBootConfig: cmdline.txt on the boot partition (in bootImg) and
// /etc/fstab on the root (in rootImg) are the fixture's, naming the
// restored partitions' PARTUUIDs.
func checkBootConfig(t *testing.T, fx *fixture, bootImg string, boot *backupset.Partition, rootImg string, root *backupset.Partition) {
	t.Helper()
	cmdline, err := testfs.ExtractFile(bootImg, boot.Start, "cmdline.txt")
	if err != nil {
		t.Fatal(err)
	}
	wantCmdline := strings.Replace(fx.disk.Cmdline, fx.disk.RootPARTUUID, root.PartUUID, 1)
	if string(cmdline) != wantCmdline {
		t.Errorf("cmdline.txt = %q; want %q", cmdline, wantCmdline)
	}
	fstab, err := testfs.ReadRootFile(rootImg, root.Start, "/etc/fstab")
	if err != nil {
		t.Fatal(err)
	}
	wantFstab := strings.Replace(strings.Replace(fx.disk.Fstab, fx.disk.RootPARTUUID, root.PartUUID, 1), fx.disk.BootPARTUUID, boot.PartUUID, 1)
	if string(fstab) != wantFstab {
		t.Errorf("fstab = %q; want %q", fstab, wantFstab)
	}
}

func fsckVfat(t *testing.T, img string, start, size int64) {
	t.Helper()
	tmp := filepath.Join(t.TempDir(), "boot.img")
	src, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.Create(tmp)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, io.NewSectionReader(src, start, size)); err != nil {
		t.Fatal(err)
	}
	dst.Close()
	if out, err := exec.Command("fsck.vfat", "-n", tmp).CombinedOutput(); err != nil {
		t.Errorf("fsck.vfat -n boot: %v\n%s", err, out)
	}
}

func compareRoots(t *testing.T, fx *fixture, kind, img string, start, size int64) {
	t.Helper()
	a := mountRO(t, fx.disk.Path, fx.disk.RootStart, fx.disk.RootSize)
	b := mountRO(t, img, start, size)
	ignore := []string{"etc/fstab"}
	if strings.HasPrefix(kind, "b-") {
		// backupctl's sets leave out raspiBackup's default excludes.
		ignore = append(ignore, "proc/*", "sys/*", "dev/*", "tmp/*", "run/*", "media/*", "lost+found/*")
	}
	diffs, err := testfs.Compare(a, b, testfs.CompareOptions{Ignore: ignore})
	if err != nil {
		t.Fatal(err)
	}
	if len(diffs) > 0 {
		t.Errorf("restored root differs from the source: %s", testfs.FormatDiffs(diffs, 20))
	}
}

func mountRO(t *testing.T, img string, start, size int64) string {
	t.Helper()
	dev := testfs.AttachLoop(t, img, start, size, true)
	dir := t.TempDir()
	testfs.MountExt4(t, dev, dir, true)
	return dir
}
