package restore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pibackup/pibackup/internal/backup"
	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/disklayout"
	"github.com/pibackup/pibackup/internal/i18n"
	"github.com/pibackup/pibackup/internal/source"
	"github.com/pibackup/pibackup/internal/testfs"
	"github.com/pibackup/pibackup/internal/testsrv"
)

// TestRestoreRsyncRemote restores the fixture's rsync set, made by
// backupctl's engine, through real network sources that keep nothing but
// file content: OpenSSH's sftp server and Samba (SMB2 without unix
// extensions; it also shows the fixture's name with a tab and a newline
// only under a mangled 8.3 name). The target is a loop device, as a card
// would be. The disk is judged against the source disk by
// testfs.CompareDisks (e2fsck, fsck.vfat, every owner, mode, ns mtime,
// xattr, ACL, capability, hardlink and device node) and the sparse file
// must keep its holes.
func TestRestoreRsyncRemote(t *testing.T) {
	fx := getFixture(t)
	set := fx.sets["b-rsync"]
	backups := filepath.Dir(filepath.Dir(set)) // BACKUPDIR holding <host>/<set>
	setRel := filepath.ToSlash(filepath.Join(fxHost, filepath.Base(set)))
	opener := source.NewOpener(testLogger(t))
	for _, c := range []struct {
		name string
		spec func(t *testing.T) source.Spec
	}{
		{"sftp", func(t *testing.T) source.Spec {
			testfs.Require(t, "sftp")
			s := testsrv.StartSSHD(t)
			key, err := os.ReadFile(s.KeyPath)
			if err != nil {
				t.Fatal(err)
			}
			return source.Spec{Kind: source.KindSFTP, Host: "127.0.0.1", Port: s.Port, User: s.User, Path: backups, Identity: key, KnownHost: s.Fingerprint}
		}},
		{"smb", func(t *testing.T) source.Spec {
			testfs.Require(t, "smb")
			s := testsrv.StartSMB(t, backups)
			return source.Spec{Kind: source.KindSMB, Host: "127.0.0.1", Port: s.Port, User: s.User, Password: s.Password, Share: s.Share, Path: "."}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			src, err := opener.Open(ctx, c.spec(t))
			if err != nil {
				t.Fatalf("open source: %v", err)
			}
			defer src.Close()
			if src.LocalDir() != "" {
				t.Fatalf("BUG: %s source has a local folder %q; the test would not read over the network", c.name, src.LocalDir())
			}
			sub, err := fs.Sub(src.FS(), setRel)
			if err != nil {
				t.Fatal(err)
			}
			img := filepath.Join(t.TempDir(), "card.img")
			if err := os.WriteFile(img, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(img, fx.disk.RootStart+fx.disk.RootSize); err != nil {
				t.Fatal(err)
			}
			dev := testfs.AttachLoop(t, img, 0, 0, false)
			p, err := NewPlan(ctx, Options{Set: sub, SetName: filepath.Base(set), Target: dev, Log: testLogger(t)})
			if err != nil {
				t.Fatalf("NewPlan: %v", err)
			}
			if p.tree == nil {
				t.Fatal("plan does not use the Go tree restorer")
			}
			t.Logf("plan:\n%s", p)
			start := time.Now()
			res, err := p.Execute(ctx)
			if err != nil {
				t.Fatalf("Execute: %v", err)
			}
			t.Logf("restored over %s in %v (%d bytes, verified %v)", c.name, time.Since(start).Round(time.Millisecond), res.Bytes, res.Verified)
			if !res.Verified || res.Incomplete {
				t.Errorf("result %+v", res)
			}
			rep, err := testfs.CompareDisks(fx.disk.Path, img)
			if err != nil {
				t.Fatal(err)
			}
			if !rep.OK() {
				t.Errorf("restored disk differs from the source:\n%s", rep)
			}
			checkSparseFile(t, fx, img, p)
			// Samba shows "tab\tand\nnewline" only as a mangled 8.3 name;
			// it must have been found by its content.
			if n := p.tree.content.Renamed(); (c.name == "smb") != (n > 0) {
				t.Errorf("%d files found under another name over %s", n, c.name)
			}
		})
	}
}

// checkSparseFile compares the data ranges (SEEK_DATA/SEEK_HOLE) of the
// fixture's sparse file on the source and the restored root: the four
// 4 KiB islands stay islands, the rest holes.
func checkSparseFile(t *testing.T, fx *fixture, img string, p *Plan) {
	t.Helper()
	root := p.partition(p.root)
	a := mountRO(t, fx.disk.Path, fx.disk.RootStart, fx.disk.RootSize)
	b := mountRO(t, img, root.Start, root.Size)
	ra, err := dataRanges(filepath.Join(a, testfs.PathSparse))
	if err != nil {
		t.Fatal(err)
	}
	rb, err := dataRanges(filepath.Join(b, testfs.PathSparse))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ra, rb) {
		t.Errorf("%s: data ranges %v on the source, %v restored", testfs.PathSparse, ra, rb)
	}
}

