package restore

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

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
