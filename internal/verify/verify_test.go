package verify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/pibackup/pibackup/internal/backup"
	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/compress"
	"github.com/pibackup/pibackup/internal/testfs"
	"github.com/pibackup/pibackup/internal/xattr"
)

// piDiskAndTarget builds a Pi-like disk and an empty backup folder.
func piDiskAndTarget(t *testing.T) (*testfs.PiDisk, string) {
	t.Helper()
	testfs.Require(t, "pidisk")
	testfs.Require(t, "rsync")
	dir := t.TempDir()
	d, err := testfs.BuildPiDisk(dir, testfs.DiskOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "backups")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	return d, out
}

// makeSets backs up one Pi-like disk with backupctl's engine in every
// type and compression, and returns the set folders by label.
func makeSets(t *testing.T) (map[string]string, *testfs.PiDisk) {
	t.Helper()
	d, out := piDiskAndTarget(t)
	sets := map[string]string{}
	for _, c := range []struct {
		label string
		typ   backupset.Type
		comp  backupset.Compression
	}{
		{"dd", backupset.TypeDD, ""},
		{"ddz", backupset.TypeDDZ, ""},
		{"ddzst", backupset.TypeDD, backupset.CompressZstd},
		{"tar", backupset.TypeTar, ""},
		{"tgz", backupset.TypeTGZ, ""},
		{"tarzst", backupset.TypeTar, backupset.CompressZstd},
		{"rsync", backupset.TypeRsync, ""},
	} {
		res, err := backup.Run(context.Background(), backup.Options{Target: out, Type: c.typ, Compression: c.comp, SourceDisk: d.Path, Snapshot: c.label}, backup.Deps{})
		if err != nil {
			t.Fatalf("backup %s: %v", c.label, err)
		}
		sets[c.label] = res.SetDir
	}
	return sets, d
}

// TestVerifyCatchesFlippedByte: every kind of payload with a manifest is
// read completely; one flipped byte anywhere is found and named.
func TestVerifyCatchesFlippedByte(t *testing.T) {
	sets, _ := makeSets(t)
	ctx := context.Background()
	labels := make([]string, 0, len(sets))
	for l := range sets {
		labels = append(labels, l)
	}
	sort.Strings(labels)
	for _, label := range labels {
		dir := sets[label]
		t.Run(label, func(t *testing.T) {
			rep, err := Dir(ctx, dir, Options{})
			if err != nil {
				t.Fatalf("good set: %v (%v)", err, rep.Problems)
			}
			if !rep.Manifest {
				t.Fatal("set has no manifest")
			}
			t.Logf("checked %q (%d bytes)", rep.Checked, rep.Bytes)
			m := readManifest(t, dir)
			files := m.Files
			for _, f := range files {
				if f.Size == 0 {
					continue
				}
				t.Run(f.Path, func(t *testing.T) {
					p := filepath.Join(dir, f.Path)
					restoreByte := flipByte(t, p, f.Size/2)
					defer restoreByte()
					rep, err := Dir(ctx, dir, Options{})
					if !errors.Is(err, ErrFailed) || rep.OK() {
						t.Fatalf("flipped byte in %s not caught: %v", f.Path, err)
					}
					if rep.Problems[0].File != f.Path {
						t.Errorf("first problem %v; want one naming %s", rep.Problems[0], f.Path)
					}
				})
			}
			if len(m.Trees) > 0 {
				// A file of the tree changed behind the listing's back.
				t.Run("tree file", func(t *testing.T) {
					p := filepath.Join(dir, testfs.PathNotes)
					restoreByte := flipByte(t, p, 0)
					defer restoreByte()
					rep, err := Dir(ctx, dir, Options{})
					if !errors.Is(err, ErrFailed) || !strings.Contains(rep.Problems[0].Msg, "notes.txt") {
						t.Fatalf("changed tree file not caught: %v %v", err, rep.Problems)
					}
					// Read as a remote source reads it (no local folder):
					// the content check finds it too.
					rep, err = Set(ctx, os.DirFS(dir), filepath.Base(dir), Options{})
					if !errors.Is(err, ErrFailed) || !strings.Contains(rep.Problems[0].Msg, "notes.txt") {
						t.Fatalf("changed tree file not caught without LocalDir: %v %v", err, rep.Problems)
					}
				})
				t.Run("not local", func(t *testing.T) {
					rep, err := Set(ctx, os.DirFS(dir), filepath.Base(dir), Options{})
					if err != nil {
						t.Fatalf("good set without LocalDir: %v (%v)", err, rep.Problems)
					}
					if !strings.Contains(strings.Join(rep.Checked, "\n"), "tree .: content of") {
						t.Errorf("tree content not checked: %q", rep.Checked)
					}
				})
				// An extras file that has its manifest checksum but
				// disagrees with the listing (written so, or edited along
				// with the manifest) fails verify.
				t.Run("extras file", func(t *testing.T) {
					tr := m.Trees[0]
					if tr.Extras == "" {
						t.Fatal("rsync set without an extras file")
					}
					undo := rewriteRecorded(t, dir, tr.Extras, func(b []byte) []byte {
						return bytes.Replace(b, []byte("l home/pi/hostname-link /etc/hostname"), []byte("l home/pi/hostname-link /etc/shadow"), 1)
					})
					defer undo()
					rep, err := Dir(ctx, dir, Options{})
					if !errors.Is(err, ErrFailed) || rep.Problems[0].File != tr.Extras || !strings.Contains(rep.Problems[0].Msg, "hostname-link") {
						t.Fatalf("extras file that disagrees with the listing not caught: %v %v", err, rep.Problems)
					}
				})
			}
		})
	}
}