func dataRanges(p string) ([][2]int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	var out [][2]int64
	fd := int(f.Fd())
	for off := int64(0); off < fi.Size(); {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break
		}
		if err != nil {
			return nil, err
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			return nil, err
		}
		out = append(out, [2]int64{data, hole})
		off = hole
	}
	return out, nil
}

// TestRestoreRaspiBackupRsyncSFTP restores the fixture's raspiBackup
// rsync set (no manifest, no listing, no extras file) from OpenSSH's sftp
// server. Before, such a set was refused over SFTP (ErrNeedsLocal). Now
// the tree is walked on the server and restored with what SFTP gives, and
// the plan and the result say what could not be kept. The restored root
// is judged against the source root entry by entry: content, type, size,
// mode, owner, group and symlink targets must be equal; the only
// differences allowed are the ones the restore names: xattrs (ACLs,
// capabilities), hardlinks, the device nodes it lists as not restored,
// and mtimes cut to whole seconds (a time before 1970 wrapped to 32
// bits).
func TestRestoreRaspiBackupRsyncSFTP(t *testing.T) {
	fx := getFixture(t)
	set := fx.sets["rsync"]
	sub := sftpSet(t, set)
	ctx := context.Background()
	img := filepath.Join(t.TempDir(), "card.img")
	p, err := NewPlan(ctx, Options{Set: sub, SetName: filepath.Base(set), Target: img, Size: fx.disk.RootStart + fx.disk.RootSize, Log: testLogger(t)})
	if err != nil {
		t.Fatalf("NewPlan: %v", err)
	}
	plan := p.String()
	t.Logf("plan:\n%s", plan)
	if p.tree == nil {
		t.Fatal("plan does not use the Go tree restorer")
	}
	for _, e := range p.tree.entries {
		if e.Type == 'c' || e.Type == 'b' {
			t.Errorf("%s: a device node with numbers SFTP cannot report", e.Path)
		}
	}
	for _, want := range []string{
		"owners: the server reports uid/gid numerically: kept",
		"modes: permission bits with setuid, setgid and sticky: kept",
		"mtimes: kept in whole seconds",
		"xattrs, ACLs and file capabilities (e.g. ping's cap_net_raw): not readable over SFTP: lost",
		"hardlinks: SFTP does not show which files share an inode",
		"device nodes: the server reports no device numbers: ",
	} {
		if !strings.Contains(plan, want) {
			t.Errorf("plan does not say %q", want)
		}
	}
	if strings.Contains(plan, "symlinks:") {
		t.Errorf("plan says symlinks are lost; SFTP shows them")
	}
	// The losses are told in the user's language too.
	checkGerman(t, englishTells(t), p.Text(i18n.New(i18n.German)))
	start := time.Now()
	res, err := p.Execute(ctx)
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	t.Logf("restored over SFTP in %v (%d bytes, verified %v); warnings:\n%s", time.Since(start).Round(time.Millisecond), res.Bytes, res.Verified, strings.Join(res.Warnings, "\n"))
	if !res.Verified || !slices.ContainsFunc(res.Warnings, func(w string) bool { return strings.HasPrefix(w, "xattrs, ACLs") }) {
		t.Errorf("result %+v; want verified, with the losses as warnings", res)
	}
	devices := lostDevices(p)
	boot, root := checkFilesystems(t, img)
	fstab, err := testfs.ReadRootFile(img, root.Start, "/etc/fstab")
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Replace(strings.Replace(fx.disk.Fstab, fx.disk.RootPARTUUID, root.PartUUID, 1), fx.disk.BootPARTUUID, boot.PartUUID, 1); string(fstab) != want {
		t.Errorf("fstab = %q; want %q", fstab, want)
	}

	compareLossy(t, fx, img, root, devices)
	if len(devices) == 0 {
		t.Errorf("the fixture has device nodes; none listed as lost")
	}
}

