package testfs

import (
	"bytes"
	"cmp"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestPiDisk builds a real Pi disk and then uses it as the source of truth
// for the comparison tests: an exact copy must compare equal, and each kind
// of damage a backup can do must be reported, and nothing else.
func TestPiDisk(t *testing.T) {
	Require(t, "pidisk")
	Require(t, "rsync")

	start := time.Now()
	d, err := BuildPiDisk(t.TempDir(), DiskOptions{})
	if err != nil {
		t.Fatalf("BuildPiDisk: %v", err)
	}
	t.Logf("BuildPiDisk took %v", time.Since(start).Round(time.Millisecond))

	t.Run("layout", func(t *testing.T) { checkLayout(t, d) })

	// Source: the image's root, read-only. Destination: a second ext4 with
	// the same block size, so that sparse layouts are comparable. Both are
	// real ext4 because tmpfs and overlayfs drop or refuse security.* and
	// ACL xattrs.
	src := t.TempDir()
	MountExt4(t, AttachLoop(t, d.Path, d.RootStart, d.RootSize, true), src, true)
	dst := newExt4(t, 512<<20)

	opts := CompareOptions{Ignore: []string{"lost+found"}, Atime: true, Sparse: true}
	t.Run("copies", func(t *testing.T) {
		// cp -a (GNU coreutils) preserves everything Compare looks at,
		// atimes to the nanosecond included; it is the reference copy.
		got := cpCopy(t, src, filepath.Join(dst, "cp"))
		if diffs, err := Compare(src, got, opts); err != nil {
			t.Fatal(err)
		} else if len(diffs) > 0 {
			t.Errorf("Compare(src, cp -a copy) = %s; want no differences", FormatDiffs(diffs, 40))
		}
		// rsync -aHAXS --numeric-ids is exact except for atimes: with -U
		// it drops their nanoseconds, and it does not set them on
		// directories.
		got = filepath.Join(dst, "rsync")
		if out, err := runCmd("rsync", "-aHAXSU", "--numeric-ids", src+"/", got+"/"); err != nil {
			t.Fatalf("rsync: %v: %s", err, out)
		}
		noAtime := opts
		noAtime.Atime = false
		if diffs, err := Compare(src, got, noAtime); err != nil {
			t.Fatal(err)
		} else if len(diffs) > 0 {
			t.Errorf("Compare(src, rsync copy) = %s; want no differences", FormatDiffs(diffs, 40))
		}
		if diffs, err := Compare(src, got, opts); err == nil {
			t.Logf("rsync -aHAXSU --numeric-ids vs source, atimes compared: %s", FormatDiffs(diffs, 5))
		}
	})

	for _, tc := range mutationCases() {
		t.Run("detects/"+tc.name, func(t *testing.T) {
			root := cpCopy(t, src, filepath.Join(dst, "case-"+tc.name))
			p := filepath.Join(root, tc.path)
			restoreFile, restoreDir := func() {}, func() {}
			if tc.keepTimes {
				restoreFile, restoreDir = keepTimes(t, p), keepTimes(t, filepath.Dir(p))
			}
			tc.mutate(t, p)
			restoreFile()
			restoreDir()
			diffs, err := Compare(src, root, opts)
			if err != nil {
				t.Fatal(err)
			}
			var got []Diff
			for _, d := range diffs {
				got = append(got, Diff{Path: d.Path, Kind: d.Kind})
			}
			want := slices.Clone(tc.want)
			if want == nil {
				want = []Diff{{Path: tc.path, Kind: tc.kind}}
			}
			slices.SortFunc(want, func(x, y Diff) int {
				return cmp.Or(strings.Compare(x.Path, y.Path), strings.Compare(string(x.Kind), string(y.Kind)))
			})
			if !slices.Equal(got, want) {
				t.Errorf("after %s: Compare = %s\nwant exactly %v", tc.name, FormatDiffs(diffs, 20), want)
			}
			if tc.msg != "" && (len(diffs) == 0 || !strings.Contains(diffs[0].Msg, tc.msg)) {
				t.Errorf("diff message %q does not mention %q", FormatDiffs(diffs, 3), tc.msg)
			}
		})
	}
}

type mutationCase struct {
	name      string
	path      string // relative to the copy's root
	mutate    func(t *testing.T, p string)
	keepTimes bool   // restore the mtime/atime of path and its parent afterwards
	kind      Kind   // expected diff at path, unless want is set
	want      []Diff // expected Path and Kind of every diff, Msg empty
	msg       string // substring of the first diff's message
}

func mutationCases() []mutationCase {
	unicodeFile := "home/pi/Ünïcödé ✓/naïve café.txt"
	return []mutationCase{
		{name: "owner", path: PathNotes, keepTimes: true, kind: KindOwner, msg: "uid 1000 in a, 1001 in b",
			mutate: func(t *testing.T, p string) { must(t, os.Lchown(p, 1001, -1)) }},
		{name: "group", path: PathOrphan, keepTimes: true, kind: KindGroup, msg: "gid 4343 in a, 0 in b",
			mutate: func(t *testing.T, p string) { must(t, os.Lchown(p, -1, 0)) }},
		{name: "user-xattr-lost", path: PathNotes, keepTimes: true, kind: KindXattr, msg: `user.comment = "a user xattr" in a, missing in b`,
			mutate: func(t *testing.T, p string) { must(t, unix.Lremovexattr(p, "user.comment")) }},
		{name: "user-xattr-changed", path: PathNotes, keepTimes: true, kind: KindXattr,
			mutate: func(t *testing.T, p string) { must(t, unix.Lsetxattr(p, "user.empty", []byte{0}, 0)) }},
		{name: "dir-xattr-lost", path: "home/pi", keepTimes: true, kind: KindXattr,
			mutate: func(t *testing.T, p string) { must(t, unix.Lremovexattr(p, "user.pibackup.dir")) }},
		{name: "capability-lost", path: PathPing, keepTimes: true, kind: KindXattr, msg: "security.capability = caps v2 permitted=0x2000",
			mutate: func(t *testing.T, p string) { must(t, unix.Lremovexattr(p, "security.capability")) }},
		{name: "access-acl-lost", path: PathACLFile, keepTimes: true, kind: KindXattr, msg: "user:4242:r--",
			mutate: func(t *testing.T, p string) { must(t, unix.Lremovexattr(p, "system.posix_acl_access")) }},
		{name: "default-acl-lost", path: PathACLDir, keepTimes: true, kind: KindXattr, msg: "system.posix_acl_default",
			mutate: func(t *testing.T, p string) { must(t, unix.Lremovexattr(p, "system.posix_acl_default")) }},
		{name: "hardlink-lost", path: PathHardlink3, keepTimes: true,
			want: []Diff{{Path: PathHardlink1, Kind: KindHardlink}}, msg: `{"usr/bin/hl-tool" "usr/bin/hl-tool-alias"} {"usr/sbin/hl-tool"} in b`,
			mutate: func(t *testing.T, p string) {
				// A perfect copy of the file, but no longer the same inode.
				tmp := p + ".tmp"
				if out, err := runCmd("cp", "-a", p, tmp); err != nil {
					t.Fatalf("cp: %v: %s", err, out)
				}
				must(t, os.Rename(tmp, p))
			}},
		{name: "byte-changed", path: PathRandom, keepTimes: true, kind: KindContent, msg: "offset 1048583",
			mutate: func(t *testing.T, p string) {
				f, err := os.OpenFile(p, os.O_RDWR, 0)
				must(t, err)
				defer f.Close()
				b := make([]byte, 1)
				_, err = f.ReadAt(b, 1<<20+7)
				must(t, err)
				b[0] ^= 0x01 // a single bit flip
				_, err = f.WriteAt(b, 1<<20+7)
				must(t, err)
			}},
		{name: "truncated", path: PathRandom, keepTimes: true, kind: KindSize,
			mutate: func(t *testing.T, p string) { must(t, os.Truncate(p, randomSize-1)) }},
		{name: "setuid-lost", path: PathSudo, keepTimes: true, kind: KindMode, msg: "04755 in a, 0755 in b",
			mutate: func(t *testing.T, p string) { must(t, unix.Chmod(p, 0o755)) }},
		{name: "sticky-lost", path: "tmp", keepTimes: true, kind: KindMode,
			mutate: func(t *testing.T, p string) { must(t, unix.Chmod(p, 0o777)) }},
		{name: "mtime-1ns", path: PathHostname, kind: KindMtime,
			mutate: func(t *testing.T, p string) { shiftTime(t, p, 0, time.Nanosecond) }},
		{name: "dir-mtime", path: "srv/deep/level-01", kind: KindMtime,
			mutate: func(t *testing.T, p string) { shiftTime(t, p, 0, time.Second) }},
		{name: "symlink-mtime", path: PathSymlink, kind: KindMtime,
			mutate: func(t *testing.T, p string) { shiftTime(t, p, 0, time.Microsecond) }},
		{name: "atime", path: PathHostname, kind: KindAtime,
			mutate: func(t *testing.T, p string) { shiftTime(t, p, time.Hour, 0) }},
		{name: "missing-file", path: PathSyslog, keepTimes: true, kind: KindMissing,
			mutate: func(t *testing.T, p string) { must(t, os.Remove(p)) }},
		{name: "missing-tree", path: "srv/deep", keepTimes: true, kind: KindMissing, msg: "(with 41 entries below)",
			mutate: func(t *testing.T, p string) { must(t, os.RemoveAll(p)) }},
		{name: "extra-file", path: "var/log/extra.log", keepTimes: true, kind: KindExtra,
			mutate: func(t *testing.T, p string) { must(t, os.WriteFile(p, nil, 0o644)) }},
		{name: "symlink-target", path: PathSymlink, keepTimes: true, kind: KindSymlink, msg: `-> "/etc/hostname" in a, -> "/etc/hosts" in b`,
			mutate: func(t *testing.T, p string) {
				must(t, os.Remove(p))
				must(t, os.Symlink("/etc/hosts", p))
				must(t, os.Lchown(p, 1000, 1000))
			}},
		{name: "device-minor", path: PathDevBlock, keepTimes: true, kind: KindDevice, msg: "179:0 in a, 179:1 in b",
			mutate: func(t *testing.T, p string) {
				must(t, os.Remove(p))
				must(t, unix.Mknod(p, unix.S_IFBLK|0o660, int(unix.Mkdev(179, 1))))
				must(t, os.Lchown(p, 0, 6))
				must(t, unix.Chmod(p, 0o660))
			}},
		{name: "fifo-became-file", path: PathFIFO, keepTimes: true, kind: KindType,
			mutate: func(t *testing.T, p string) {
				must(t, os.Remove(p))
				must(t, os.WriteFile(p, nil, 0o620))
			}},
		{name: "sparseness-lost", path: PathSparse, keepTimes: true, kind: KindSparse,
			mutate: func(t *testing.T, p string) {
				// Same bytes, written densely (what cp --sparse=never does).
				data, err := os.ReadFile(p)
				must(t, err)
				f, err := os.OpenFile(p, os.O_WRONLY, 0)
				must(t, err)
				_, err = f.Write(data)
				must(t, err)
				must(t, f.Close())
			}},
		{name: "name-normalised-to-NFD", path: unicodeFile, keepTimes: true,
			want: []Diff{{Path: unicodeFile, Kind: KindMissing}, {Path: "home/pi/Ünïcödé ✓/naïve cafe\u0301.txt", Kind: KindExtra}},
			mutate: func(t *testing.T, p string) {
				must(t, os.Rename(p, filepath.Join(filepath.Dir(p), "naïve cafe\u0301.txt")))
			}},
		{name: "ignored-lost+found", path: "lost+found/junk", keepTimes: true, want: []Diff{},
			mutate: func(t *testing.T, p string) { must(t, os.WriteFile(p, []byte("x"), 0o644)) }},
	}
}

func checkLayout(t *testing.T, d *PiDisk) {
	// Independent judges, run against loop devices of each partition.
	root := AttachLoop(t, d.Path, d.RootStart, d.RootSize, true)
	if out, err := runCmd("e2fsck", "-fn", root); err != nil {
		t.Errorf("e2fsck -fn: %v\n%s", err, out)
	}
	boot := AttachLoop(t, d.Path, d.BootStart, d.BootSize, true)
	if out, err := runCmd("fsck.vfat", "-n", boot); err != nil {
		t.Errorf("fsck.vfat -n: %v\n%s", err, out)
	}
	if err := d.Fsck(); err != nil {
		t.Errorf("Fsck: %v", err)
	}

	out, err := runCmd("sfdisk", "--dump", d.Path)
	if err != nil {
		t.Fatalf("sfdisk --dump: %v\n%s", err, out)
	}
	dump := string(out)
	for _, want := range []string{
		"label: dos",
		"label-id: 0x5e3da1b7",
		"start=        8192, size=      131072, type=c",
		"start=      139264, size=      385024, type=83",
	} {
		if !strings.Contains(dump, want) {
			t.Errorf("sfdisk --dump lacks %q:\n%s", want, dump)
		}
	}
	if n := len(regexp.MustCompile(`(?m)^\S+ : start=`).FindAllString(dump, -1)); n != 2 {
		t.Errorf("sfdisk --dump shows %d partitions, want 2:\n%s", n, dump)
	}
	if out, err := runCmd("blkid", "-p", "-o", "export", root); err == nil {
		for _, want := range []string{"UUID=" + d.RootUUID, "LABEL=rootfs", "TYPE=ext4"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("blkid %s lacks %q:\n%s", root, want, out)
			}
		}
	}
	if out, err := runCmd("blkid", "-p", "-o", "export", boot); err == nil {
		for _, want := range []string{"LABEL=bootfs", "VERSION=FAT32", "UUID=" + d.BootVolumeID} {
			if !strings.Contains(string(out), want) {
				t.Errorf("blkid %s lacks %q:\n%s", boot, want, out)
			}
		}
	}

	cmdline, err := ExtractFile(d.Path, d.BootStart, "cmdline.txt")
	if err != nil {
		t.Fatal(err)
	}
	if want := "root=PARTUUID=5e3da1b7-02 "; !strings.Contains(string(cmdline), want) || string(cmdline) != d.Cmdline {
		t.Errorf("cmdline.txt = %q; want %q containing %q", cmdline, d.Cmdline, want)
	}
	if k, err := ExtractFile(d.Path, d.BootStart, "/kernel8.img"); err != nil || len(k) != 3<<20 {
		t.Errorf("kernel8.img: %d bytes, %v; want 3 MiB", len(k), err)
	}
	if _, err := ExtractFile(d.Path, d.BootStart, "overlays/README"); err != nil {
		t.Error(err)
	}

	fstab, err := ReadRootFile(d.Path, d.RootStart, "/etc/fstab")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"PARTUUID=5e3da1b7-01  /boot/firmware  vfat    defaults          0       2",
		"PARTUUID=5e3da1b7-02  /               ext4    defaults,noatime  0       1",
	} {
		if !strings.Contains(string(fstab), want) {
			t.Errorf("/etc/fstab lacks %q:\n%s", want, fstab)
		}
	}
	if got, err := ReadRootFile(d.Path, d.RootStart, "/home/pi/Ünïcödé ✓/naïve café.txt"); err != nil || string(got) != "UTF-8 names\n" {
		t.Errorf("ReadRootFile(non-ASCII path with spaces) = %q, %v", got, err)
	}
	if _, err := ReadRootFile(d.Path, d.RootStart, "/etc/no-such-file"); err == nil {
		t.Error("ReadRootFile(/etc/no-such-file) succeeded; want an error")
	}
}

