package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/compress"
	"github.com/pibackup/pibackup/internal/testfs"
	"github.com/pibackup/pibackup/internal/treelist"
)

// The backup tests drive the real CLI in-process against a real Pi-like
// disk image (testfs.BuildPiDisk) given with --source-disk, and judge the
// sets with independent tools: GNU tar extracts the archives into a real
// ext4, gzip -t and zstd -t check the streams, testfs.Compare compares the
// trees with the source, and inode numbers prove rsync's hardlinks.

var shared = testfs.SharedDisk{Prefix: "backupctl-fixture-", Opts: testfs.DiskOptions{Hostname: "testpi"}}

func TestMain(m *testing.M) {
	code := m.Run()
	shared.Remove()
	if binaryPath != "" {
		os.RemoveAll(filepath.Dir(binaryPath))
	}
	os.Exit(code)
}

// fixture returns the shared Pi disk image. Tests only read it; a test
// that changes its source makes its own copy (copyFixture).
func fixture(t *testing.T) *testfs.PiDisk {
	t.Helper()
	testfs.Require(t, "rsync")
	return shared.Get(t)
}

// copyFixture makes a private copy of the fixture image that a test may
// change.
func copyFixture(t *testing.T) *testfs.PiDisk {
	t.Helper()
	d := *fixture(t)
	d.Path = filepath.Join(t.TempDir(), "pi.img")
	runTool(t, "cp", "--sparse=always", fixture(t).Path, d.Path)
	return &d
}

// mountRoot mounts the root filesystem of d (read-only unless rw) and
// returns the folder.
func mountRoot(t *testing.T, d *testfs.PiDisk, rw bool) string {
	t.Helper()
	dir := t.TempDir()
	testfs.MountExt4(t, testfs.AttachLoop(t, d.Path, d.RootStart, d.RootSize, !rw), dir, !rw)
	return dir
}

// newExt4 makes a fresh ext4 of size bytes, mounted read-write; tar
// archives are extracted there because /tmp may lack xattr support.
func newExt4(t *testing.T, size int64) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "ext4.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	runTool(t, "mkfs.ext4", "-q", "-F", "-b", "4096", "-I", "256", "-E", "lazy_itable_init=0,lazy_journal_init=0", img)
	dir := t.TempDir()
	testfs.MountExt4(t, testfs.AttachLoop(t, img, 0, 0, false), dir, false)
	return dir
}