// compareLossy compares the restored root with the fixture's: content,
// type, size, mode, owner, group and symlink targets must be equal; the
// only differences allowed are the ones a restore from SFTP names:
// xattrs, hardlinks, the device nodes listed as not restored, and mtimes
// cut to whole seconds (a time before 1970 wrapped to 32 bits).
func compareLossy(t *testing.T, fx *fixture, img string, root *backupset.Partition, devices []string, ignore ...string) {
	t.Helper()
	a := mountRO(t, fx.disk.Path, fx.disk.RootStart, fx.disk.RootSize)
	b := mountRO(t, img, root.Start, root.Size)
	diffs, err := testfs.Compare(a, b, testfs.CompareOptions{Ignore: append([]string{"etc/fstab"}, ignore...)})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[testfs.Kind]int{}
	var bad []testfs.Diff
	for _, d := range diffs {
		ok := false
		switch d.Kind {
		case testfs.KindXattr, testfs.KindHardlink:
			ok = true
		case testfs.KindMissing:
			ok = slices.Contains(devices, d.Path)
		case testfs.KindMtime:
			var sa, sb unix.Stat_t
			if unix.Lstat(filepath.Join(a, d.Path), &sa) == nil && unix.Lstat(filepath.Join(b, d.Path), &sb) == nil {
				ok = sb.Mtim.Nsec == 0 && (sb.Mtim.Sec == sa.Mtim.Sec || sa.Mtim.Sec < 0 && sb.Mtim.Sec == int64(uint32(sa.Mtim.Sec)))
			}
		}
		if ok {
			kinds[d.Kind]++
		} else {
			bad = append(bad, d)
		}
	}
	t.Logf("differences the restore named: %v", kinds)
	if len(bad) > 0 {
		t.Errorf("restored root differs from the source beyond what the restore said: %s", testfs.FormatDiffs(bad, 30))
	}
	if kinds[testfs.KindXattr] == 0 {
		t.Errorf("the fixture has xattrs; the test would not see them lost (%v)", kinds)
	}
}

// lostDevices returns the device nodes the plan's notes list as not
// restored.
func lostDevices(p *Plan) []string {
	var devices []string
	for _, n := range p.lossNotes {
		if d, ok := strings.CutPrefix(n, "device nodes: the server reports no device numbers: "); ok {
			_, list, _ := strings.Cut(d, "(")
			devices = append(devices, strings.Split(strings.TrimSuffix(list, ")"), ", ")...)
		}
	}
	return devices
}

// sftpSet serves the folder holding <host>/<set> over OpenSSH's sftp
// server and returns the set as an fs.FS read over the network.
func sftpSet(t *testing.T, set string) fs.FS {
	t.Helper()
	testfs.Require(t, "sftp")
	s := testsrv.StartSSHD(t)
	key, err := os.ReadFile(s.KeyPath)
	if err != nil {
		t.Fatal(err)
	}
	backups := filepath.Dir(filepath.Dir(set))
	src, err := source.NewOpener(testLogger(t)).Open(context.Background(), source.Spec{Kind: source.KindSFTP, Host: "127.0.0.1", Port: s.Port, User: s.User, Path: backups, Identity: key, KnownHost: s.Fingerprint})
	if err != nil {
		t.Fatalf("open source: %v", err)
	}
	t.Cleanup(func() { src.Close() })
	sub, err := fs.Sub(src.FS(), path.Join(filepath.Base(filepath.Dir(set)), filepath.Base(set)))
	if err != nil {
		t.Fatal(err)
	}
	return sub
}