// newExt4 returns the mount point of a fresh, empty ext4 in a sparse image
// of the given size.
func newExt4(t *testing.T, size int64) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "dst.img")
	must(t, os.WriteFile(img, nil, 0o644))
	must(t, os.Truncate(img, size))
	dev := AttachLoop(t, img, 0, 0, false)
	if out, err := runCmd("mkfs.ext4", "-q", "-F", "-b", "4096", "-I", "256", dev); err != nil {
		t.Fatalf("mkfs.ext4: %v: %s", err, out)
	}
	dir := t.TempDir()
	MountExt4(t, dev, dir, false)
	return dir
}

// cpCopy copies the tree src to the new directory dst with cp -a.
func cpCopy(t *testing.T, src, dst string) string {
	t.Helper()
	if out, err := runCmd("cp", "-a", src, dst); err != nil {
		t.Fatalf("cp -a: %v: %s", err, out)
	}
	return dst
}

func runCmd(name string, args ...string) ([]byte, error) {
	var buf bytes.Buffer
	out, err := run(context.Background(), nil, nil, name, args...)
	buf.Write(out)
	return buf.Bytes(), err
}

// keepTimes records the atime and mtime of p and returns a function that
// puts them back, so that a mutation shows up only as the kind of damage
// under test (a real backup bug can change bytes and keep the mtime).
func keepTimes(t *testing.T, p string) func() {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return func() {}
	}
	return func() {
		err := unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{st.Atim, st.Mtim}, unix.AT_SYMLINK_NOFOLLOW)
		if err != nil && !os.IsNotExist(err) {
			t.Errorf("restore times of %s: %v", p, err)
		}
	}
}

func shiftTime(t *testing.T, p string, da, dm time.Duration) {
	var st unix.Stat_t
	must(t, unix.Lstat(p, &st))
	a := time.Unix(st.Atim.Unix()).Add(da)
	m := time.Unix(st.Mtim.Unix()).Add(dm)
	must(t, unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{timespec(a), timespec(m)}, unix.AT_SYMLINK_NOFOLLOW))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func BenchmarkBuildPiDisk(b *testing.B) {
	Require(b, "pidisk")
	for b.Loop() {
		if _, err := BuildPiDisk(b.TempDir(), DiskOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