func runTool(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// cli runs backupctl in-process.
func cli(ctx context.Context, args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(ctx, args, strings.NewReader(""), &o, &e)
	return code, o.String(), e.String()
}

// backupOK runs `backupctl backup` and returns the new set's folder.
func backupOK(t *testing.T, target string, args ...string) string {
	t.Helper()
	before := setDirs(t, target)
	code, out, errOut := cli(context.Background(), append(append([]string{"backup"}, args...), target)...)
	if code != 0 {
		t.Fatalf("backup %q = exit %d\nstdout: %s\nstderr: %s", args, code, out, errOut)
	}
	var added []string
	for _, d := range setDirs(t, target) {
		if !slices.Contains(before, d) {
			added = append(added, d)
		}
	}
	if len(added) != 1 {
		t.Fatalf("backup %q made sets %q; want exactly one", args, added)
	}
	return added[0]
}

// setDirs lists complete set folders under target.
func setDirs(t *testing.T, target string) []string {
	t.Helper()
	l, err := backupset.List(os.DirFS(target), ".")
	if err != nil {
		return nil
	}
	var out []string
	for _, s := range l.Sets {
		if !s.InProgress {
			out = append(out, filepath.Join(target, filepath.FromSlash(s.Dir)))
		}
	}
	return out
}

// readManifest reads a set's manifest and checks every file's size and
// sha256 against the bytes on disk.
func readManifest(t *testing.T, set string) *backupset.Manifest {
	t.Helper()
	f, err := os.Open(testfs.ManifestPath(t, set))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := backupset.ReadManifest(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range m.Files {
		h := sha256.New()
		g, err := os.Open(filepath.Join(set, mf.Path))
		if err != nil {
			t.Fatalf("manifest lists %s: %v", mf.Path, err)
		}
		n, err := io.Copy(h, g)
		g.Close()
		if err != nil {
			t.Fatal(err)
		}
		if n != mf.Size || hex.EncodeToString(h.Sum(nil)) != mf.SHA256 {
			t.Errorf("%s: size %d sha256 %x on disk; manifest says %d %s", mf.Path, n, h.Sum(nil), mf.Size, mf.SHA256)
		}
	}
	return m
}

// setFiles lists the top-level names in a set folder.
func setFiles(t *testing.T, set string) []string {
	t.Helper()
	es, err := os.ReadDir(set)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		n := e.Name()
		if e.IsDir() {
			n += "/"
		}
		names = append(names, n)
	}
	return names
}

// compareIgnore are the paths a set leaves out on purpose: raspiBackup's
// default excludes keep the folders but not their content.
var compareIgnore = []string{"proc/*", "sys/*", "dev/*", "tmp/*", "run/*", "media/*", "lost+found/*"}

func compareTrees(t *testing.T, src, got string, extraIgnore ...string) {
	t.Helper()
	diffs, err := testfs.Compare(src, got, testfs.CompareOptions{Ignore: append(slices.Clone(compareIgnore), extraIgnore...)})
	if err != nil {
		t.Fatal(err)
	}
	if len(diffs) > 0 {
		t.Errorf("Compare(source, %s) = %s; want no differences", got, testfs.FormatDiffs(diffs, 30))
	}
}

// extractTar extracts a tar payload with real GNU tar into a fresh ext4.
func extractTar(t *testing.T, payload string) string {
	t.Helper()
	dir := newExt4(t, 512<<20)
	args := []string{"--xattrs", "--xattrs-include=*", "--acls", "--numeric-owner", "-xpf", payload, "-C", dir}
	switch backupset.CompressionOf(payload) {
	case backupset.CompressGzip:
		args = append([]string{"-z"}, args...)
	case backupset.CompressZstd:
		args = append([]string{"--zstd"}, args...)
	}
	runTool(t, "tar", args...)
	return dir
}

func TestBackupNormalModeTypes(t *testing.T) {
	d := fixture(t)
	src := mountRoot(t, d, false)
	host := "testpi"
	tests := []struct {
		name    string
		args    []string
		typ     string
		payload string // extension of <NAME><ext>, "" for rsync
		meta    bool   // has <host>-backup.img/.sfdisk/.mbr
	}{
		{"dd", []string{"-t", "dd"}, "dd", ".img", false},
		{"ddz-gzip", []string{"-t", "ddz"}, "ddz", ".img.gz", false},
		{"dd-zstd", []string{"-t", "dd", "-z", "zstd"}, "ddz", ".img.zst", false},
		{"tar", []string{"-t", "tar"}, "tar", ".tar", true},
		{"tgz", []string{"-t", "tgz"}, "tgz", ".tgz", true},
		{"tar-zstd", []string{"-t", "tar", "-z", "zstd"}, "tar", ".tar.zst", true},
		{"rsync", []string{"-t", "rsync", "-g"}, "rsync", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := t.TempDir()
			start := time.Now()
			set := backupOK(t, target, append(tt.args, "--source-disk", d.Path)...)
			t.Logf("%s backup took %v", tt.name, time.Since(start).Round(time.Millisecond))
			name := filepath.Base(set)
			n, err := backupset.Parse(name)
			if err != nil || n.Host != host || string(n.Type) != tt.typ || n.OSRelease == "" || n.OSRelease == "unknownOS" {
				t.Fatalf("set name %q parses to %+v, %v", name, n, err)
			}
			if filepath.Dir(set) != filepath.Join(target, host) {
				t.Errorf("set at %s; want it in %s", set, filepath.Join(target, host))
			}
			if _, err := os.Stat(filepath.Join(target, host, backupset.TmpDir)); !os.IsNotExist(err) {
				t.Errorf("tmp folder left behind: %v", err)
			}
			m := readManifest(t, set)
			if string(m.Type) != tt.typ || m.Host != host || len(m.Disk.Partitions) != 2 || m.Disk.Partitions[1].PartUUID != d.RootPARTUUID {
				t.Errorf("manifest: type %s host %s disk %+v", m.Type, m.Host, m.Disk)
			}
			files := setFiles(t, set)
			if tt.meta {
				for _, suf := range []string{backupset.SuffixBootImage, backupset.SuffixSfdisk, backupset.SuffixMBR} {
					if !slices.Contains(files, host+suf) {
						t.Errorf("set lacks %s: %q", host+suf, files)
					}
				}
				checkBootImage(t, d, filepath.Join(set, host+backupset.SuffixBootImage))
			}
			if tt.payload != "" {
				payload := filepath.Join(set, name+tt.payload)
				fi, err := os.Stat(payload)
				if err != nil {
					t.Fatalf("payload: %v (set holds %q)", err, files)
				}
				var st unix.Stat_t
				unix.Stat(payload, &st)
				t.Logf("payload %s: %d bytes, %d on disk", filepath.Base(payload), fi.Size(), st.Blocks*512)
				switch backupset.CompressionOf(payload) {
				case backupset.CompressGzip:
					runTool(t, "gzip", "-t", payload)
				case backupset.CompressZstd:
					runTool(t, "zstd", "-q", "-t", payload)
				}
				if strings.Contains(tt.payload, ".img") {
					checkImage(t, d, payload)
				} else {
					compareTrees(t, src, extractTar(t, payload))
				}
			} else {
				compareTrees(t, src, set, host+"-backup.*")
				checkListing(t, set, host)
			}
		})
	}
}

// checkImage compares a (compressed) dd payload with the source image.
func checkImage(t *testing.T, d *testfs.PiDisk, payload string) {
	t.Helper()
	want := fileSHA(t, d.Path, backupset.CompressNone)
	if got := fileSHA(t, payload, backupset.CompressionOf(payload)); got != want {
		t.Errorf("%s: content sha256 %s; source image %s", filepath.Base(payload), got, want)
	}
}

// checkBootImage compares <host>-backup.img with the source's partition 1.
func checkBootImage(t *testing.T, d *testfs.PiDisk, img string) {
	t.Helper()
	f, err := os.Open(d.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, d.BootStart, d.BootSize)); err != nil {
		t.Fatal(err)
	}
	if got, want := fileSHA(t, img, backupset.CompressNone), hex.EncodeToString(h.Sum(nil)); got != want {
		t.Errorf("boot image sha256 %s; source partition 1 %s", got, want)
	}
}

