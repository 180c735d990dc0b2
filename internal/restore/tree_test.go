package restore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pibackup/pibackup/internal/backup"
	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/progress"
	"github.com/pibackup/pibackup/internal/testfs"
	"github.com/pibackup/pibackup/internal/treelist"
)

// TestRestoreTreeDamaged damages copies of the fixture's backupctl rsync
// set in the ways a set on a file server can go bad, or be made to attack
// the restore, and checks that each ends in an error that names the
// problem: never a restore that looks good. Sets are read through
// os.DirFS without LocalDir, the code path of SFTP and SMB sources,
// except where LocalDir is named.
func TestRestoreTreeDamaged(t *testing.T) {
	fx := getFixture(t)
	for _, c := range []struct {
		name    string
		local   bool                           // pass LocalDir (USB, NFS)
		damage  func(t *testing.T, set string) // change the copy
		atPlan  bool                           // NewPlan refuses (else Execute fails)
		wantErr error                          // wrapped by the error
		wantMsg []string                       // in the error text
		judge   func(t *testing.T, img string) // extra checks of the target
		_       struct{}
	}{
		{
			name: "flipped byte",
			damage: func(t *testing.T, set string) {
				flipByte(t, filepath.Join(set, testfs.PathRandom), 1<<20+17)
			},
			wantErr: ErrDamaged, wantMsg: []string{testfs.PathRandom, "SHA-256"},
			judge: noTable,
		},
		{
			name: "flipped byte, local", local: true,
			damage: func(t *testing.T, set string) {
				flipByte(t, filepath.Join(set, testfs.PathPing), 100)
			},
			wantErr: ErrDamaged, wantMsg: []string{testfs.PathPing, "SHA-256"},
			judge: noTable,
		},
		{
			name: "missing file",
			damage: func(t *testing.T, set string) {
				if err := os.Remove(filepath.Join(set, "usr/lib/libfoo.so.1")); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: ErrDamaged, wantMsg: []string{"usr/lib/libfoo.so.1"},
			judge: noTable,
		},
		{
			name: "dot-dot path in the listing",
			damage: func(t *testing.T, set string) {
				editListing(t, set, backupset.TreeListingName(fxHost, ""), " etc/hostname\n", " etc/../../escape\n")
			},
			atPlan: true, wantErr: ErrBadSet, wantMsg: []string{`"etc/../../escape": not a clean path inside the tree`},
		},
		{
			name: "absolute path in the listing",
			damage: func(t *testing.T, set string) {
				editListing(t, set, backupset.TreeListingName(fxHost, ""), " etc/hostname\n", " /etc/hostname\n")
			},
			atPlan: true, wantErr: ErrBadSet, wantMsg: []string{`"/etc/hostname": not a clean path`},
		},
		{
			name: "dot-dot path in the extras file",
			damage: func(t *testing.T, set string) {
				editListing(t, set, backupset.TreeExtrasName(fxHost, ""), "x home/pi user.", "x home/../../escape user.")
			},
			atPlan: true, wantErr: ErrBadSet, wantMsg: []string{backupset.TreeExtrasName(fxHost, ""), `"home/../../escape": not a clean path inside the tree`},
		},
		{
			name: "absolute path in the extras file",
			damage: func(t *testing.T, set string) {
				editListing(t, set, backupset.TreeExtrasName(fxHost, ""), "x home/pi user.", "x /home/pi user.")
			},
			atPlan: true, wantErr: ErrBadSet, wantMsg: []string{backupset.TreeExtrasName(fxHost, ""), `"/home/pi": not a clean path inside the tree`},
		},
		{
			// A symlink to a host folder, then a file below it: built in
			// order, the file would be created in the host folder.
			name: "file below a symlink in the listing",
			damage: func(t *testing.T, set string) {
				editListing(t, set, backupset.TreeListingName(fxHost, ""), " "+testfs.PathSymlink+"\n",
					" "+testfs.PathSymlink+"\nf 0644 0 0 1710425366000000000 0 "+emptySHA256+" - - - "+testfs.PathSymlink+"/pwned\n")
			},
			atPlan: true, wantErr: ErrBadSet, wantMsg: []string{testfs.PathSymlink + `/pwned": its parent is not a folder listed before it`},
		},
		{
			name: "hardlink to a later path",
			damage: func(t *testing.T, set string) {
				editListing(t, set, backupset.TreeListingName(fxHost, ""), " - etc/hostname\n", " home/pi/notes.txt etc/hostname\n")
			},
			atPlan: true, wantErr: ErrBadSet, wantMsg: []string{`hardlink to "home/pi/notes.txt"`},
		},
		{
			name: "symlink target changed in the extras file",
			damage: func(t *testing.T, set string) {
				editListing(t, set, backupset.TreeExtrasName(fxHost, ""), `l home/pi/hostname-link /etc/hostname`, `l home/pi/hostname-link /etc/shadow`)
			},
			atPlan: true, wantErr: ErrBadSet, wantMsg: []string{"home/pi/hostname-link", "does not match the listing's hash"},
		},
		{
			name: "extras file changed behind the manifest",
			damage: func(t *testing.T, set string) {
				p := filepath.Join(set, backupset.TreeExtrasName(fxHost, ""))
				b, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				// Same size, other content: only the SHA-256 tells.
				b = bytes.Replace(b, []byte("/etc/hostname"), []byte("/etc/hostnamE"), 1)
				if err := os.WriteFile(p, b, 0o600); err != nil {
					t.Fatal(err)
				}
			},
			atPlan: true, wantErr: ErrBadSet, wantMsg: []string{backupset.TreeExtrasName(fxHost, ""), "SHA-256"},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			set := copySet(t, fx.sets["b-rsync"])
			c.damage(t, set)
			o := Options{Set: os.DirFS(set), SetName: filepath.Base(set), Target: filepath.Join(t.TempDir(), "t.img"), Size: 300 << 20, Log: testLogger(t)}
			if c.local {
				o.LocalDir = set
			}
			p, err := NewPlan(context.Background(), o)
			if !c.atPlan {
				if err != nil {
					t.Fatalf("NewPlan: %v", err)
				}
				var res *Result
				res, err = p.Execute(context.Background())
				if err != nil && (!errors.Is(err, ErrIncomplete) || !res.Incomplete) {
					t.Errorf("Execute = %+v, %v; want ErrIncomplete", res, err)
				}
			}
			if err == nil {
				t.Fatal("no error; the damaged set restored as if it were good")
			}
			t.Logf("error: %v", err)
			if !errors.Is(err, c.wantErr) {
				t.Errorf("error does not wrap %v", c.wantErr)
			}
			for _, m := range c.wantMsg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error does not say %q", m)
				}
			}
			if c.judge != nil {
				c.judge(t, o.Target)
			}
		})
	}
}

