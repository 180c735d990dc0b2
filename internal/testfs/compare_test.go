package testfs

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestHardlinkDiffs(t *testing.T) {
	ino := func(n uint64) inode { return inode{dev: 1, ino: n} }
	for _, tc := range []struct {
		name string
		a, b map[string]inode
		want []Diff // Path and Kind only
	}{
		{
			name: "same structure, other inode numbers",
			a:    map[string]inode{"x": ino(1), "y": ino(1), "z": ino(1), "s": ino(2)},
			b:    map[string]inode{"x": ino(7), "y": ino(7), "z": ino(7), "s": ino(8)},
		},
		{
			name: "one link of three became a copy",
			a:    map[string]inode{"x": ino(1), "y": ino(1), "z": ino(1)},
			b:    map[string]inode{"x": ino(7), "y": ino(7), "z": ino(9)},
			want: []Diff{{Path: "x", Kind: KindHardlink}},
		},
		{
			name: "all links became copies",
			a:    map[string]inode{"x": ino(1), "y": ino(1)},
			b:    map[string]inode{"x": ino(7), "y": ino(8)},
			want: []Diff{{Path: "x", Kind: KindHardlink}},
		},
		{
			name: "separate files joined (dedup by the backup)",
			a:    map[string]inode{"p": ino(1), "q": ino(2)},
			b:    map[string]inode{"p": ino(5), "q": ino(5)},
			want: []Diff{{Path: "p", Kind: KindHardlink}, {Path: "q", Kind: KindHardlink}},
		},
		{
			name: "two sets swapped a member",
			a:    map[string]inode{"a1": ino(1), "a2": ino(1), "b1": ino(2), "b2": ino(2)},
			b:    map[string]inode{"a1": ino(5), "a2": ino(6), "b1": ino(6), "b2": ino(5)},
			want: []Diff{{Path: "a1", Kind: KindHardlink}, {Path: "b1", Kind: KindHardlink}},
		},
		{name: "empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []Diff
			for _, d := range hardlinkDiffs(tc.a, tc.b) {
				got = append(got, Diff{Path: d.Path, Kind: d.Kind})
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("hardlinkDiffs = %v; want %v", got, tc.want)
			}
		})
	}
	d := hardlinkDiffs(
		map[string]inode{"x": ino(1), "y": ino(1), "z": ino(1)},
		map[string]inode{"x": ino(7), "y": ino(7), "z": ino(9)})
	if want := `linked as {"x" "y" "z"} in a, as {"x" "y"} {"z"} in b`; len(d) != 1 || d[0].Msg != want {
		t.Errorf("hardlinkDiffs message = %v; want %q", d, want)
	}
}

// testTime is a fixed mtime with nanoseconds for the trees built here.
var testTime = time.Date(2023, 5, 6, 7, 8, 9, 123456789, time.UTC)

// mkTree writes a small tree that needs no root: files, a directory, a
// symlink, a pair of hardlinks and (if the file system allows) a user
// xattr. It reports whether the xattr could be set.
func mkTree(t *testing.T, root string) (xattrs bool) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Join(root, "d/sub"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, "d/file"), []byte("hello world"), 0o644))
	must(t, os.WriteFile(filepath.Join(root, "d/sub/deep"), []byte("deep"), 0o600))
	must(t, os.WriteFile(filepath.Join(root, "link1"), []byte("linked"), 0o644))
	must(t, os.Link(filepath.Join(root, "link1"), filepath.Join(root, "link2")))
	must(t, os.Symlink("d/file", filepath.Join(root, "sym")))
	must(t, os.Chmod(filepath.Join(root, "d"), 0o755))
	err := unix.Lsetxattr(filepath.Join(root, "d/file"), "user.test", []byte("v"), 0)
	xattrs = err == nil
	for _, p := range []string{"d/file", "d/sub/deep", "link1", "sym", "d/sub", "d", "."} {
		ts := timespec(testTime)
		must(t, unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(root, p), []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW))
	}
	return xattrs
}

