package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/pibackup/pibackup/internal/disklayout"
	"github.com/pibackup/pibackup/internal/testfs"
)

// A NOOBS/PINN card: a primary recovery FAT, an extended partition and
// logical partitions for the installed OS. Offsets in 512-byte sectors.
const (
	noobsDiskID  = 0x4e4f4f42
	noobsSize    = 256 << 20
	noobsRecov   = 8192   // p1, 32 MiB FAT16, type e
	noobsExt     = 73728  // p2, extended, type 5, to the end of the disk
	noobsBoot    = 81920  // p5, 64 MiB FAT32, type c
	noobsRoot    = 221184 // p6, 128 MiB ext4, type 83
	noobsData    = 491520 // p7, 16 MiB ext4, type 83 (not backed up by -T "1 5 6")
	noobsRootUID = "6e6f6f62-7300-4000-8000-000000000006"
)

// noobsPart is one partition of the NOOBS card: number, start and size in
// sectors, MBR type.
type noobsPart struct {
	n           int
	start, size int64
	typ         string
}

var noobsParts = []noobsPart{
	{1, noobsRecov, 65536, "e"},
	{2, noobsExt, noobsSize/512 - noobsExt, "5"},
	{5, noobsBoot, 131072, "c"},
	{6, noobsRoot, 262144, "83"},
	{7, noobsData, noobsSize/512 - noobsData, "83"},
}

func noobsPartByNumber(n int) noobsPart {
	for _, p := range noobsParts {
		if p.n == n {
			return p
		}
	}
	panic(fmt.Sprint("no NOOBS partition ", n))
}

// noobsFATFiles are the files of the two FAT partitions.
var noobsFATFiles = map[int]map[string]string{
	1: {"RECOVERY.ELF": strings.Repeat("recovery ", 20000), "recovery.cmdline": "runinstaller quiet\n"},
	5: {
		"config.txt":      "arm_64bit=1\n",
		"cmdline.txt":     fmt.Sprintf("console=serial0,115200 root=PARTUUID=%08x-06 rootfstype=ext4 rootwait\n", noobsDiskID),
		"kernel8.img":     strings.Repeat("kernel8 ", 100000),
		"overlays/README": "overlays\n",
	},
}