// TestRestoreRsyncNeedsLocal: a raspiBackup rsync set (no extras file)
// from a source that reports no owners (SMB without unix extensions) is
// refused at plan time, saying what to do; from a local folder it is
// planned for rsync. (Over SFTP, which reports owners, it is walked and
// restored: TestRestoreRaspiBackupRsyncSFTP.)
func TestRestoreRsyncNeedsLocal(t *testing.T) {
	fx := getFixture(t)
	dir := fx.sets["rsync"]
	o := Options{Set: noOwnersFS{os.DirFS(dir)}, SetName: filepath.Base(dir), Target: filepath.Join(t.TempDir(), "t.img"), Size: 300 << 20, Log: testLogger(t)}
	_, err := NewPlan(context.Background(), o)
	if !errors.Is(err, ErrNeedsLocal) || !strings.Contains(err.Error(), "USB disk") {
		t.Errorf("NewPlan without LocalDir = %v; want ErrNeedsLocal with advice", err)
	}
	t.Logf("refused: %v", err)
	o.Set, o.LocalDir = os.DirFS(dir), dir
	p, err := NewPlan(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if p.tree != nil || !strings.Contains(p.String(), "rsync -aHAX") {
		t.Errorf("raspiBackup set not planned for rsync:\n%s", p)
	}
	// A local disk is no network filesystem: no note about lost xattrs.
	if kind := networkFS(dir); kind != "" || strings.Contains(p.String(), "carry no xattrs") {
		t.Errorf("networkFS(%s) = %q; plan:\n%s", dir, kind, p)
	}
}

func noTable(t *testing.T, img string) {
	t.Helper()
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) >= 512 && b[510] == 0x55 && b[511] == 0xaa {
		t.Error("the target has a partition table after a failed restore")
	}
}