func TestCompareWithoutRoot(t *testing.T) {
	keep := func(t *testing.T, p string, f func()) {
		t.Helper()
		var st unix.Stat_t
		must(t, unix.Lstat(p, &st))
		f()
		must(t, unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{st.Atim, st.Mtim}, unix.AT_SYMLINK_NOFOLLOW))
	}
	for _, tc := range []struct {
		name   string
		opts   CompareOptions
		xattr  bool // needs user xattrs
		mutate func(t *testing.T, b string)
		want   []Diff // Path and Kind only
	}{
		{name: "identical", mutate: func(*testing.T, string) {}},
		{name: "content", want: []Diff{{Path: "d/file", Kind: KindContent}},
			mutate: func(t *testing.T, b string) {
				keep(t, filepath.Join(b, "d/file"), func() {
					must(t, os.WriteFile(filepath.Join(b, "d/file"), []byte("hello World"), 0o644))
				})
			}},
		{name: "size", want: []Diff{{Path: "d/file", Kind: KindSize}},
			mutate: func(t *testing.T, b string) {
				keep(t, filepath.Join(b, "d/file"), func() { must(t, os.Truncate(filepath.Join(b, "d/file"), 3)) })
			}},
		{name: "mode", want: []Diff{{Path: "d/sub/deep", Kind: KindMode}},
			mutate: func(t *testing.T, b string) { must(t, os.Chmod(filepath.Join(b, "d/sub/deep"), 0o644)) }},
		{name: "mtime 1ns", want: []Diff{{Path: "d/sub", Kind: KindMtime}},
			mutate: func(t *testing.T, b string) {
				ts := timespec(testTime.Add(time.Nanosecond))
				must(t, unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(b, "d/sub"), []unix.Timespec{ts, ts}, 0))
			}},
		{name: "dir mtime ignored", opts: CompareOptions{IgnoreDirMtime: true},
			mutate: func(t *testing.T, b string) {
				ts := timespec(testTime.Add(time.Second))
				must(t, unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(b, "d/sub"), []unix.Timespec{ts, ts}, 0))
			}},
		{name: "atime only with Atime", opts: CompareOptions{Atime: true}, want: []Diff{{Path: "d/sub/deep", Kind: KindAtime}},
			mutate: func(t *testing.T, b string) {
				a, m := timespec(testTime.Add(time.Hour)), timespec(testTime)
				must(t, unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(b, "d/sub/deep"), []unix.Timespec{a, m}, 0))
			}},
		{name: "symlink target", want: []Diff{{Path: "sym", Kind: KindSymlink}},
			mutate: func(t *testing.T, b string) {
				keep(t, b, func() {
					must(t, os.Remove(filepath.Join(b, "sym")))
					must(t, os.Symlink("d/fil3", filepath.Join(b, "sym")))
				})
				ts := timespec(testTime)
				must(t, unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(b, "sym"), []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW))
			}},
		{name: "missing directory reported once", want: []Diff{{Path: "d/sub", Kind: KindMissing}},
			mutate: func(t *testing.T, b string) {
				keep(t, filepath.Join(b, "d"), func() { must(t, os.RemoveAll(filepath.Join(b, "d/sub"))) })
			}},
		{name: "extra directory reported once", want: []Diff{{Path: "new", Kind: KindExtra}},
			mutate: func(t *testing.T, b string) {
				keep(t, b, func() { must(t, os.MkdirAll(filepath.Join(b, "new/a/b"), 0o755)) })
			}},
		{name: "type", want: []Diff{{Path: "d/sub", Kind: KindType}},
			mutate: func(t *testing.T, b string) {
				keep(t, filepath.Join(b, "d"), func() {
					must(t, os.RemoveAll(filepath.Join(b, "d/sub")))
					must(t, os.WriteFile(filepath.Join(b, "d/sub"), nil, 0o755))
				})
				ts := timespec(testTime)
				must(t, unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(b, "d/sub"), []unix.Timespec{ts, ts}, 0))
			}},
		{name: "hardlink split", want: []Diff{{Path: "link1", Kind: KindHardlink}},
			mutate: func(t *testing.T, b string) {
				keep(t, b, func() {
					p := filepath.Join(b, "link2")
					must(t, os.Remove(p))
					must(t, os.WriteFile(p, []byte("linked"), 0o644))
				})
				ts := timespec(testTime)
				must(t, unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(b, "link2"), []unix.Timespec{ts, ts}, 0))
			}},
		{name: "ignored paths", opts: CompareOptions{Ignore: []string{"d/sub", "extra-*"}, IgnoreDirMtime: true},
			mutate: func(t *testing.T, b string) {
				must(t, os.RemoveAll(filepath.Join(b, "d/sub")))
				must(t, os.WriteFile(filepath.Join(b, "extra-1"), nil, 0o644))
			}},
		{name: "xattr lost", xattr: true, want: []Diff{{Path: "d/file", Kind: KindXattr}},
			mutate: func(t *testing.T, b string) { must(t, unix.Lremovexattr(filepath.Join(b, "d/file"), "user.test")) }},
		{name: "xattr ignored", xattr: true, opts: CompareOptions{IgnoreXattrs: []string{"user.*"}},
			mutate: func(t *testing.T, b string) { must(t, unix.Lremovexattr(filepath.Join(b, "d/file"), "user.test")) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := t.TempDir(), t.TempDir()
			xa, xb := mkTree(t, a), mkTree(t, b)
			if tc.xattr && !(xa && xb) {
				t.Skip("user xattrs not supported on the temporary directory's file system")
			}
			tc.mutate(t, b)
			diffs, err := Compare(a, b, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			var got []Diff
			for _, d := range diffs {
				got = append(got, Diff{Path: d.Path, Kind: d.Kind})
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("Compare = %s\nwant %v", FormatDiffs(diffs, 0), tc.want)
			}
		})
	}
}

