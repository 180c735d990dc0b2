package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/pibackup/pibackup/internal/disklayout"
	"github.com/pibackup/pibackup/internal/testfs"
)

// The restore, verify, list and clone tests drive the CLI in-process
// (cli, from backup_test.go) on sets that `backupctl backup` makes of the
// shared fixture disk, and judge the results with sfdisk, e2fsck and
// fsck.vfat.

func cliIn(ctx context.Context, stdin string, args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(ctx, args, strings.NewReader(stdin), &o, &e)
	return code, o.String(), e.String()
}

func TestParsePartitions(t *testing.T) {
	parts, err := parsePartitions("1, 2 5")
	if err != nil || !reflect.DeepEqual(parts, []int{1, 2, 5}) {
		t.Errorf("parsePartitions = %v, %v", parts, err)
	}
	if parts, err := parsePartitions("*"); err != nil || parts != nil {
		t.Errorf("parsePartitions(*) = %v, %v", parts, err)
	}
	if parts, err := parsePartitions(""); err != nil || parts != nil {
		t.Errorf("parsePartitions() = %v, %v", parts, err)
	}
	// The same list as backup -P: each partition once, in order.
	if parts, err := parsePartitions("5,1 5"); err != nil || !reflect.DeepEqual(parts, []int{1, 5}) {
		t.Errorf("parsePartitions(5,1 5) = %v, %v", parts, err)
	}
	for _, bad := range []string{"x", "0", "129", ","} {
		if _, err := parsePartitions(bad); err == nil {
			t.Errorf("parsePartitions(%q) succeeded", bad)
		}
	}
}