// copySet copies a set folder (cp -a keeps hardlinks, xattrs and holes)
// so that a test may damage it.
func copySet(t *testing.T, set string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(set))
	if err := sh("cp", "-a", "--sparse=always", set, dst); err != nil {
		t.Fatal(err)
	}
	return dst
}

func flipByte(t *testing.T, p string, off int64) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x40
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// editListing replaces old by new in a small file of the set and records
// the result in the manifest, so that only the content check can object.
func editListing(t *testing.T, set, name, old, new string) {
	t.Helper()
	p := filepath.Join(set, name)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("%s does not hold %q", name, old)
	}
	resign(t, set, name, bytes.Replace(b, []byte(old), []byte(new), 1))
}

// resign writes b as the file name of set and records its size and
// SHA-256 in the manifest, as someone who changed a set on a share would.
func resign(t *testing.T, set, name string, b []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(set, name), b, 0o600); err != nil {
		t.Fatal(err)
	}
	mp := testfs.ManifestPath(t, set)
	mf, err := os.Open(mp)
	if err != nil {
		t.Fatal(err)
	}
	m, err := backupset.ReadManifest(mf)
	mf.Close()
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	for i := range m.Files {
		if m.Files[i].Path == name {
			m.Files[i].Size, m.Files[i].SHA256 = int64(len(b)), hex.EncodeToString(sum[:])
		}
	}
	var out bytes.Buffer
	if err := backupset.WriteManifest(&out, m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(mp, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestRestoreRsyncPartitionModeNotLocal restores a -P rsync set
// (mmcblk0p1/ and mmcblk0p2/ trees, made by backupctl's engine) without a
// local folder, as from SFTP or SMB: the FAT partition is filled from its
// listing in Go, the ext4 one by the Go tree restorer. CompareDisks judges.
func TestRestoreRsyncPartitionModeNotLocal(t *testing.T) {
	fx := getFixture(t)
	res, err := backup.Run(context.Background(), backup.Options{Target: t.TempDir(), Type: backupset.TypeRsync, AllPartitions: true, SourceDisk: fx.disk.Path}, backup.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(t.TempDir(), "p.img")
	p, err := NewPlan(context.Background(), Options{Set: os.DirFS(res.SetDir), SetName: filepath.Base(res.SetDir), Target: img, Size: 320 << 20, Log: testLogger(t)})
	if err != nil {
		t.Fatalf("NewPlan: %v", err)
	}
	t.Logf("plan:\n%s", p)
	if len(p.partTrees) != 2 {
		t.Fatalf("trees planned for the Go restorer: %d; want 2", len(p.partTrees))
	}
	if r, err := p.Execute(context.Background()); err != nil || !r.Verified {
		t.Fatalf("Execute = %+v, %v", r, err)
	}
	rep, err := testfs.CompareDisks(fx.disk.Path, img)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Errorf("restored disk differs from the source:\n%s", rep)
	}
}

// TestRestoreTreeStaysInside builds trees straight from listings the
// plan's Checker would refuse (as if it had a bug), to show that the
// tree restorer itself never creates anything outside the target: every
// entry is made through a descriptor resolved beneath the target's root
// with no symlink on the way. A canary folder next to the target, which
// the hostile entries name, must stay empty.
func TestRestoreTreeStaysInside(t *testing.T) {
	testfs.Require(t, "root")
	base := t.TempDir()
	canary := filepath.Join(base, "canary")
	if err := os.Mkdir(canary, 0o755); err != nil {
		t.Fatal(err)
	}
	root := treelist.Entry{Type: 'd', Mode: 0o755, Hash: treelist.None, Rdev: treelist.None, XattrHash: treelist.None, Link: treelist.None, Path: "."}
	file := func(p string) treelist.Entry {
		return treelist.Entry{Type: 'f', Mode: 0o644, Hash: emptySHA256, Rdev: treelist.None, XattrHash: treelist.None, Link: treelist.None, Path: p}
	}
	dir := func(p string) treelist.Entry {
		e := root
		e.Path = p
		return e
	}
	symlink := treelist.Entry{Type: 'l', Mode: 0o777, Size: int64(len(canary)), Hash: treelist.None, Rdev: treelist.None,
		XattrHash: treelist.None, Link: treelist.None, Path: "esc"}
	link := func(p, to string) treelist.Entry {
		e := file(p)
		e.Link = to
		return e
	}
	for _, c := range []struct {
		name    string
		entries []treelist.Entry
	}{
		{"dot-dot file", []treelist.Entry{root, file("../canary/pwned")}},
		{"dot-dot folder", []treelist.Entry{root, dir("sub"), dir("sub/../../canary/pwned")}},
		{"absolute file", []treelist.Entry{root, file(filepath.Join(canary, "pwned"))}},
		{"file below a symlink", []treelist.Entry{root, symlink, file("esc/pwned")}},
		{"folder below a symlink", []treelist.Entry{root, symlink, dir("esc/pwned")}},
		{"hardlink via dot-dot", []treelist.Entry{root, link("hl", "../canary/victim")}},
		{"absolute hardlink", []treelist.Entry{root, link("hl", filepath.Join(canary, "victim"))}},
		{"hardlink below a symlink", []treelist.Entry{root, symlink, link("hl", "esc/victim")}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := os.WriteFile(filepath.Join(canary, "victim"), []byte("host file\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			dst := filepath.Join(t.TempDir(), "target")
			if err := os.Mkdir(dst, 0o755); err != nil {
				t.Fatal(err)
			}
			g := &goTree{root: ".", listing: "pibackup-tree.list", entries: c.entries,
				xtra: map[string]treelist.Extra{"esc": {Path: "esc", Target: canary}}}
			g.content = treelist.NewContent(os.DirFS(t.TempDir()), g.entries, nil)
			_, err := restoreTree(context.Background(), g, dst, progress.OrNop(nil))
			t.Logf("error: %v", err)
			if !errors.Is(err, ErrBadSet) || !strings.Contains(err.Error(), "refused") {
				t.Errorf("restoreTree = %v; want ErrBadSet saying what it refused", err)
			}
			es, _ := os.ReadDir(canary)
			if len(es) != 1 || es[0].Name() != "victim" {
				t.Errorf("canary folder holds %v; want only victim", es)
			}
			if b, _ := os.ReadFile(filepath.Join(canary, "victim")); string(b) != "host file\n" {
				t.Errorf("host file changed: %q", b)
			}
		})
	}
}

// noOwnersFS serves a folder as SMB without unix extensions does: its
// FileInfo carries no owner (Sys is nil).
type noOwnersFS struct{ fs.FS }

func (f noOwnersFS) ReadDir(name string) ([]fs.DirEntry, error) {
	es, err := fs.ReadDir(f.FS, name)
	for i, e := range es {
		es[i] = noOwnersEntry{e}
	}
	return es, err
}

func (f noOwnersFS) Stat(name string) (fs.FileInfo, error) {
	fi, err := fs.Stat(f.FS, name)
	if err != nil {
		return nil, err
	}
	return noOwnersInfo{fi}, nil
}

type noOwnersEntry struct{ fs.DirEntry }

func (e noOwnersEntry) Info() (fs.FileInfo, error) {
	fi, err := e.DirEntry.Info()
	if err != nil {
		return nil, err
	}
	return noOwnersInfo{fi}, nil
}

type noOwnersInfo struct{ fs.FileInfo }

func (noOwnersInfo) Sys() any { return nil }