// TestRestoreRaspiBackupRsyncPartitionModeSFTP: a partition-oriented
// rsync set as raspiBackup leaves it (mmcblk0p1/ and mmcblk0p2/ trees,
// the .sfdisk/.blkid/.parted/.fdisk/.mbr files, no listing) restores from
// SFTP: the FAT from its walked tree, the ext4 by the Go tree restorer,
// with the losses named. Before, it was refused (ErrNeedsLocal).
func TestRestoreRaspiBackupRsyncPartitionModeSFTP(t *testing.T) {
	fx := getFixture(t)
	res, err := backup.Run(context.Background(), backup.Options{Target: t.TempDir(), Type: backupset.TypeRsync, AllPartitions: true, SourceDisk: fx.disk.Path}, backup.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	// What raspiBackup would have written: no backupctl files.
	es, err := os.ReadDir(res.SetDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		n := e.Name()
		if backupset.IsOwnFile(fxHost, n) && !slices.ContainsFunc([]string{backupset.SuffixSfdisk, backupset.SuffixMBR, backupset.SuffixBlkid, backupset.SuffixParted, backupset.SuffixFdisk}, func(suf string) bool { return n == fxHost+suf }) {
			if err := os.RemoveAll(filepath.Join(res.SetDir, n)); err != nil {
				t.Fatal(err)
			}
		}
	}
	img := filepath.Join(t.TempDir(), "p.img")
	p, err := NewPlan(context.Background(), Options{Set: sftpSet(t, res.SetDir), SetName: filepath.Base(res.SetDir), Target: img, Size: 320 << 20, Log: testLogger(t)})
	if err != nil {
		t.Fatalf("NewPlan: %v", err)
	}
	t.Logf("plan:\n%s", p)
	if p.set.manifest != nil || len(p.partTrees) != 2 {
		t.Fatalf("manifest %v, trees planned for the Go restorer: %d; want none and 2", p.set.manifest != nil, len(p.partTrees))
	}
	for _, want := range []string{"mmcblk0p2 has no listing", "owners: the server reports uid/gid numerically: kept", "xattrs, ACLs and file capabilities"} {
		if !strings.Contains(p.String(), want) {
			t.Errorf("plan does not say %q", want)
		}
	}
	r, err := p.Execute(context.Background())
	if err != nil || !r.Verified {
		t.Fatalf("Execute = %+v, %v", r, err)
	}
	boot, root := checkFilesystems(t, img)
	for _, f := range []string{"config.txt", "overlays/README", "kernel8.img"} {
		want, err := testfs.ExtractFile(fx.disk.Path, fx.disk.BootStart, f)
		if err != nil {
			t.Fatal(err)
		}
		if b, err := testfs.ExtractFile(img, boot.Start, f); err != nil || !bytes.Equal(b, want) {
			t.Errorf("boot file %s: %d bytes, %v; want %d equal bytes", f, len(b), err, len(want))
		}
	}
	// backupctl's -P backup leaves out raspiBackup's default excludes.
	compareLossy(t, fx, img, root, lostDevices(p), "proc/*", "sys/*", "dev/*", "tmp/*", "run/*", "media/*", "lost+found/*")
}

// checkFilesystems lets e2fsck -fn and fsck.vfat -n judge the root (p2)
// and boot (p1) filesystems of a restored Pi disk, and returns them.
func checkFilesystems(t *testing.T, img string) (boot, root *backupset.Partition) {
	t.Helper()
	got, err := disklayout.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	boot, _ = disklayout.PartitionByNumber(got, 1)
	root, _ = disklayout.PartitionByNumber(got, 2)
	if boot == nil || root == nil {
		t.Fatalf("restored disk lacks p1/p2: %+v", got.Partitions)
	}
	if out, err := exec.Command("e2fsck", "-fn", fmt.Sprintf("%s?offset=%d", img, root.Start)).CombinedOutput(); err != nil {
		t.Errorf("e2fsck -fn root: %v\n%s", err, out)
	}
	fsckVfat(t, img, boot.Start, boot.Size)
	return boot, root
}