// TestRestoreCLI backs the fixture up with `backupctl backup`, then:
// a dry run writes nothing; a wrong confirmation writes nothing; a too
// small target is refused naming the bytes; a real restore makes a disk
// that fsck, sfdisk and the fixture agree with; verify and list see the
// set.
func TestRestoreCLI(t *testing.T) {
	d := fixture(t)
	ctx := context.Background()
	backups := t.TempDir()
	set := backupOK(t, backups, "--source-disk", d.Path, "-t", "tgz")
	work := t.TempDir()

	t.Run("dry run", func(t *testing.T) {
		img := filepath.Join(work, "dry.img")
		code, out, errOut := cli(ctx, "restore", "-F", set, "--to", img, "--size", "300M")
		if code != 0 {
			t.Fatalf("exit %d: %s %s", code, out, errOut)
		}
		for _, want := range []string{"New partition table:", "cmdline.txt: root=PARTUUID=", "Dry run"} {
			if !strings.Contains(out, want) {
				t.Errorf("plan lacks %q:\n%s", want, out)
			}
		}
		if _, err := os.Stat(img); !os.IsNotExist(err) {
			t.Errorf("dry run created %s", img)
		}
	})
	t.Run("dry run in German", func(t *testing.T) {
		img := filepath.Join(work, "dry.img")
		// --lang, and without it LC_MESSAGES (LC_ALL unset), as gettext.
		t.Setenv("LC_ALL", "")
		t.Setenv("LANG", "")
		t.Setenv("LC_MESSAGES", "de_DE.UTF-8")
		for _, args := range [][]string{{"--lang", "de"}, nil} {
			code, out, errOut := cli(ctx, append([]string{"restore", "-F", set, "--to", img, "--size", "300M"}, args...)...)
			if code != 0 {
				t.Fatalf("%q: exit %d: %s %s", args, code, out, errOut)
			}
			for _, want := range []string{"Neue Partitionstabelle:", "Schritte:", "cmdline.txt: root=PARTUUID=", "Probelauf (-F)"} {
				if !strings.Contains(out, want) {
					t.Errorf("%q: plan lacks %q:\n%s", args, want, out)
				}
			}
			for _, not := range []string{"New partition table:", "Steps:", "Dry run"} {
				if strings.Contains(out, not) {
					t.Errorf("%q: German plan has %q:\n%s", args, not, out)
				}
			}
		}
		if code, out, _ := cli(ctx, "restore", "-F", set, "--to", img, "--size", "300M", "--lang", "en"); code != 0 || !strings.Contains(out, "New partition table:") {
			t.Errorf("--lang en over LC_MESSAGES=de: exit %d\n%s", code, out)
		}
		if code, _, errOut := cli(ctx, "restore", "-F", set, "--to", img, "--size", "300M", "--lang", "fr"); code != exitUsage || !strings.Contains(errOut, "--lang") {
			t.Errorf("--lang fr: exit %d %s; want %d naming --lang", code, errOut, exitUsage)
		}
		code, out, errOut := cliIn(ctx, "ja\n", "restore", "--lang", "de", set, "--to", img, "--size", "300M")
		if code != exitPreflight || !strings.Contains(out, "Alles auf neue Abbilddatei") || !strings.Contains(out, `Zum Fortfahren "dry.img" eintippen`) {
			t.Errorf("German confirmation: exit %d\n%s\n%s", code, out, errOut)
		}
		if _, err := os.Stat(img); !os.IsNotExist(err) {
			t.Errorf("dry run created %s", img)
		}
		de := filepath.Join(work, "de.img")
		code, out, errOut = cliIn(ctx, "de.img\n", "restore", "--lang", "de", set, "--to", de, "--size", "300M")
		if code != 0 || !strings.Contains(out, filepath.Base(set)+" auf "+de+" wiederhergestellt in ") || !strings.Contains(out, "geschrieben), geprüft.") {
			t.Errorf("German restore: exit %d\n%s\n%s", code, out, errOut)
		}
	})
	t.Run("not confirmed", func(t *testing.T) {
		img := filepath.Join(work, "noconfirm.img")
		code, out, errOut := cliIn(ctx, "yes\n", "restore", set, "--to", img, "--size", "300M")
		if code != exitPreflight || !strings.Contains(errOut, "not confirmed") {
			t.Errorf("exit %d: %s %s", code, out, errOut)
		}
		if _, err := os.Stat(img); !os.IsNotExist(err) {
			t.Errorf("unconfirmed restore created %s", img)
		}
	})
	t.Run("too small", func(t *testing.T) {
		code, _, errOut := cli(ctx, "restore", "--yes", set, "--to", filepath.Join(work, "small.img"), "--size", "90M")
		if code != exitPreflight || !strings.Contains(errOut, "bytes needed") {
			t.Errorf("exit %d: %s", code, errOut)
		}
	})
	t.Run("missing --to", func(t *testing.T) {
		if code, _, _ := cli(ctx, "restore", set); code != exitUsage {
			t.Errorf("exit %d; want %d", code, exitUsage)
		}
	})
	t.Run("restore", func(t *testing.T) {
		img := filepath.Join(work, "pi.img")
		code, out, errOut := cliIn(ctx, "pi.img\n", "restore", set, "--to", img, "--size", "300M")
		if code != 0 {
			t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
		}
		if !strings.Contains(out, "Restored") || !strings.Contains(out, "checked") {
			t.Errorf("output:\n%s", out)
		}
		got, err := disklayout.ReadFile(img)
		if err != nil {
			t.Fatal(err)
		}
		root, _ := disklayout.PartitionByNumber(got, 2)
		boot, _ := disklayout.PartitionByNumber(got, 1)
		if got.Size != 300<<20 || root == nil || root.Start+root.Size < 299<<20 || boot == nil {
			t.Fatalf("restored layout %+v", got)
		}
		runTool(t, "e2fsck", "-fn", fmt.Sprintf("%s?offset=%d", img, root.Start))
		cmdline, err := testfs.ExtractFile(img, boot.Start, "cmdline.txt")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(cmdline), "root=PARTUUID="+root.PartUUID+" ") {
			t.Errorf("cmdline.txt %q does not name %s", cmdline, root.PartUUID)
		}
		fstab, err := testfs.ReadRootFile(img, root.Start, "/etc/fstab")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(fstab), "PARTUUID="+root.PartUUID+" ") || !strings.Contains(string(fstab), "PARTUUID="+boot.PartUUID+" ") {
			t.Errorf("fstab does not name %s and %s:\n%s", root.PartUUID, boot.PartUUID, fstab)
		}
		// The restored root equals the source's (fstab aside).
		a := mountRO(t, d.Path, d.RootStart, d.RootSize)
		b := mountRO(t, img, root.Start, root.Size)
		// The set leaves out what raspiBackup's default excludes name.
		compareTrees(t, a, b, "etc/fstab")
	})
	t.Run("verify", func(t *testing.T) {
		code, out, errOut := cli(ctx, "verify", set)
		if code != 0 || !strings.HasPrefix(out, "OK") {
			t.Errorf("verify good set: exit %d\n%s%s", code, out, errOut)
		}
		payload := filepath.Join(set, filepath.Base(set)+".tgz")
		f, err := os.OpenFile(payload, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		b := []byte{0}
		f.ReadAt(b, 1000)
		b[0] ^= 1
		f.WriteAt(b, 1000)
		defer func() { b[0] ^= 1; f.WriteAt(b, 1000); f.Close() }()
		code, out, _ = cli(ctx, "verify", set)
		if code != exitVerify || !strings.Contains(out, "FAILED") || !strings.Contains(out, ".tgz") {
			t.Errorf("verify corrupt set: exit %d\n%s", code, out)
		}
	})
	t.Run("list", func(t *testing.T) {
		os.MkdirAll(filepath.Join(backups, "testpi", "tmp", "testpi@debian12-tar-backup-20240101-000000"), 0o755)
		code, out, errOut := cli(ctx, "list", backups)
		if code != 0 || !strings.Contains(out, filepath.Base(set)) || !strings.Contains(out, "HOST") || !strings.Contains(out, "incomplete") {
			t.Errorf("list: exit %d\n%s%s", code, out, errOut)
		}
		code, out, _ = cli(ctx, "list", "--json", backups)
		var entries []listEntry
		if err := json.Unmarshal([]byte(out), &entries); code != 0 || err != nil {
			t.Fatalf("list --json: exit %d, %v\n%s", code, err, out)
		}
		if len(entries) != 2 {
			t.Fatalf("list --json: %d entries\n%s", len(entries), out)
		}
		for _, e := range entries {
			switch {
			case e.Incomplete:
				if e.Set != "testpi@debian12-tar-backup-20240101-000000" {
					t.Errorf("incomplete entry %+v", e)
				}
			case e.Set != filepath.Base(set) || e.Type != "tgz" || !e.Manifest || e.Size == 0 || e.Host != "testpi":
				t.Errorf("entry %+v", e)
			}
		}
	})
}

