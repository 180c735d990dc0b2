package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pibackup/pibackup/internal/blockdev"
	"github.com/pibackup/pibackup/internal/testfs"
)

// fileSHA256 hashes a whole file or block device.
func fileSHA256(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// randomImage makes an image file of size bytes of random data, so any
// write to it shows.
func randomImage(t *testing.T, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "random.img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(f, rand.Reader, size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return p
}

// TestRestoreSafetyInterlocks: the targets a restore or clone must never
// write, each refused before a byte is written.
func TestRestoreSafetyInterlocks(t *testing.T) {
	d := fixture(t)
	ctx := context.Background()

	t.Run("set-on-target", func(t *testing.T) {
		// The set lives on a loop-backed ext4; --to is that loop device.
		img := filepath.Join(t.TempDir(), "backupdisk.img")
		os.WriteFile(img, nil, 0o644)
		os.Truncate(img, 400<<20)
		runTool(t, "mkfs.ext4", "-q", "-F", img)
		dev := testfs.AttachLoop(t, img, 0, 0, false)
		dir := t.TempDir()
		testfs.MountExt4(t, dev, dir, false)
		set := backupOK(t, dir, "--source-disk", d.Path, "-t", "tgz")
		head := headSHA(t, dev)
		code, _, errOut := cli(ctx, "restore", "--yes", set, "--to", dev)
		t.Logf("restore onto the disk of the set: exit %d: %s", code, strings.TrimSpace(errOut))
		if code != exitPreflight || !(strings.Contains(errOut, "mounted") || strings.Contains(errOut, "holds")) {
			t.Errorf("exit %d %q; want %d naming the mount or the set", code, errOut, exitPreflight)
		}
		code, _, errOut = cli(ctx, "clone", "--yes", "--source-disk", d.Path, "--to", dev)
		t.Logf("clone onto the disk of the set: exit %d: %s", code, strings.TrimSpace(errOut))
		if code != exitPreflight {
			t.Errorf("clone onto a mounted disk: exit %d %q; want %d", code, errOut, exitPreflight)
		}
		if got := headSHA(t, dev); got != head {
			t.Errorf("the disk holding the set changed")
		}
		readManifest(t, set)
		// An image file inside the set folder is refused too.
		code, _, errOut = cli(ctx, "restore", "--yes", set, "--to", filepath.Join(set, "x.img"), "--size", "320M")
		if code != exitPreflight || !strings.Contains(errOut, "inside the backup set") {
			t.Errorf("image inside the set: exit %d %q", code, errOut)
		}
	})

	t.Run("too-small", func(t *testing.T) {
		backups := t.TempDir()
		set := backupOK(t, backups, "--source-disk", d.Path, "-t", "tgz")
		img := randomImage(t, 48<<20)
		dev := testfs.AttachLoop(t, img, 0, 0, false)
		before := fileSHA256(t, dev)
		code, _, errOut := cli(ctx, "restore", "--yes", set, "--to", dev)
		t.Logf("restore onto 48 MiB: exit %d: %s", code, strings.TrimSpace(errOut))
		if code != exitPreflight || !strings.Contains(errOut, "bytes needed") {
			t.Errorf("exit %d %q; want %d and the bytes needed", code, errOut, exitPreflight)
		}
		if after := fileSHA256(t, dev); after != before {
			t.Errorf("the too small target was written to")
		}
	})

	t.Run("running-root", func(t *testing.T) {
		sys, err := blockdev.Host().FindSystem()
		if err != nil {
			t.Skipf("no running root on a block device here: %v", err)
		}
		backups := t.TempDir()
		set := backupOK(t, backups, "--source-disk", d.Path, "-t", "tgz")
		for _, disk := range sys.Disks() {
			// -F: even if the interlock failed, a dry run writes nothing.
			code, _, errOut := cli(ctx, "restore", "-F", set, "--to", "/dev/"+disk)
			t.Logf("restore -F onto the running root's disk /dev/%s: exit %d: %s", disk, code, strings.TrimSpace(errOut))
			if code != exitPreflight || !strings.Contains(errOut, "running system") {
				t.Errorf("exit %d %q; want %d naming the running system", code, errOut, exitPreflight)
			}
		}
	})
}

// headSHA hashes the first and last MiB of a device: where a restore
// writes first (it wipes the partition tables there).
func headSHA(t *testing.T, dev string) string {
	t.Helper()
	f, err := os.Open(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	size, _ := f.Seek(0, io.SeekEnd)
	h := sha256.New()
	for _, off := range []int64{0, size - 1<<20} {
		if _, err := io.Copy(h, io.NewSectionReader(f, off, 1<<20)); err != nil {
			t.Fatal(err)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// rewriteTarSet copies a tgz set and rewrites its payload with edit,
// which gets every member (name, header, body) and writes what it wants;
// the manifest's size and sha256 are updated, so only the archive's
// content is hostile (verify catches what it must by its structure).
func rewriteTarSet(t *testing.T, set string, edit func(tw *tar.Writer, h *tar.Header, body []byte), extra func(tw *tar.Writer)) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "testpi")
	os.MkdirAll(dir, 0o755)
	dst := filepath.Join(dir, filepath.Base(set))
	runTool(t, "cp", "-a", set, dst)
	payload := filepath.Join(dst, filepath.Base(set)+".tgz")
	in, err := os.Open(payload)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(in)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	tw := tar.NewWriter(zw)
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		edit(tw, h, body)
	}
	extra(tw)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	in.Close()
	if err := os.WriteFile(payload, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	rehash(t, dst, filepath.Base(payload))
	return dst
}

func writeMember(t *testing.T, tw *tar.Writer, h *tar.Header, body []byte) {
	t.Helper()
	h.Size = int64(len(body))
	if h.Typeflag != tar.TypeReg {
		h.Size = 0
		body = nil
	}
	if err := tw.WriteHeader(h); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(body); err != nil {
		t.Fatal(err)
	}
}

// TestRestoreSafetyArchiveEscapes restores tar sets whose archive tries
// to write outside the new root filesystem, and proves that nothing
// outside was written:
//   - traversal: "../" names, absolute names, a symlink to a host folder
//     followed by a file through it, a hardlink to an absolute path;
//   - fstab: /etc/fstab as a symlink to a host file (restore rewrites
//     /etc/fstab after extracting);
//   - rsync: the same fstab symlink in an rsync set's tree.
func TestRestoreSafetyArchiveEscapes(t *testing.T) {
	d := fixture(t)
	backups := t.TempDir()
	set := backupOK(t, backups, "--source-disk", d.Path, "-t", "tgz")
	host := t.TempDir() // nothing may appear here
	token := "pibackup-escape-" + filepath.Base(host)
	var fstab []byte

	keep := func(t *testing.T) func(tw *tar.Writer, h *tar.Header, body []byte) {
		return func(tw *tar.Writer, h *tar.Header, body []byte) {
			if strings.TrimPrefix(h.Name, "./") == "etc/fstab" {
				fstab = body
			}
			writeMember(t, tw, h, body)
		}
	}
	checkHost := func(t *testing.T) {
		t.Helper()
		if es, _ := os.ReadDir(host); len(es) > 0 {
			t.Errorf("ESCAPE: the restore wrote %s into the host folder %s", es[0].Name(), host)
		}
		for _, p := range []string{filepath.Join(os.TempDir(), token), filepath.Join("/", token), filepath.Join(filepath.Dir(host), token)} {
			if _, err := os.Lstat(p); err == nil {
				t.Errorf("ESCAPE: the restore wrote %s", p)
				os.Remove(p)
			}
		}
	}

	t.Run("traversal", func(t *testing.T) {
		evil := rewriteTarSet(t, set, keep(t), func(tw *tar.Writer) {
			reg := func(name string) {
				writeMember(t, tw, &tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644}, []byte("pwned\n"))
			}
			reg("../" + token)
			reg("./../../../../../../../../" + token)
			reg(filepath.Join(host, "absolute"))
			writeMember(t, tw, &tar.Header{Name: "./escape-link", Typeflag: tar.TypeSymlink, Linkname: host, Mode: 0o777}, nil)
			reg("./escape-link/through-symlink")
			writeMember(t, tw, &tar.Header{Name: "./rel-link", Typeflag: tar.TypeSymlink, Linkname: "../../../../../../../../.." + host, Mode: 0o777}, nil)
			reg("./rel-link/through-relative-symlink")
			writeMember(t, tw, &tar.Header{Name: "./hard-escape", Typeflag: tar.TypeLink, Linkname: "/etc/passwd"}, nil)
		})
		img := filepath.Join(t.TempDir(), "t.img")
		code, _, errOut := cli(context.Background(), "restore", "--yes", evil, "--to", img, "--size", "320M")
		t.Logf("restore of a traversal archive: exit %d: %s", code, lastLine(errOut))
		checkHost(t)
	})

	victim := filepath.Join(t.TempDir(), "victim-fstab")
	t.Run("fstab-symlink", func(t *testing.T) {
		if fstab == nil {
			t.Fatal("the set's archive has no etc/fstab")
		}
		if err := os.WriteFile(victim, fstab, 0o644); err != nil {
			t.Fatal(err)
		}
		evil := rewriteTarSet(t, set, func(tw *tar.Writer, h *tar.Header, body []byte) {
			if strings.TrimPrefix(h.Name, "./") == "etc/fstab" {
				writeMember(t, tw, &tar.Header{Name: h.Name, Typeflag: tar.TypeSymlink, Linkname: victim, Mode: 0o777}, nil)
				return
			}
			writeMember(t, tw, h, body)
		}, func(*tar.Writer) {})
		// A symlink to an absolute path is an ordinary member: the set
		// verifies, and the restore must still not write through it.
		if code, o, e := cli(context.Background(), "verify", evil); code != 0 {
			t.Fatalf("set with an etc/fstab symlink does not verify: %s%s", o, e)
		}
		img := filepath.Join(t.TempDir(), "t.img")
		code, out, errOut := cli(context.Background(), "restore", "--yes", evil, "--to", img, "--size", "320M")
		t.Logf("restore with etc/fstab -> %s: exit %d: %s", victim, code, lastLine(errOut))
		if got, _ := os.ReadFile(victim); !bytes.Equal(got, fstab) {
			t.Errorf("ESCAPE (BUG): restoring a tar whose etc/fstab is a symlink rewrote the host file %s through it:\n%s\nrestore output:\n%s",
				victim, got, out)
		}
		checkHost(t)
	})

	t.Run("rsync-fstab-symlink", func(t *testing.T) {
		rs := backupOK(t, t.TempDir(), "--source-disk", d.Path, "-t", "rsync")
		if err := os.WriteFile(victim, fstab, 0o644); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(rs, "etc", "fstab")
		os.Remove(p)
		if err := os.Symlink(victim, p); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(host, filepath.Join(rs, "escape-link")); err != nil {
			t.Fatal(err)
		}
		img := filepath.Join(t.TempDir(), "t.img")
		code, out, errOut := cli(context.Background(), "restore", "--yes", rs, "--to", img, "--size", "320M")
		t.Logf("restore of an rsync set with etc/fstab -> %s: exit %d: %s", victim, code, lastLine(errOut))
		if got, _ := os.ReadFile(victim); !bytes.Equal(got, fstab) {
			t.Errorf("ESCAPE (BUG): restoring an rsync set whose etc/fstab is a symlink rewrote the host file %s:\n%s\n%s", victim, got, out)
		}
		checkHost(t)
	})
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	return s[strings.LastIndex(s, "\n")+1:]
}