func fileSHA(t *testing.T, p string, c backupset.Compression) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := compress.NewReader(f, c)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// checkListing regenerates an rsync set's tree listing and compares it with
// the stored one.
func checkListing(t *testing.T, set, host string) {
	t.Helper()
	stored, err := os.ReadFile(filepath.Join(set, backupset.TreeListingName(host, "")))
	if err != nil {
		t.Fatal(err)
	}
	var now bytes.Buffer
	if _, _, err := treelist.Write(&now, set, treeExcludeForTest(host)); err != nil {
		t.Fatal(err)
	}
	if d, err := treelist.Diff(bytes.NewReader(stored), &now); err != nil || d != "" {
		t.Errorf("stored listing differs from the set: %s %v", d, err)
	}
}

func treeExcludeForTest(host string) func(string) bool {
	return func(rel string) bool {
		if strings.Contains(rel, "/") {
			return false
		}
		return strings.HasPrefix(rel, host+"-backup.")
	}
}

func TestBackupRsyncIncremental(t *testing.T) {
	d := copyFixture(t)
	target := t.TempDir()
	first := backupOK(t, target, "--source-disk", d.Path)

	// Change one file on the source; the subtest's cleanup unmounts it.
	t.Run("change-source", func(t *testing.T) {
		root := mountRoot(t, d, true)
		if err := os.WriteFile(filepath.Join(root, testfs.PathNotes), []byte("changed after the first backup\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	})
	second := backupOK(t, target, "--source-disk", d.Path)
	m := readManifest(t, second)
	if m.PreviousSet != filepath.Base(first) {
		t.Errorf("manifest previous set = %q; want %q", m.PreviousSet, filepath.Base(first))
	}
	var shared, changed, regular int
	err := filepath.Walk(second, func(p string, fi os.FileInfo, err error) error {
		if err != nil || !fi.Mode().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(second, p)
		if !strings.Contains(rel, "/") && strings.HasPrefix(rel, "testpi-backup.") {
			return nil
		}
		regular++
		var a, b unix.Stat_t
		if err := unix.Lstat(p, &a); err != nil {
			return err
		}
		if err := unix.Lstat(filepath.Join(first, rel), &b); err != nil {
			return err
		}
		switch {
		case a.Ino == b.Ino:
			shared++
		case rel == testfs.PathNotes:
			changed++
		default:
			t.Errorf("%s: not hardlinked to the first set", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if changed != 1 || shared != regular-1 {
		t.Errorf("second set: %d regular files, %d shared with the first, %d changed; want all but the changed one shared", regular, shared, changed)
	}
	// The boot files were equal, so they are hardlinks too.
	for _, suf := range []string{backupset.SuffixBootImage, backupset.SuffixSfdisk, backupset.SuffixMBR} {
		if !sameInode(t, filepath.Join(first, "testpi"+suf), filepath.Join(second, "testpi"+suf)) {
			t.Errorf("%s not hardlinked to the previous set", "testpi"+suf)
		}
	}
	out := runTool(t, "du", "-s", "--block-size=1K", first, second)
	t.Logf("du (KiB) of first and second set, second counts only new blocks:\n%s", out)
	compareTrees(t, mountRoot(t, d, false), second, "testpi-backup.*")
	checkListing(t, second, "testpi")
}

func sameInode(t *testing.T, a, b string) bool {
	t.Helper()
	var sa, sb unix.Stat_t
	if err := unix.Lstat(a, &sa); err != nil {
		t.Fatal(err)
	}
	if err := unix.Lstat(b, &sb); err != nil {
		t.Fatal(err)
	}
	return sa.Ino == sb.Ino && sa.Dev == sb.Dev
}

func TestBackupPartitionMode(t *testing.T) {
	d := fixture(t)
	src := mountRoot(t, d, false)
	for _, typ := range []string{"tar", "rsync"} {
		t.Run(typ, func(t *testing.T) {
			target := t.TempDir()
			set := backupOK(t, target, "-t", typ, "-P", "*", "--source-disk", d.Path)
			m := readManifest(t, set)
			if !m.PartitionMode || !slices.Equal(m.Partitions, []int{1, 2}) {
				t.Errorf("manifest partition mode %v partitions %v", m.PartitionMode, m.Partitions)
			}
			files := setFiles(t, set)
			for _, suf := range []string{backupset.SuffixSfdisk, backupset.SuffixBlkid, backupset.SuffixParted, backupset.SuffixFdisk, backupset.SuffixMBR} {
				if !slices.Contains(files, "testpi"+suf) {
					t.Errorf("set lacks testpi%s: %q", suf, files)
				}
			}
			blkid, _ := os.ReadFile(filepath.Join(set, "testpi"+backupset.SuffixBlkid))
			if !strings.Contains(string(blkid), `/dev/mmcblk0p2: LABEL="rootfs"`) || !strings.Contains(string(blkid), `TYPE="vfat"`) {
				t.Errorf("blkid file:\n%s", blkid)
			}
			var rootTree, bootTree string
			if typ == "tar" {
				rootTree = extractTar(t, filepath.Join(set, "mmcblk0p2.tar"))
				bootTree = extractTar(t, filepath.Join(set, "mmcblk0p1.tar"))
			} else {
				rootTree = filepath.Join(set, "mmcblk0p2")
				bootTree = filepath.Join(set, "mmcblk0p1")
			}
			compareTrees(t, src, rootTree)
			for _, f := range []string{"cmdline.txt", "config.txt", "overlays/README", "kernel8.img"} {
				want, err := testfs.ExtractFile(d.Path, d.BootStart, f)
				if err != nil {
					t.Fatal(err)
				}
				got, err := os.ReadFile(filepath.Join(bootTree, f))
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("boot file %s: %d bytes, %v; want %d bytes equal to the source", f, len(got), err, len(want))
				}
			}
		})
	}
}

func TestBackupDryRunWritesNothing(t *testing.T) {
	d := fixture(t)
	target := t.TempDir()
	code, out, errOut := cli(context.Background(), "backup", "-F", "-t", "tgz", "--source-disk", d.Path, target)
	if code != 0 {
		t.Fatalf("dry run = %d: %s", code, errOut)
	}
	t.Logf("plan:\n%s", out)
	for _, want := range []string{"testpi@", "-tgz-backup-", "testpi-backup.img", ".tgz", "needs about"} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q:\n%s", want, out)
		}
	}
	if es, _ := os.ReadDir(target); len(es) != 0 {
		t.Errorf("dry run wrote %d entries into the target", len(es))
	}
}

func TestBackupUsageErrors(t *testing.T) {
	target := t.TempDir()
	for _, tt := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"backup", "-t", "zip", target}, exitUsage, "unknown backup type"},
		{[]string{"backup", "-z", "lz4", target}, exitUsage, "unknown compression"},
		{[]string{"backup", "-P", "x", target}, exitUsage, "partition"},
		{[]string{"backup", target, target}, exitUsage, "accepts at most 1 arg"},
		{[]string{"backup", "-t", "dd", "-P", "1", "--source-disk", "/nonexistent", target}, exitPreflight, "partition-oriented mode"},
		{[]string{"backup", "-t", "tgz", "-z", "zstd", target}, exitPreflight, "tgz"},
		{[]string{"backup", "-u", "--exclude=/x", target}, exitPreflight, "give the path pattern only"},
		{[]string{"backup", "--source-disk", "/nonexistent.img", filepath.Join(target, "missing")}, exitPreflight, "does not exist"},
	} {
		code, _, errOut := cli(context.Background(), tt.args...)
		if code != tt.code || !strings.Contains(errOut, tt.msg) || strings.Count(strings.TrimSpace(errOut), "\n") > 0 {
			t.Errorf("%q = exit %d, stderr %q; want exit %d, one line with %q", tt.args, code, errOut, tt.code, tt.msg)
		}
	}
}

// TestBackupTargetFull backs up onto a small ext4: once with too little
// room for the estimate (refused before writing) and once where the
// estimate fits but the data does not (an incremental rsync set after a
// large new file: fails while writing). Neither may leave anything that
// looks like a set; the older set stays intact and the next run, with
// room again, succeeds.
func TestBackupTargetFull(t *testing.T) {
	d := copyFixture(t)
	target := newExt4(t, 256<<20)
	older := backupOK(t, target, "--source-disk", d.Path)
	olderManifest := readManifest(t, older)

	// A used-blocks dd image of the fixture fits; one read in full does not.
	code, _, errOut := cli(context.Background(), "backup", "-t", "dd", "--full-read", "--source-disk", d.Path, target)
	if code != exitPreflight || !strings.Contains(errOut, "needs about") {
		t.Errorf("dd onto a too small target = exit %d, %q; want %d and the needed space", code, errOut, exitPreflight)
	}

	t.Run("grow-source", func(t *testing.T) {
		root := mountRoot(t, d, true)
		big := make([]byte, 100<<20)
		for i := range big {
			big[i] = byte(i*7 + i>>9) // not all zero, so neither sparse nor deduplicated
		}
		if err := os.WriteFile(filepath.Join(root, "home/pi/big.bin"), big, 0o644); err != nil {
			t.Fatal(err)
		}
	})
	fillTo(t, target, 72<<20)
	code, _, errOut = cli(context.Background(), "backup", "--source-disk", d.Path, target)
	t.Logf("full target: exit %d: %s", code, strings.TrimSpace(errOut))
	if code != exitFailure || !strings.Contains(errOut, "no space left") || strings.Count(strings.TrimSpace(errOut), "\n") > 0 {
		t.Errorf("backup onto a full target = exit %d, %q; want %d and one line saying the target is full", code, errOut, exitFailure)
	}
	checkNoPartialSet(t, target)
	if got := readManifest(t, older); len(got.Files) != len(olderManifest.Files) {
		t.Errorf("older set changed")
	}
	if err := os.Remove(filepath.Join(target, "filler")); err != nil {
		t.Fatal(err)
	}
	backupOK(t, target, "--source-disk", d.Path)
}

// fillTo writes a filler file so that only free bytes remain on target.
func fillTo(t *testing.T, target string, free int64) {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(target, &st); err != nil {
		t.Fatal(err)
	}
	have := int64(st.Bavail) * st.Bsize
	if have <= free {
		return
	}
	f, err := os.Create(filepath.Join(target, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Fallocate(int(f.Fd()), 0, 0, have-free); err != nil {
		t.Fatal(err)
	}
}

// checkNoPartialSet fails if anything outside <host>/tmp looks like a set
// without being complete, or if tmp holds anything.
func checkNoPartialSet(t *testing.T, target string) {
	t.Helper()
	l, err := backupset.List(os.DirFS(target), ".")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range l.Sets {
		if s.InProgress {
			t.Errorf("partial set left in tmp: %s", s.Dir)
			continue
		}
		if !s.HasManifest {
			t.Errorf("set without manifest: %s", s.Dir)
		}
	}
}

// TestBackupCancel cancels a backup mid-way through its context (what
// SIGTERM does to the real binary) and kills the real binary with SIGKILL;
// then the next run succeeds and nothing partial is visible.
func TestBackupCancel(t *testing.T) {
	d := fixture(t)
	target := t.TempDir()
	older := backupOK(t, target, "-t", "tar", "-z", "zstd", "--source-disk", d.Path)

	// The source is read through a gate that holds the backup once it
	// writes its payload, so the cancel and the signals land mid-write
	// on any machine.
	gate := testfs.NewGate(t, t.TempDir(), d.Path)
	tmp := filepath.Join(target, "testpi", backupset.TmpDir)

	t.Run("context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		stop := cancelMidWrite(t, gate, tmp, cancel)
		code, _, errOut := cli(ctx, "backup", "-t", "ddz", "--source-disk", gate.Path(d.Path), target)
		stop()
		if code != exitCancelled {
			t.Fatalf("cancelled backup = exit %d (%s); want %d", code, errOut, exitCancelled)
		}
		checkNoPartialSet(t, target)
	})

	bin := builtBinary(t)
	// startMidWrite starts the real binary and returns once its set folder
	// exists in tmp, i.e. while it writes.
	// The caller signals it, then releases the gate and waits.
	startMidWrite := func(t *testing.T, args ...string) (*exec.Cmd, *bytes.Buffer) {
		holdMidWrite(gate, tmp, "testpi")
		cmd := exec.Command(bin, append(append([]string{"backup"}, args...), "--source-disk", gate.Path(d.Path), target)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() {
			defer close(exited)
			// Wait for the end without reaping, so cmd.Wait still works.
			for {
				var info unix.Siginfo
				if err := unix.Waitid(unix.P_PID, cmd.Process.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil); err != unix.EINTR {
					return
				}
			}
		}()
		if err := gate.WaitHeld(exited, 2*time.Minute); err != nil {
			gate.Release()
			cmd.Wait()
			t.Fatalf("the backup was never held mid-write: %v\n%s", err, stderr.String())
		}
		return cmd, &stderr
	}

	t.Run("sigterm", func(t *testing.T) {
		cmd, stderr := startMidWrite(t, "-t", "ddz")
		cmd.Process.Signal(syscall.SIGTERM)
		gate.Release()
		err := cmd.Wait()
		if code := cmd.ProcessState.ExitCode(); code != exitCancelled {
			t.Errorf("SIGTERM: exit %d (%v) %s; want %d", code, err, stderr, exitCancelled)
		}
		t.Logf("SIGTERM: %s", strings.TrimSpace(stderr.String()))
		checkNoPartialSet(t, target)
	})

	t.Run("sigkill", func(t *testing.T) {
		cmd, stderr := startMidWrite(t, "-t", "rsync")
		cmd.Process.Signal(syscall.SIGKILL)
		gate.Release()
		err := cmd.Wait()
		t.Logf("killed backupctl: %v %s", err, stderr.String())
		if es, _ := os.ReadDir(filepath.Join(target, "testpi", "tmp")); len(es) == 0 {
			t.Log("the killed run left nothing in tmp (it was killed too late to test the cleanup)")
		}
		for _, s := range setDirs(t, target) {
			if s != older {
				m, err := os.Stat(testfs.ManifestPath(t, s))
				t.Errorf("a set appeared outside tmp after SIGKILL: %s (%v %v)", s, m, err)
			}
		}
		// The next run cleans up and succeeds.
		set := backupOK(t, target, "-t", "rsync", "--source-disk", d.Path)
		readManifest(t, set)
		checkNoPartialSet(t, target)
		// Only the killed run's mounts count: other tests on this machine
		// may have sources mounted right now.
		if out := runTool(t, "cat", "/proc/self/mountinfo"); strings.Contains(out, fmt.Sprintf("backupctl-src-%d-", cmd.Process.Pid)) {
			t.Errorf("a source mount is left:\n%s", out)
		}
	})
	readManifest(t, older)
}

func TestBackupLocked(t *testing.T) {
	d := fixture(t)
	target := t.TempDir()
	hostDir := filepath.Join(target, "testpi")
	if err := os.MkdirAll(hostDir, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(hostDir, ".backupctl.lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := cli(context.Background(), "backup", "-t", "tar", "--source-disk", d.Path, target)
	if code != exitLocked {
		t.Errorf("backup while locked = exit %d (%s); want %d", code, errOut, exitLocked)
	}
}

func TestBackupBarLine(t *testing.T) {
	got := backupBarLine("root filesystem", 50<<20, 100<<20, 5*time.Second, 7*time.Second)
	want := fmt.Sprintf("%-24s [##########..........]  50%% 50.0 MiB 10.0 MiB/s ETA 5s (7s)", "root filesystem")
	if got != want {
		t.Errorf("backupBarLine = %q; want %q", got, want)
	}
}

// TestBackupExcludes checks that one exclude syntax selects the same paths
// in tar and rsync sets.
func TestBackupExcludes(t *testing.T) {
	d := fixture(t)
	target := t.TempDir()
	ex := []string{"-u", "/srv/deep", "-u", "*.bin", "-u", "/home/*/empty-dir", "-u", "/var/log/**/x"}
	tarSet := backupOK(t, target, append([]string{"-t", "tar", "--source-disk", d.Path}, ex...)...)
	rsyncSet := backupOK(t, target, append([]string{"-t", "rsync", "--source-disk", d.Path}, ex...)...)
	tree := extractTar(t, filepath.Join(tarSet, filepath.Base(tarSet)+".tar"))
	for _, gone := range []string{"srv/deep", testfs.PathRandom, testfs.PathOrphan, "home/pi/empty-dir"} {
		for _, root := range []string{tree, rsyncSet} {
			if _, err := os.Lstat(filepath.Join(root, gone)); !os.IsNotExist(err) {
				t.Errorf("%s: excluded %s is there (%v)", root, gone, err)
			}
		}
	}
	for _, kept := range []string{"srv", testfs.PathNotes, "home/pi"} {
		if _, err := os.Lstat(filepath.Join(tree, kept)); err != nil {
			t.Errorf("tar set lost %s: %v", kept, err)
		}
	}
	diffs, err := testfs.Compare(tree, rsyncSet, testfs.CompareOptions{Ignore: []string{"lost+found", "testpi-backup.*"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(diffs) > 0 {
		t.Errorf("tar and rsync sets with the same excludes differ: %s", testfs.FormatDiffs(diffs, 20))
	}
	m := readManifest(t, rsyncSet)
	if !slices.Equal(m.Excludes, []string{"/srv/deep", "*.bin", "/home/*/empty-dir", "/var/log/**/x"}) {
		t.Errorf("manifest excludes = %q", m.Excludes)
	}
}

// TestBackupOptions covers --boot-tar, --used-partitions-only, -M and
// --hostname.
func TestBackupOptions(t *testing.T) {
	d := fixture(t)

	t.Run("boot-tar", func(t *testing.T) {
		set := backupOK(t, t.TempDir(), "-t", "tgz", "--boot-tar", "--source-disk", d.Path)
		tmg := filepath.Join(set, "testpi-backup.tmg")
		if _, err := os.Stat(filepath.Join(set, "testpi-backup.img")); !os.IsNotExist(err) {
			t.Errorf("--boot-tar set also has a boot image")
		}
		dir := t.TempDir()
		runTool(t, "tar", "-xf", tmg, "-C", dir)
		for _, f := range []string{"cmdline.txt", "config.txt", "overlays/vc4-kms-v3d.dtbo", "kernel8.img"} {
			want, err := testfs.ExtractFile(d.Path, d.BootStart, f)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := os.ReadFile(filepath.Join(dir, f)); err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s in the .tmg: %d bytes, %v; want the source's %d bytes", f, len(got), err, len(want))
			}
		}
		if m := readManifest(t, set); m.BootBackedUp != "tmg" || !m.Options.BootTar {
			t.Errorf("manifest boot_backup %q boot_tar %v", m.BootBackedUp, m.Options.BootTar)
		}
	})

	t.Run("used-partitions-only", func(t *testing.T) {
		big := copyFixture(t)
		fi, err := os.Stat(big.Path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(big.Path, fi.Size()+32<<20); err != nil { // unpartitioned space at the end
			t.Fatal(err)
		}
		target := t.TempDir()
		full := backupOK(t, target, "-t", "dd", "--source-disk", big.Path)
		used := backupOK(t, target, "-t", "dd", "--used-partitions-only", "-M", "used only", "--source-disk", big.Path)
		sizeOf := func(set string) int64 {
			fi, err := os.Stat(filepath.Join(set, filepath.Base(set)+".img"))
			if err != nil {
				t.Fatal(err)
			}
			return fi.Size()
		}
		if got := sizeOf(full); got != fi.Size()+32<<20 {
			t.Errorf("full image %d bytes; want %d", got, fi.Size()+32<<20)
		}
		if got := sizeOf(used); got != fi.Size() {
			t.Errorf("--used-partitions-only image %d bytes; want %d (end of the last partition)", got, fi.Size())
		}
		if !strings.HasSuffix(used, "_used_only") {
			t.Errorf("-M set name %s; want suffix _used_only", used)
		}
		if m := readManifest(t, used); m.Snapshot != "used only" || !m.Options.UsedPartitionsOnly || m.ImageSize != fi.Size() {
			t.Errorf("manifest snapshot %q used-only %v image size %d", m.Snapshot, m.Options.UsedPartitionsOnly, m.ImageSize)
		}
	})

	// link-boot-files (raspiBackup's DEFAULT_LINK_BOOTPARTITIONFILES):
	// on by default, equal boot files are hardlinks to the previous set's;
	// off, from a config file as from the flag, each set has its own.
	t.Run("link-boot-files", func(t *testing.T) {
		target := t.TempDir()
		conf := filepath.Join(t.TempDir(), "nolink.conf")
		if err := os.WriteFile(conf, []byte("link-boot-files = false\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		first := backupOK(t, target, "-t", "tgz", "-k", "-1", "--source-disk", d.Path)
		linked := backupOK(t, target, "-t", "tgz", "-k", "-1", "--source-disk", d.Path)
		byFile := backupOK(t, target, "-t", "tgz", "-k", "-1", "-f", conf, "--source-disk", d.Path)
		byFlag := backupOK(t, target, "-t", "tgz", "-k", "-1", "--link-boot-files=false", "--source-disk", d.Path)
		for _, suf := range []string{backupset.SuffixBootImage, backupset.SuffixSfdisk, backupset.SuffixMBR} {
			f := "testpi" + suf
			if !sameInode(t, filepath.Join(first, f), filepath.Join(linked, f)) {
				t.Errorf("%s: not hardlinked to the previous set by default", f)
			}
			if sameInode(t, filepath.Join(linked, f), filepath.Join(byFile, f)) {
				t.Errorf("%s: hardlinked to the previous set with link-boot-files = false in the file", f)
			}
			if sameInode(t, filepath.Join(byFile, f), filepath.Join(byFlag, f)) {
				t.Errorf("%s: hardlinked to the previous set with --link-boot-files=false", f)
			}
		}
	})

	t.Run("hostname", func(t *testing.T) {
		target := t.TempDir()
		set := backupOK(t, target, "-t", "tar", "-z", "zstd", "--hostname", "other", "--source-disk", d.Path)
		if filepath.Dir(set) != filepath.Join(target, "other") || !strings.HasPrefix(filepath.Base(set), "other@") {
			t.Errorf("set %s; want it under other/ named other@...", set)
		}
		if _, err := os.Stat(filepath.Join(set, "other-backup.img")); err != nil {
			t.Errorf("boot image not named after --hostname: %v", err)
		}
		// hostname and compress from a config file mean the same.
		conf := filepath.Join(t.TempDir(), "host.conf")
		if err := os.WriteFile(conf, []byte("hostname = \"fromfile\"\ncompress = \"zstd\"\ntype = \"tar\"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		set = backupOK(t, target, "-f", conf, "--source-disk", d.Path)
		if filepath.Dir(set) != filepath.Join(target, "fromfile") {
			t.Errorf("set %s; want it under fromfile/", set)
		}
		if _, err := os.Stat(filepath.Join(set, filepath.Base(set)+".tar.zst")); err != nil {
			t.Errorf("compress = \"zstd\" in a file: %v", err)
		}
	})
}

// TestBackupDDUsedBlocks backs up a disk whose free space holds stale
// data (a random file written and deleted on both filesystems): the dd
// image reads only the blocks in use, so it equals the source wherever
// the filesystems have data and is zero in the freed blocks, which
// dumpe2fs (not our reader) must call free; e2fsck and fsck.vfat accept
// it. --full-read gives the source byte for byte, and a dirty ext4 is
// read in full, with a note.
func TestBackupDDUsedBlocks(t *testing.T) {
	d := copyFixture(t)
	const staleSize = 24 << 20
	stale := make([]byte, staleSize)
	if _, err := rand.Read(stale); err != nil {
		t.Fatal(err)
	}
	t.Run("write-stale", func(t *testing.T) {
		root := mountRoot(t, d, true)
		if err := os.WriteFile(filepath.Join(root, "stale.bin"), stale, 0o644); err != nil {
			t.Fatal(err)
		}
	})
	var staleBlocks []int64
	for _, f := range strings.Fields(runTool(t, "debugfs", "-R", "blocks /stale.bin", fmt.Sprintf("%s?offset=%d", d.Path, d.RootStart))) {
		if n, err := strconv.ParseInt(f, 10, 64); err == nil { // not debugfs's banner
			staleBlocks = append(staleBlocks, n)
		}
	}
	if len(staleBlocks) < staleSize/4096 {
		t.Fatalf("debugfs lists %d blocks of the stale file; want %d", len(staleBlocks), staleSize/4096)
	}
	t.Run("delete-stale", func(t *testing.T) {
		if err := os.Remove(filepath.Join(mountRoot(t, d, true), "stale.bin")); err != nil {
			t.Fatal(err)
		}
	})
	bootStale := filepath.Join(t.TempDir(), "stale.bin")
	if err := os.WriteFile(bootStale, stale[:2<<20], 0o644); err != nil {
		t.Fatal(err)
	}
	mtools := func(args ...string) {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%q: %v\n%s", args, err, out)
		}
	}
	mimg := fmt.Sprintf("%s@@%d", d.Path, d.BootStart)
	mtools("mcopy", "-i", mimg, bootStale, "::/stale.bin")
	mtools("mdel", "-i", mimg, "::/stale.bin")
	if err := d.Fsck(); err != nil {
		t.Fatalf("source after the stale files: %v", err)
	}
	src, err := os.ReadFile(d.Path)
	if err != nil {
		t.Fatal(err)
	}

	target := t.TempDir()
	timed := func(args ...string) (string, *backupset.Manifest) {
		start := time.Now()
		set := backupOK(t, target, append(args, "--source-disk", d.Path)...)
		m := readManifest(t, set)
		payload := filepath.Join(set, m.Files[0].Path)
		for _, f := range m.Files {
			if strings.Contains(f.Path, ".img") {
				payload = filepath.Join(set, f.Path)
			}
		}
		fi, err := os.Stat(payload)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("backup %q: %v; %s: %d bytes, %d on disk", args, time.Since(start).Round(time.Millisecond),
			filepath.Base(payload), fi.Size(), diskUsage(t, payload))
		return payload, m
	}

	img, m := timed("-t", "dd")
	if !m.UsedBlocks || m.Options.FullRead {
		t.Errorf("manifest used_blocks %v full_read %v; want true, false", m.UsedBlocks, m.Options.FullRead)
	}
	got, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(src) {
		t.Fatalf("image %d bytes; source %d", len(got), len(src))
	}
	free := ext4FreeBlocks(t, d)
	const sector = 512
	var zeroedRoot, zeroedBoot int64
	zero := make([]byte, sector)
	for off := int64(0); off < int64(len(src)); off += sector {
		a, b := src[off:off+sector], got[off:off+sector]
		if bytes.Equal(a, b) {
			continue
		}
		switch {
		case !bytes.Equal(b, zero):
			t.Fatalf("image differs from the source at %d, and is not zero there", off)
		case off >= d.RootStart && off < d.RootStart+d.RootSize:
			if blk := (off - d.RootStart) / 4096; !free[blk] {
				t.Fatalf("image zero at %d, in ext4 block %d which dumpe2fs says is in use", off, blk)
			}
			zeroedRoot += sector
		case off >= d.BootStart && off < d.BootStart+d.BootSize:
			zeroedBoot += sector
		default:
			t.Fatalf("image zero at %d, outside the partitions; want everything there read", off)
		}
	}
	for _, blk := range staleBlocks {
		if off := d.RootStart + blk*4096; !bytes.Equal(got[off:off+4096], make([]byte, 4096)) {
			t.Fatalf("freed ext4 block %d of the deleted file is not zero in the image", blk)
		}
	}
	if zeroedRoot < staleSize || zeroedBoot < 2<<20-64<<10 {
		t.Errorf("stale bytes left out: %d in the root partition, %d in the boot partition; want at least %d and about %d",
			zeroedRoot, zeroedBoot, staleSize, 2<<20)
	}
	imgDisk := *d
	imgDisk.Path = img
	if err := imgDisk.Fsck(); err != nil {
		t.Errorf("image: %v", err)
	}
	for _, f := range []string{"cmdline.txt", "kernel8.img"} {
		want, _ := testfs.ExtractFile(d.Path, d.BootStart, f)
		if b, err := testfs.ExtractFile(img, d.BootStart, f); err != nil || !bytes.Equal(b, want) {
			t.Errorf("%s in the image: %d bytes, %v; want the source's %d bytes", f, len(b), err, len(want))
		}
	}
	usedDU := diskUsage(t, img)
	if usedDU > int64(len(src))/2 {
		t.Errorf("image takes %d bytes on disk; want far below its %d-byte size", usedDU, len(src))
	}

	t.Run("ddz", func(t *testing.T) {
		for _, z := range []string{"gzip", "zstd"} {
			gz, m := timed("-t", "dd", "-z", z)
			if !m.UsedBlocks {
				t.Errorf("%s: manifest used_blocks false", z)
			}
			if a, b := fileSHA(t, gz, backupset.CompressionOf(gz)), fileSHA(t, img, backupset.CompressNone); a != b {
				t.Errorf("%s payload holds sha256 %s; the raw image %s", filepath.Base(gz), a, b)
			}
		}
	})

	t.Run("full-read", func(t *testing.T) {
		full, m := timed("-t", "dd", "--full-read")
		if m.UsedBlocks || !m.Options.FullRead {
			t.Errorf("manifest used_blocks %v full_read %v; want false, true", m.UsedBlocks, m.Options.FullRead)
		}
		checkImage(t, d, full)
		if du := diskUsage(t, full); du-usedDU < staleSize {
			t.Errorf("full-read image takes %d bytes on disk, the used-blocks one %d; want the stale %d more", du, usedDU, staleSize)
		}
	})

	t.Run("boot-image", func(t *testing.T) {
		bimg, m := timed("-t", "tar")
		if filepath.Base(bimg) != "testpi-backup.img" || !m.UsedBlocks {
			t.Fatalf("boot image %s, used_blocks %v", bimg, m.UsedBlocks)
		}
		b, err := os.ReadFile(bimg)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, got[d.BootStart:d.BootStart+d.BootSize]) {
			t.Errorf("boot image differs from partition 1 of the dd image")
		}
		runTool(t, "fsck.vfat", "-n", bimg)
		_, m = timed("-t", "tar", "--full-read")
		if m.UsedBlocks || !m.Options.FullRead {
			t.Errorf("--full-read tar set: manifest used_blocks %v full_read %v; want false, true", m.UsedBlocks, m.Options.FullRead)
		}
	})

	t.Run("dirty-ext4", func(t *testing.T) {
		// A journal that needs recovery: the bitmaps may be stale, so the
		// partition is read whole, stale data and all.
		runTool(t, "debugfs", "-w", "-R", "feature needs_recovery", fmt.Sprintf("%s?offset=%d", d.Path, d.RootStart))
		img, m := timed("-t", "dd")
		if !slices.ContainsFunc(m.Notes, func(n string) bool { return strings.Contains(n, "partition 2") && strings.Contains(n, "read in full") }) {
			t.Errorf("manifest notes %q; want one saying partition 2 was read in full", m.Notes)
		}
		b, err := os.ReadFile(img)
		if err != nil {
			t.Fatal(err)
		}
		src, _ := os.ReadFile(d.Path)
		if !bytes.Equal(b[d.RootStart:], src[d.RootStart:]) {
			t.Errorf("dirty root partition not copied byte for byte")
		}
	})
}

// diskUsage is the space a file takes on disk, as du shows it.
func diskUsage(t *testing.T, p string) int64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}

// ext4FreeBlocks reads the free blocks of d's root filesystem from
// dumpe2fs.
func ext4FreeBlocks(t *testing.T, d *testfs.PiDisk) map[int64]bool {
	t.Helper()
	out := runTool(t, "dumpe2fs", fmt.Sprintf("%s?offset=%d", d.Path, d.RootStart))
	if !strings.Contains(out, "Block size:               4096") {
		t.Fatalf("dumpe2fs: want 4096-byte blocks:\n%.2000s", out)
	}
	free := map[int64]bool{}
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		rest, ok := strings.CutPrefix(l, "Free blocks: ")
		if !ok {
			continue
		}
		for _, r := range strings.Split(rest, ", ") {
			var a, b int64
			if n, _ := fmt.Sscanf(r, "%d-%d", &a, &b); n == 1 {
				b = a
			} else if n != 2 {
				continue
			}
			for i := a; i <= b; i++ {
				free[i] = true
			}
		}
	}
	if len(free) == 0 {
		t.Fatalf("dumpe2fs lists no free blocks")
	}
	return free
}