// rewriteRecorded changes the set file name with edit and records its new
// size and SHA-256 in the manifest; the returned function undoes both.
func rewriteRecorded(t *testing.T, dir, name string, edit func([]byte) []byte) func() {
	t.Helper()
	p, mp := filepath.Join(dir, name), testfs.ManifestPath(t, dir)
	old, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	oldM, err := os.ReadFile(mp)
	if err != nil {
		t.Fatal(err)
	}
	b := edit(bytes.Clone(old))
	if bytes.Equal(b, old) {
		t.Fatalf("BUG: edit left %s unchanged", name)
	}
	m := readManifest(t, dir)
	sum := sha256.Sum256(b)
	for i := range m.Files {
		if m.Files[i].Path == name {
			m.Files[i].Size, m.Files[i].SHA256 = int64(len(b)), hex.EncodeToString(sum[:])
		}
	}
	var mb bytes.Buffer
	if err := backupset.WriteManifest(&mb, m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(mp, mb.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return func() {
		os.WriteFile(p, old, 0o600)
		os.WriteFile(mp, oldM, 0o600)
	}
}

func readManifest(t *testing.T, dir string) *backupset.Manifest {
	t.Helper()
	b, err := os.ReadFile(testfs.ManifestPath(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	m, err := backupset.ReadManifest(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// flipByte inverts one byte of a file, keeping its times, and returns a
// function that flips it back.
func flipByte(t *testing.T, p string, off int64) func() {
	t.Helper()
	flip := func() {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 1)
		if _, err := f.ReadAt(b, off); err != nil {
			t.Fatal(err)
		}
		b[0] ^= 0xff
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
		f.Close()
		os.Chtimes(p, fi.ModTime(), fi.ModTime())
	}
	flip()
	return flip
}

// TestVerifyRaspiBackupSets checks sets without manifest: a good set
// passes; a missing required file, a corrupt compressed payload and a
// truncated tar fail.
func TestVerifyRaspiBackupSets(t *testing.T) {
	dir := t.TempDir()
	host := "pi"
	name := host + "@debian12-tgz-backup-20240416-094106"
	set := filepath.Join(dir, name)
	if err := os.Mkdir(set, 0o755); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "src")
	os.MkdirAll(filepath.Join(src, "etc"), 0o755)
	os.WriteFile(filepath.Join(src, "etc", "hostname"), bytes.Repeat([]byte("pi\n"), 5000), 0o644)
	if out, err := exec.Command("tar", "-czf", filepath.Join(set, name+".tgz"), "-C", src, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, out)
	}
	boot := make([]byte, 1<<20)
	// A minimal FAT32 boot sector is what Identify looks for.
	copy(boot[3:], "mkfs.fat")
	boot[11], boot[12], boot[13] = 0, 2, 1 // 512 bytes per sector, 1 per cluster
	copy(boot[82:], "FAT32   ")
	boot[510], boot[511] = 0x55, 0xaa
	os.WriteFile(filepath.Join(set, host+"-backup.img"), boot, 0o644)
	mbr := make([]byte, 512)
	mbr[510], mbr[511] = 0x55, 0xaa
	os.WriteFile(filepath.Join(set, host+"-backup.mbr"), mbr, 0o644)
	os.WriteFile(filepath.Join(set, host+"-backup.sfdisk"), []byte("label: dos\nlabel-id: 0x5e3da1b7\ndevice: /dev/mmcblk0\nunit: sectors\n\n/dev/mmcblk0p1 : start=8192, size=524288, type=c\n/dev/mmcblk0p2 : start=532480, size=1000000, type=83\n"), 0o644)
	ctx := context.Background()
	rep, err := Dir(ctx, set, Options{})
	if err != nil {
		t.Fatalf("good raspiBackup set: %v %v", err, rep.Problems)
	}
	if rep.Manifest {
		t.Error("claims a manifest")
	}
	// Corrupt the gzip stream: its CRC catches it.
	undo := flipByte(t, filepath.Join(set, name+".tgz"), 100)
	if rep, err := Dir(ctx, set, Options{}); !errors.Is(err, ErrFailed) || rep.Problems[0].File != name+".tgz" {
		t.Errorf("corrupt tgz: %v %v", err, rep.Problems)
	}
	undo()
	// A broken boot image.
	undo = flipByte(t, filepath.Join(set, host+"-backup.img"), 510)
	if _, err := Dir(ctx, set, Options{}); !errors.Is(err, ErrFailed) {
		t.Errorf("broken boot image: %v", err)
	}
	undo()
	// A missing file.
	os.Rename(filepath.Join(set, host+"-backup.mbr"), filepath.Join(dir, "mbr"))
	if rep, err := Dir(ctx, set, Options{}); !errors.Is(err, ErrFailed) || !strings.Contains(rep.Problems[0].String(), "mbr") {
		t.Errorf("missing mbr: %v %v", err, rep.Problems)
	}
	os.Rename(filepath.Join(dir, "mbr"), filepath.Join(set, host+"-backup.mbr"))
	// A truncated uncompressed tar.
	tarName := host + "@debian12-tar-backup-20240416-094107"
	tset := filepath.Join(dir, tarName)
	os.Mkdir(tset, 0o755)
	for _, f := range []string{"-backup.img", "-backup.mbr", "-backup.sfdisk"} {
		b, _ := os.ReadFile(filepath.Join(set, host+f))
		os.WriteFile(filepath.Join(tset, host+f), b, 0o644)
	}
	zr, _ := os.Open(filepath.Join(set, name+".tgz"))
	r, _ := compress.NewReader(zr, backupset.CompressGzip)
	all, _ := io.ReadAll(r)
	zr.Close()
	os.WriteFile(filepath.Join(tset, tarName+".tar"), all[:len(all)/3], 0o644)
	if rep, err := Dir(ctx, tset, Options{}); !errors.Is(err, ErrFailed) || !strings.Contains(rep.Problems[0].Msg, "tar") {
		t.Errorf("truncated tar: %v %v", err, rep.Problems)
	}
	// Not a set name at all.
	if _, err := Dir(ctx, dir, Options{}); !errors.Is(err, ErrFailed) {
		t.Errorf("non-set folder: %v", err)
	}
}

// TestVerifyIncrementalRsync: an rsync set made with --link-dest is
// verified before its commit (in <host>/tmp/) by reading again only what
// rsync wrote in its run; a file it wrote wrong (here: a hardlink of the
// previous set replaced by a copy with one byte flipped, its metadata
// kept) is still caught. A committed set (backupctl verify) has every
// file read.
func TestVerifyIncrementalRsync(t *testing.T) {
	d, out := piDiskAndTarget(t)
	var sets []string
	for range 2 {
		res, err := backup.Run(context.Background(), backup.Options{Target: out, Type: backupset.TypeRsync, SourceDisk: d.Path}, backup.Deps{})
		if err != nil {
			t.Fatal(err)
		}
		sets = append(sets, res.SetDir)
	}
	m := readManifest(t, sets[1])
	if m.PreviousSet != filepath.Base(sets[0]) {
		t.Fatalf("second set's previous_set %q, want %q", m.PreviousSet, filepath.Base(sets[0]))
	}
	// Where backupctl verifies a new set.
	staged := filepath.Join(filepath.Dir(sets[1]), backupset.TmpDir, filepath.Base(sets[1]))
	if err := os.MkdirAll(filepath.Dir(staged), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(sets[1], staged); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rep, err := Dir(ctx, staged, Options{})
	if err != nil {
		t.Fatalf("good incremental set: %v (%v)", err, rep.Problems)
	}
	t.Logf("checked %q (%d bytes read)", rep.Checked, rep.Bytes)
	var files int64 // the set's files besides the tree, read in full
	for _, f := range m.Files {
		files += f.Size
	}
	if tree, read := m.Trees[0].Bytes, rep.Bytes-files; read*10 > tree {
		t.Errorf("verify read %d bytes of a %d byte tree that is all hardlinks of the previous set", read, tree)
	}
	// As backupctl checks it before the commit: the tree as listed.
	listed := Options{TreesListed: true}
	rep, err = Dir(ctx, staged, listed)
	if err != nil {
		t.Fatalf("good incremental set, trees as listed: %v (%v)", err, rep.Problems)
	}
	t.Logf("trees as listed: checked %q (%d bytes read)", rep.Checked, rep.Bytes)
	if tree, read := m.Trees[0].Bytes, rep.Bytes-files; read*10 > tree || !strings.Contains(strings.Join(rep.Checked, "\n"), "hardlinks of "+filepath.Base(sets[0])) {
		t.Errorf("trees as listed: read %d bytes of a %d byte tree that is all hardlinks of the previous set (%q)", read, tree, rep.Checked)
	}

	// A bad write: the file is rsync's own copy now, one byte wrong.
	p := filepath.Join(staged, testfs.PathNotes)
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	st := fi.Sys().(*syscall.Stat_t)
	parent, err := os.Stat(filepath.Dir(p))
	if err != nil {
		t.Fatal(err)
	}
	tmp := p + ".new"
	if err := os.WriteFile(tmp, b, fi.Mode().Perm()); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(tmp, fi.Mode().Perm()); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(tmp, int(st.Uid), int(st.Gid)); err != nil {
		t.Fatal(err)
	}
	names, err := xattr.List(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		v, err := xattr.Get(p, n)
		if err != nil {
			t.Fatal(err)
		}
		if err := unix.Lsetxattr(tmp, n, v, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chtimes(tmp, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(filepath.Dir(p), parent.ModTime(), parent.ModTime()); err != nil {
		t.Fatal(err)
	}
	rep, err = Dir(ctx, staged, Options{})
	if !errors.Is(err, ErrFailed) || !strings.Contains(rep.Problems[0].Msg, `"home/pi/notes.txt": content differs`) {
		t.Fatalf("bad copy of a file in an incremental set not caught: %v %v", err, rep.Problems)
	}
	rep, err = Dir(ctx, staged, listed)
	if !errors.Is(err, ErrFailed) || !strings.Contains(rep.Problems[0].Msg, testfs.PathNotes) {
		t.Fatalf("trees as listed: bad copy of a file in an incremental set not caught: %v %v", err, rep.Problems)
	}
	t.Logf("trees as listed, bad copy: %v", rep.Problems)
	// Committed (the byte flipped back): every file is read.
	flipByte(t, p, int64(len(b)/2))
	if err := os.Rename(staged, sets[1]); err != nil {
		t.Fatal(err)
	}
	rep, err = Dir(ctx, sets[1], Options{})
	if err != nil {
		t.Fatalf("committed incremental set: %v (%v)", err, rep.Problems)
	}
	if tree, read := m.Trees[0].Bytes, rep.Bytes-files; read < tree {
		t.Errorf("verify of the committed set read %d bytes of a %d byte tree", read, tree)
	}
}