func TestCompareErrors(t *testing.T) {
	if _, err := Compare(t.TempDir(), filepath.Join(t.TempDir(), "nope"), CompareOptions{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Compare(dir, missing) error = %v; want os.ErrNotExist", err)
	}
	if _, err := Compare(t.TempDir(), t.TempDir(), CompareOptions{Ignore: []string{"["}}); err == nil {
		t.Error("Compare with a bad glob succeeded; want an error")
	}
}

func TestFormatDiffs(t *testing.T) {
	if got := FormatDiffs(nil, 5); got != "no differences" {
		t.Errorf("FormatDiffs(nil) = %q", got)
	}
	var diffs []Diff
	for i := range 5 {
		diffs = append(diffs, Diff{Path: fmt.Sprintf("f%d", i), Kind: KindMode, Msg: "0644 in a, 0600 in b"})
	}
	got := FormatDiffs(diffs, 2)
	want := "5 difference(s):\n  \"f0\": mode: 0644 in a, 0600 in b\n  \"f1\": mode: 0644 in a, 0600 in b\n  ... and 3 more\n"
	if got != want {
		t.Errorf("FormatDiffs = %q; want %q", got, want)
	}
	if got := FormatDiffs(diffs, 0); strings.Count(got, "\n") != 6 {
		t.Errorf("FormatDiffs(max 0) = %q; want all 5", got)
	}
}

func TestXattrEncodings(t *testing.T) {
	// What `setcap cap_net_raw+ep` writes (read back with getfattr -e hex).
	if got, want := hex.EncodeToString(vfsCapV2(1<<capNetRaw, 0, true)), "0100000200200000000000000000000000000000"; got != want {
		t.Errorf("vfsCapV2(cap_net_raw+ep) = %s; want %s", got, want)
	}
	if got, want := fmtXattr("security.capability", vfsCapV2(1<<capNetRaw, 0, true)), "caps v2 permitted=0x2000 inheritable=0x0 effective=true"; !strings.HasPrefix(got, want) {
		t.Errorf("fmtXattr(capability) = %q; want prefix %q", got, want)
	}
	acl := posixACL(
		aclEntry{aclUserObj, 6, aclUndefinedID},
		aclEntry{aclUser, 4, 4242},
		aclEntry{aclGroupObj, 4, aclUndefinedID},
		aclEntry{aclMask, 4, aclUndefinedID},
		aclEntry{aclOther, 0, aclUndefinedID},
	)
	if got, want := fmtXattr("system.posix_acl_access", acl), "user::rw-,user:4242:r--,group::r--,mask::r--,other::---"; !strings.HasPrefix(got, want) {
		t.Errorf("fmtXattr(acl) = %q; want prefix %q", got, want)
	}
	if got := fmtXattr("user.x", []byte("plain")); got != `"plain"` {
		t.Errorf("fmtXattr(text) = %s", got)
	}
	if got := fmtXattr("user.x", []byte{0, 1, 2}); got != "0x000102" {
		t.Errorf("fmtXattr(binary) = %s", got)
	}
}

// fakeTB records Skipf and Fatalf instead of stopping the test.
type fakeTB struct {
	testing.TB
	skipped, failed string
}

func (f *fakeTB) Helper()                        {}
func (f *fakeTB) Skipf(format string, a ...any)  { f.skipped = fmt.Sprintf(format, a...) }
func (f *fakeTB) Fatalf(format string, a ...any) { f.failed = fmt.Sprintf(format, a...) }

func TestRequire(t *testing.T) {
	for _, tc := range []struct {
		what, env      string
		euid           int
		skip, fail     bool
		reasonContains string
	}{
		{what: "root", euid: 0},
		{what: "root", euid: 1000, skip: true, reasonContains: "needs root"},
		{what: "root", euid: 1000, env: "all", fail: true},
		{what: "root", euid: 1000, env: "sftp, root", fail: true},
		{what: "root", euid: 1000, env: "sftp,rootless", skip: true},
		{what: "no-such-capability", fail: true},
	} {
		t.Run(fmt.Sprintf("%s/euid=%d/env=%q", tc.what, tc.euid, tc.env), func(t *testing.T) {
			f := &fakeTB{TB: t}
			require(f, tc.what, tc.env, tc.euid)
			if (f.skipped != "") != tc.skip || (f.failed != "") != tc.fail {
				t.Errorf("skipped %q, failed %q; want skip %t, fail %t", f.skipped, f.failed, tc.skip, tc.fail)
			}
			if !strings.Contains(f.skipped+f.failed, tc.reasonContains) {
				t.Errorf("reason %q lacks %q", f.skipped+f.failed, tc.reasonContains)
			}
		})
	}
	// A tool that cannot exist names its package.
	why := missing(capability{tools: []string{"no-such-tool-pibackup"}, pkg: "pibackup-tools"}, 0)
	if !strings.Contains(why, "apt-get install pibackup-tools") {
		t.Errorf("missing() = %q; want the apt package", why)
	}
}

func TestArgvBuilders(t *testing.T) {
	d := &PiDisk{DiskID: 0x5e3da1b7, BootStart: 8192 * 512, BootSize: 64 << 20, RootStart: 8192*512 + 64<<20}
	want := "label: dos\nlabel-id: 0x5e3da1b7\nunit: sectors\n\nstart=8192, size=131072, type=c\nstart=139264, type=83\n"
	if got := sfdiskScript(d); got != want {
		t.Errorf("sfdiskScript = %q; want %q", got, want)
	}
	got := strings.Join(loopArgs("/x.img", 4194304, 67108864, true), " ")
	if want := "--find --show --read-only --offset 4194304 --sizelimit 67108864 /x.img"; got != want {
		t.Errorf("loopArgs = %q; want %q", got, want)
	}
	got = strings.Join(loopArgs("/x.img", 0, 0, false), " ")
	if want := "--find --show --offset 0 /x.img"; got != want {
		t.Errorf("loopArgs = %q; want %q", got, want)
	}
}

// TestPopulateDeterministic populates two directories and expects them to
// compare equal, atimes and sparseness included: Populate must not depend on
// the clock, the umask or map order.
func TestPopulateDeterministic(t *testing.T) {
	Require(t, "root")
	a, b := t.TempDir(), t.TempDir()
	old := unix.Umask(0o077) // a hostile umask must not matter
	defer unix.Umask(old)
	if err := Populate(a, PopulateOptions{}); errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP) {
		t.Skipf("temporary directory's file system lacks xattr support: %v", err)
	} else if err != nil {
		t.Fatal(err)
	}
	unix.Umask(0o000)
	if err := Populate(b, PopulateOptions{}); err != nil {
		t.Fatal(err)
	}
	diffs, err := Compare(a, b, CompareOptions{Atime: true, Sparse: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(diffs) > 0 {
		t.Errorf("two Populate runs differ: %s", FormatDiffs(diffs, 20))
	}
	var st unix.Stat_t
	must(t, unix.Lstat(filepath.Join(a, PathHardlink3), &st))
	if st.Nlink != 3 {
		t.Errorf("%s has %d links; want 3", PathHardlink3, st.Nlink)
	}
	if err := Populate(filepath.Join(a, "nope"), PopulateOptions{}); err == nil {
		t.Error("Populate into a missing directory succeeded")
	}
}