// buildNOOBSDisk makes the card: the table with sfdisk (which writes the
// EBR chain), FATs with mkfs.vfat and mcopy, ext4s with mkfs.ext4 and a
// real mount holding testfs.Populate's tree and an fstab naming p5/p6.
func buildNOOBSDisk(t *testing.T) string {
	t.Helper()
	testfs.Require(t, "pidisk")
	img := filepath.Join(t.TempDir(), "noobs.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(noobsSize)
	f.Close()
	script := fmt.Sprintf("label: dos\nlabel-id: %#08x\nunit: sectors\n\n", noobsDiskID)
	for _, p := range noobsParts {
		if p.n == 2 {
			script += fmt.Sprintf("start=%d, type=%s\n", p.start, p.typ)
		} else {
			script += fmt.Sprintf("start=%d, size=%d, type=%s\n", p.start, p.size, p.typ)
		}
	}
	cmd := exec.Command("sfdisk", "--no-reread", "--no-tell-kernel", img)
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	for _, fat := range []struct {
		n           int
		bits, label string
		serial      string
	}{{1, "16", "RECOVERY", "0A0B0C01"}, {5, "32", "boot", "0A0B0C05"}} {
		p := noobsPartByNumber(fat.n)
		runTool(t, "mkfs.vfat", "-F", fat.bits, "-s", "1", "-n", fat.label, "-i", fat.serial,
			"--offset", fmt.Sprint(p.start), "-h", fmt.Sprint(p.start), img, fmt.Sprint(p.size/2))
		stage := t.TempDir()
		for name, body := range noobsFATFiles[fat.n] {
			os.MkdirAll(filepath.Dir(filepath.Join(stage, name)), 0o755)
			if err := os.WriteFile(filepath.Join(stage, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		es, _ := os.ReadDir(stage)
		args := []string{"-s", "-m", "-Q", "-i", fmt.Sprintf("%s@@%d", img, p.start*512)}
		for _, e := range es {
			args = append(args, filepath.Join(stage, e.Name()))
		}
		cmd := exec.Command("mcopy", append(args, "::/")...)
		cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("mcopy: %v\n%s", err, out)
		}
	}
	for _, ext := range []struct {
		n           int
		label, uuid string
	}{{6, "rootfs", noobsRootUID}, {7, "data", "6e6f6f62-7300-4000-8000-000000000007"}} {
		p := noobsPartByNumber(ext.n)
		dev := testfs.AttachLoop(t, img, p.start*512, p.size*512, false)
		runTool(t, "mkfs.ext4", "-q", "-F", "-L", ext.label, "-U", ext.uuid, "-b", "4096", "-I", "256",
			"-E", "lazy_itable_init=0,lazy_journal_init=0", dev)
		mnt := t.TempDir()
		mountNow(t, dev, mnt, false)
		if ext.n == 6 {
			if err := testfs.Populate(mnt, testfs.PopulateOptions{}); err != nil {
				t.Fatal(err)
			}
			fstab := fmt.Sprintf("proc /proc proc defaults 0 0\nPARTUUID=%08x-05 /boot vfat defaults 0 2\nPARTUUID=%08x-06 / ext4 defaults,noatime 0 1\n", noobsDiskID, noobsDiskID)
			if err := os.WriteFile(filepath.Join(mnt, "etc/fstab"), []byte(fstab), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(mnt, "etc/hostname"), []byte("noobs\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		} else {
			os.WriteFile(filepath.Join(mnt, "data.txt"), []byte("the data partition\n"), 0o644)
		}
		unmountNow(t, mnt)
	}
	return img
}

// mountNow mounts an ext4 that the test unmounts itself (unmountNow)
// before the image is read by the next step.
func mountNow(t *testing.T, dev, dir string, ro bool) {
	t.Helper()
	flags := uintptr(unix.MS_NOATIME)
	if ro {
		flags |= unix.MS_RDONLY
	}
	if err := unix.Mount(dev, dir, "ext4", flags, ""); err != nil {
		t.Fatalf("mount %s: %v", dev, err)
	}
}

func unmountNow(t *testing.T, dir string) {
	t.Helper()
	if err := unix.Unmount(dir, 0); err != nil {
		t.Fatalf("unmount %s: %v", dir, err)
	}
}

// makeNOOBSRaspiBackupSet lays out a partition-oriented set of the NOOBS
// card as `raspiBackup -P -T "1 5 6" -t tgz` leaves it: the .sfdisk dump
// and .mbr of /dev/mmcblk0, `blkid` of every device (the backup disk
// /dev/sda1 included), `parted -m print`, `fdisk -l`, and one
// mmcblk0pN.tgz per selected partition made by GNU tar from the mounted
// filesystem (the FATs from their files, vfat cannot be mounted here).
func makeNOOBSRaspiBackupSet(t *testing.T, img, backups string) string {
	t.Helper()
	name := "noobs@debian12-tgz-backup-20240416-094106"
	set := filepath.Join(backups, "noobs", name)
	if err := os.MkdirAll(set, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(n, body string) {
		if err := os.WriteFile(filepath.Join(set, n), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dump := runTool(t, "sfdisk", "--dump", img)
	dump = strings.ReplaceAll(dump, img, "/dev/mmcblk0p")
	dump = strings.ReplaceAll(dump, "device: /dev/mmcblk0p", "device: /dev/mmcblk0")
	write("noobs-backup.sfdisk", dump)
	mbr := make([]byte, 512)
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	f.ReadAt(mbr, 0)
	f.Close()
	write("noobs-backup.mbr", string(mbr))
	id := fmt.Sprintf("%08x", noobsDiskID)
	write("noobs-backup.blkid", strings.Join([]string{
		`/dev/sda1: LABEL="backup" UUID="9f0e1a2b-0000-4000-8000-00000000000a" BLOCK_SIZE="4096" TYPE="ext4" PARTUUID="c0ffee00-01"`,
		`/dev/mmcblk0p1: SEC_TYPE="msdos" LABEL_FATBOOT="RECOVERY" LABEL="RECOVERY" UUID="0A0B-0C01" BLOCK_SIZE="512" TYPE="vfat" PARTUUID="` + id + `-01"`,
		`/dev/mmcblk0p2: PTTYPE="dos" PARTUUID="` + id + `-02"`,
		`/dev/mmcblk0p5: LABEL_FATBOOT="boot" LABEL="boot" UUID="0A0B-0C05" BLOCK_SIZE="512" TYPE="vfat" PARTUUID="` + id + `-05"`,
		`/dev/mmcblk0p6: LABEL="rootfs" UUID="` + noobsRootUID + `" BLOCK_SIZE="4096" TYPE="ext4" PARTUUID="` + id + `-06"`,
		`/dev/mmcblk0p7: LABEL="data" UUID="6e6f6f62-7300-4000-8000-000000000007" BLOCK_SIZE="4096" TYPE="ext4" PARTUUID="` + id + `-07"`,
		"",
	}, "\n"))
	// parted 3.5 `parted -m /dev/mmcblk0 print` (parted is not installed
	// here; the restore reads only the filesystem column).
	write("noobs-backup.parted", "BYT;\n/dev/mmcblk0:268MB:sd/mmc:512:512:msdos:SD SC16G:;\n"+
		"1:4194kB:37.7MB:33.6MB:fat16::lba;\n2:37.7MB:268MB:231MB:::lba;\n5:41.9MB:109MB:67.1MB:fat32::lba;\n"+
		"6:113MB:247MB:134MB:ext4::;\n7:252MB:268MB:16.8MB:ext4::;\n")
	fd := runTool(t, "fdisk", "-l", img)
	write("noobs-backup.fdisk", strings.ReplaceAll(fd, img, "/dev/mmcblk0p"))
	for n, files := range noobsFATFiles {
		stage := t.TempDir()
		for fn, body := range files {
			os.MkdirAll(filepath.Dir(filepath.Join(stage, fn)), 0o755)
			os.WriteFile(filepath.Join(stage, fn), []byte(body), 0o755)
		}
		runTool(t, "tar", "-cpiz", "--one-file-system", "--numeric-owner", "-f", filepath.Join(set, fmt.Sprintf("mmcblk0p%d.tgz", n)), "-C", stage, ".")
	}
	root := noobsPartByNumber(6)
	mnt := t.TempDir()
	mountNow(t, testfs.AttachLoop(t, img, root.start*512, root.size*512, true), mnt, true)
	runTool(t, "tar", "-cpiz", "--one-file-system", "--numeric-owner", "--xattrs", "--xattrs-include=*", "--acls",
		"-f", filepath.Join(set, "mmcblk0p6.tgz"), "-C", mnt, ".")
	unmountNow(t, mnt)
	write("raspiBackup.log", "")
	write("raspiBackup.msg", "")
	return set
}

// sfdiskJSON is `sfdisk --json`'s view of a table.
type sfdiskJSON struct {
	PartitionTable struct {
		Label      string `json:"label"`
		ID         string `json:"id"`
		Partitions []struct {
			Node  string `json:"node"`
			Start int64  `json:"start"`
			Size  int64  `json:"size"`
			Type  string `json:"type"`
		} `json:"partitions"`
	} `json:"partitiontable"`
}

// judgeNOOBSRestore checks a restored NOOBS card with independent tools:
// sfdisk sees the extended partition and the logical partitions where
// the source had them (p7, the last Linux partition, grown to the disk,
// p2 with it); fsck.vfat finds the FATs clean and mtools reads their
// files; e2fsck -fn finds the root clean and its tree equals the
// source's; cmdline.txt and fstab name the new disk's PARTUUIDs.
func judgeNOOBSRestore(t *testing.T, src, img string, size int64, restored []int) {
	t.Helper()
	var js sfdiskJSON
	if err := json.Unmarshal([]byte(runTool(t, "sfdisk", "--json", img)), &js); err != nil {
		t.Fatal(err)
	}
	grow := (size - noobsSize) / 512
	got := map[int]noobsPart{}
	for _, p := range js.PartitionTable.Partitions {
		n := 0
		fmt.Sscanf(strings.TrimPrefix(p.Node, img), "%d", &n)
		got[n] = noobsPart{n, p.Start, p.Size, p.Type}
	}
	for _, want := range noobsParts {
		if want.n == 2 || want.n == 7 {
			want.size += grow
		}
		if g := got[want.n]; g != want {
			t.Errorf("restored partition %d = %+v; want %+v (sfdisk --json:\n%s)", want.n, g, want, runTool(t, "sfdisk", "--dump", img))
		}
	}
	if len(got) != len(noobsParts) {
		t.Errorf("restored table has partitions %v; want 1, 2, 5, 6, 7", got)
	}
	for _, n := range restored {
		p := noobsPartByNumber(n)
		switch n {
		case 1, 5:
			dev := testfs.AttachLoop(t, img, p.start*512, p.size*512, true)
			if out, err := exec.Command("fsck.vfat", "-n", dev).CombinedOutput(); err != nil {
				t.Errorf("fsck.vfat partition %d: %v\n%s", n, err, out)
			}
			for fn, body := range noobsFATFiles[n] {
				cmd := exec.Command("mtype", "-i", fmt.Sprintf("%s@@%d", img, p.start*512), "::/"+fn)
				cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
				out, err := cmd.Output()
				if fn == "cmdline.txt" {
					continue // rewritten for the new ids; checked below
				}
				if err != nil || string(out) != body {
					t.Errorf("partition %d: %s = %d bytes, %v; want %d bytes", n, fn, len(out), err, len(body))
				}
			}
		case 6:
			dev := testfs.AttachLoop(t, img, p.start*512, p.size*512, true)
			if out, err := exec.Command("e2fsck", "-fn", dev).CombinedOutput(); err != nil {
				t.Errorf("e2fsck -fn partition 6: %v\n%s", err, out)
			}
			want, gotRoot := t.TempDir(), t.TempDir()
			testfs.MountExt4(t, testfs.AttachLoop(t, src, p.start*512, p.size*512, true), want, true)
			testfs.MountExt4(t, dev, gotRoot, true)
			compareTrees(t, want, gotRoot, "etc/fstab")
		}
	}
	d, err := disklayout.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	root := noobsPartByNumber(6)
	fstab, err := testfs.ReadRootFile(img, root.start*512, "/etc/fstab")
	if err != nil {
		t.Fatal(err)
	}
	cmdline, err := testfs.ExtractFile(img, noobsBoot*512, "cmdline.txt")
	if err != nil {
		t.Fatal(err)
	}
	if bad := testfs.CheckIDs(d, string(cmdline), string(fstab)); len(bad) > 0 {
		t.Errorf("ids after restore: %q\ncmdline.txt: %s\nfstab:\n%s", bad, cmdline, fstab)
	}
	if strings.Contains(string(cmdline)+string(fstab), fmt.Sprintf("%08x", noobsDiskID)) && d.DiskID == fmt.Sprintf("%#08x", noobsDiskID) {
		t.Logf("the restore kept the disk id %s", d.DiskID)
	}
}

// TestRestoreNOOBSRaspiBackupSet restores a raspiBackup -P -T "1 5 6"
// set of a NOOBS card (extended partition, logical boot and root) onto a
// larger image. Before logical partitions were read and written, the
// restore refused the table ("logical partitions are not supported").
func TestRestoreNOOBSRaspiBackupSet(t *testing.T) {
	src := buildNOOBSDisk(t)
	set := makeNOOBSRaspiBackupSet(t, src, t.TempDir())
	const size = 320 << 20
	if code, vout, verr := cli(context.Background(), "verify", set); code != 0 {
		t.Errorf("verify: exit %d\n%s\n%s", code, vout, verr)
	}
	code, out, errOut := cli(context.Background(), "restore", "-F", set, "--to", filepath.Join(t.TempDir(), "restored.img"), "--size", "320M")
	t.Logf("plan:\n%s%s", out, errOut)
	if code != 0 {
		t.Fatalf("plan: exit %d", code)
	}
	for _, want := range []string{"format partition 1 vfat", "format partition 5 vfat", "format partition 6 ext4", "partition 7"} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q", want)
		}
	}
	if strings.Contains(out, "format partition 2") || strings.Contains(out, "format partition 7") {
		t.Errorf("plan formats the extended partition or partition 7, which the set does not hold")
	}
	judgeNOOBSRestore(t, src, restoreNOOBS(t, set), size, []int{1, 5, 6})
}

// TestBackupRestoreNOOBS: backupctl's own -P backup of a NOOBS card reads
// the logical partitions (p5, p6, p7 behind the extended p2), skips the
// extended partition, and its set restores to the same card.
func TestBackupRestoreNOOBS(t *testing.T) {
	src := buildNOOBSDisk(t)
	set := backupOK(t, t.TempDir(), "-t", "tar", "-P", "1 5 6", "--source-disk", src)
	m := readManifest(t, set)
	if !m.PartitionMode || !slices.Equal(m.Partitions, []int{1, 5, 6}) {
		t.Errorf("manifest partition mode %v partitions %v; want 1, 5, 6", m.PartitionMode, m.Partitions)
	}
	files := setFiles(t, set)
	for _, f := range []string{"mmcblk0p1.tar", "mmcblk0p5.tar", "mmcblk0p6.tar"} {
		if !slices.Contains(files, f) {
			t.Errorf("set lacks %s: %q", f, files)
		}
	}
	blkid, _ := os.ReadFile(filepath.Join(set, "noobs-backup.blkid"))
	dump, _ := os.ReadFile(filepath.Join(set, "noobs-backup.sfdisk"))
	for _, want := range []string{`/dev/mmcblk0p6: LABEL="rootfs" UUID="` + noobsRootUID + `"`, `/dev/mmcblk0p5: LABEL_FATBOOT="boot"`} {
		if !strings.Contains(string(blkid), want) {
			t.Errorf("blkid file lacks %q:\n%s", want, blkid)
		}
	}
	if !strings.Contains(string(dump), "/dev/mmcblk0p7 : start=      491520, size=       32768, type=83") {
		t.Errorf("sfdisk dump lacks the logical partition 7:\n%s", dump)
	}
	img := restoreNOOBS(t, set)
	judgeNOOBSRestore(t, src, img, 320<<20, []int{1, 5, 6})
}

// TestBackupNOOBSNormalMode: a normal-mode backup of a NOOBS card saves
// the system's boot partition (p5, whose cmdline.txt names p6 as root)
// and root, not the recovery FAT in p1 that comes first on the card; the
// set restores onto the same table, boot and root in p5 and p6.
func TestBackupNOOBSNormalMode(t *testing.T) {
	src := buildNOOBSDisk(t)
	set := backupOK(t, t.TempDir(), "-t", "tgz", "--source-disk", src)
	m := readManifest(t, set)
	if m.BootPartition != 5 || m.RootPartition != 6 {
		t.Errorf("manifest boot partition %d, root %d; want 5 and 6", m.BootPartition, m.RootPartition)
	}
	want, err := testfs.ExtractFile(src, noobsBoot*512, "kernel8.img")
	if err != nil {
		t.Fatal(err)
	}
	got, err := testfs.ExtractFile(filepath.Join(set, "noobs-backup.img"), 0, "kernel8.img")
	if err != nil || string(got) != string(want) {
		t.Errorf("the set's boot image is not partition 5: kernel8.img %d bytes, %v", len(got), err)
	}
	img := restoreNOOBS(t, set)
	judgeNOOBSRestore(t, src, img, 320<<20, []int{5, 6})
}

// restoreNOOBS restores set onto a new 320 MiB image and returns it.
func restoreNOOBS(t *testing.T, set string) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "restored.img")
	code, out, errOut := cli(context.Background(), "restore", "--yes", set, "--to", img, "--size", "320M")
	t.Logf("restore:\n%s%s", out, errOut)
	if code != 0 {
		t.Fatalf("restore: exit %d", code)
	}
	if !strings.Contains(out, "checked") {
		t.Errorf("restore not verified")
	}
	return img
}

// TestRestoreNOOBSDDRefused: a dd image of a NOOBS card is refused before
// anything is written. Its logical partitions lie beyond the image head
// the plan reads; before the extended partition was checked, the restore
// would have taken the recovery FAT for the boot partition.
func TestRestoreNOOBSDDRefused(t *testing.T) {
	src := buildNOOBSDisk(t)
	name := "noobs@debian12-dd-backup-20240416-094106"
	set := filepath.Join(t.TempDir(), "noobs", name)
	if err := os.MkdirAll(set, 0o755); err != nil {
		t.Fatal(err)
	}
	runTool(t, "cp", "--sparse=always", src, filepath.Join(set, name+".img"))
	img := filepath.Join(t.TempDir(), "restored.img")
	code, out, errOut := cli(context.Background(), "restore", "--yes", set, "--to", img, "--size", "320M")
	t.Logf("restore: exit %d\n%s%s", code, out, errOut)
	if code == 0 || !strings.Contains(errOut, "logical partitions (a NOOBS/PINN card)") || !strings.Contains(errOut, "-P") {
		t.Errorf("restore of a NOOBS dd image: exit %d; want a refusal naming the logical partitions and -P", code)
	}
	if fi, err := os.Stat(img); err == nil && fi.Size() > 0 {
		t.Errorf("the refused restore wrote %s (%d bytes)", img, fi.Size())
	}
}