func mountRO(t *testing.T, img string, start, size int64) string {
	t.Helper()
	dir := t.TempDir()
	testfs.MountExt4(t, testfs.AttachLoop(t, img, start, size, true), dir, true)
	return dir
}

// TestRestoreRefusesMountedTarget: a loop disk with a mounted filesystem
// is refused before anything is written.
func TestRestoreRefusesMountedTarget(t *testing.T) {
	d := fixture(t)
	backups := t.TempDir()
	set := backupOK(t, backups, "--source-disk", d.Path, "-t", "dd")
	img := filepath.Join(t.TempDir(), "busy.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Truncate(img, 300<<20)
	runTool(t, "mkfs.ext4", "-q", img)
	dev := testfs.AttachLoop(t, img, 0, 0, false)
	testfs.MountExt4(t, dev, t.TempDir(), false)
	code, _, errOut := cli(context.Background(), "restore", "--yes", set, "--to", dev)
	if code != exitPreflight || !strings.Contains(errOut, "mounted") {
		t.Errorf("exit %d: %s", code, errOut)
	}
	if out, err := exec.Command("blkid", "-p", dev).CombinedOutput(); err != nil || !strings.Contains(string(out), "ext4") {
		t.Errorf("target changed: %v %s", err, out)
	}
}

// TestCloneCLI clones the fixture disk onto an image file twice: the
// second run only syncs.
func TestCloneCLI(t *testing.T) {
	d := fixture(t)
	ctx := context.Background()
	img := filepath.Join(t.TempDir(), "standby.img")
	code, out, errOut := cli(ctx, "clone", "-F", "--lang", "de", "--source-disk", d.Path, "--to", img, "--size", "400M")
	if code != 0 || !strings.Contains(out, "Klonen: "+d.Path) || !strings.Contains(out, "Vollständiger Klon") || !strings.Contains(out, "Probelauf (-F)") {
		t.Errorf("German dry run: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, _, errOut := cli(ctx, "clone", "--source-disk", d.Path, "--to", img, "--size", "400M"); code != exitPreflight || !strings.Contains(errOut, "not confirmed") {
		t.Errorf("clone without --yes and without input: exit %d %s", code, errOut)
	}
	code, out, errOut = cli(ctx, "clone", "--source-disk", d.Path, "--to", img, "--size", "400M", "--yes")
	if code != 0 || !strings.Contains(out, "Cloned onto") {
		t.Fatalf("first clone: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = cli(ctx, "clone", "--source-disk", d.Path, "--to", img, "--yes")
	if code != 0 || !strings.Contains(out, "Synced onto") || !strings.Contains(out, "root 0 B in 0 changed files") {
		t.Fatalf("second clone: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = cli(ctx, "clone", "--lang", "de", "--source-disk", d.Path, "--to", img, "--yes")
	if code != 0 || !strings.Contains(out, "Auf "+img+" abgeglichen") || !strings.Contains(out, "Root 0 B in 0 geänderten Dateien") {
		t.Fatalf("third clone, in German: exit %d\n%s\n%s", code, out, errOut)
	}
	got, err := disklayout.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := disklayout.PartitionByNumber(got, 2)
	runTool(t, "e2fsck", "-fn", fmt.Sprintf("%s?offset=%d", img, root.Start))
}

// restoreAndCompare restores set onto a new 320 MiB image file and
// judges it against the fixture with testfs.CompareDisks (trees with
// all metadata, boot files via mtools, ids, e2fsck -fn, fsck.vfat -n).
func restoreAndCompare(t *testing.T, d *testfs.PiDisk, set string, extra ...string) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "restored.img")
	args := append([]string{"restore", "--yes", set, "--to", img, "--size", "320M"}, extra...)
	code, out, errOut := cli(context.Background(), args...)
	if code != 0 {
		t.Fatalf("restore: exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "checked") {
		t.Errorf("restore not verified:\n%s", out)
	}
	rep, err := testfs.CompareDisks(d.Path, img)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Errorf("restored disk differs from the source:\n%s", rep)
	}
	return img
}

// TestRestorePartitionMode restores -P sets (one payload per partition:
// mmcblk0p1.tar/mmcblk0p2.tar, or mmcblk0p1/ and mmcblk0p2/ trees) made by
// `backupctl backup -P "*"`: FAT made and filled with go-diskfs, ext4 with
// mke2fs and tar/rsync, the last partition grown to the target.
func TestRestorePartitionMode(t *testing.T) {
	d := fixture(t)
	for _, typ := range []string{"tar", "rsync"} {
		t.Run(typ, func(t *testing.T) {
			set := backupOK(t, t.TempDir(), "-t", typ, "-P", "*", "--source-disk", d.Path)
			code, out, errOut := cli(context.Background(), "restore", "-F", set, "--to", filepath.Join(t.TempDir(), "x.img"), "--size", "320M")
			if code != 0 || !strings.Contains(out, "format partition 1 vfat") || !strings.Contains(out, "format partition 2 ext4") {
				t.Fatalf("plan: exit %d\n%s\n%s", code, out, errOut)
			}
			img := restoreAndCompare(t, d, set)
			got, err := disklayout.ReadFile(img)
			if err != nil {
				t.Fatal(err)
			}
			boot, _ := disklayout.PartitionByNumber(got, 1)
			root, _ := disklayout.PartitionByNumber(got, 2)
			if boot == nil || root == nil || boot.Label != "bootfs" || root.Label != "rootfs" || root.Start+root.Size < 319<<20 {
				t.Errorf("restored layout: %+v", got.Partitions)
			}
		})
	}
	t.Run("only partition 2", func(t *testing.T) {
		set := backupOK(t, t.TempDir(), "-t", "tar", "-P", "*", "--source-disk", d.Path)
		code, out, errOut := cli(context.Background(), "restore", "-F", set, "--partitions", "2", "--to", filepath.Join(t.TempDir(), "x.img"), "--size", "320M")
		if code != 0 || strings.Contains(out, "format partition 1") || !strings.Contains(out, "partition 1 (the boot partition) is not restored") {
			t.Errorf("plan: exit %d\n%s\n%s", code, out, errOut)
		}
	})
}

// TestRestoreBootTar restores a set whose boot partition is a tar
// (--boot-tar, .tmg): FAT32 made with go-diskfs, files extracted in Go.
func TestRestoreBootTar(t *testing.T) {
	d := fixture(t)
	set := backupOK(t, t.TempDir(), "-t", "tgz", "--boot-tar", "--source-disk", d.Path)
	restoreAndCompare(t, d, set)
}

// TestRestoreRaspiBackupDamaged: sets without a manifest (as raspiBackup
// writes them) have no checksums; a truncated compressed stream and a tar
// cut at a member boundary must still fail, leaving no partition table.
func TestRestoreRaspiBackupDamaged(t *testing.T) {
	d := fixture(t)
	backups := t.TempDir()
	ddz := backupOK(t, backups, "--source-disk", d.Path, "-t", "ddz")
	tarSet := backupOK(t, backups, "--source-disk", d.Path, "-t", "tar")
	strip := func(t *testing.T, set string) string {
		dir := filepath.Join(t.TempDir(), "testpi")
		os.MkdirAll(dir, 0o755)
		dst := filepath.Join(dir, filepath.Base(set))
		runTool(t, "cp", "-a", "--sparse=always", set, dst)
		os.Remove(testfs.ManifestPath(t, dst))
		return dst
	}
	t.Run("ddz-truncated", func(t *testing.T) {
		set := strip(t, ddz)
		p := filepath.Join(set, filepath.Base(set)+".img.gz")
		fi, _ := os.Stat(p)
		os.Truncate(p, fi.Size()*3/4)
		img := filepath.Join(t.TempDir(), "t.img")
		code, _, errOut := cli(context.Background(), "restore", "--yes", set, "--to", img, "--size", "320M")
		t.Logf("exit %d: %s", code, lastLine(errOut))
		if code != 1 || !strings.Contains(errOut, "incomplete") {
			t.Errorf("exit %d; want 1 and incomplete: %s", code, errOut)
		}
		noTable(t, img)
	})
	t.Run("tar-without-end-marker", func(t *testing.T) {
		set := strip(t, tarSet)
		p := filepath.Join(set, filepath.Base(set)+".tar")
		// Cut the archive right after its last member's data: no
		// end-of-archive marker, every member whole.
		if err := os.Truncate(p, tarMembersEnd(t, p)); err != nil {
			t.Fatal(err)
		}
		img := filepath.Join(t.TempDir(), "t.img")
		code, _, errOut := cli(context.Background(), "restore", "--yes", set, "--to", img, "--size", "320M")
		t.Logf("exit %d: %s", code, lastLine(errOut))
		if code != 1 || !strings.Contains(errOut, "incomplete") || !strings.Contains(errOut, "end-of-archive") {
			t.Errorf("exit %d; want 1, incomplete, end-of-archive: %s", code, errOut)
		}
		noTable(t, img)
	})
}

// tarMembersEnd returns the offset just after the last member (data and
// padding) of the tar file p.
func tarMembersEnd(t *testing.T, p string) int64 {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cr := &countReader{r: f}
	tr := tar.NewReader(cr)
	var end int64
	for {
		if _, err := tr.Next(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, tr); err != nil {
			t.Fatal(err)
		}
		end = (cr.n + 511) / 512 * 512
	}
	return end
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	return n, err
}
