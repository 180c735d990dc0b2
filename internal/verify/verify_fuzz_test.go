package verify

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"testing"
	"testing/fstest"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/compress"
)

// fuzzSetName is a tar set of raspiBackup's layout; its payload is the
// fuzzed archive.
const fuzzSetName = "pi@debian12-tar-backup-20240416-094106"

// fuzzSfdisk is the set's layout: a boot and a root partition, as a
// restore needs (verify refuses what a restore refuses).
var fuzzSfdisk = []byte("label: dos\nlabel-id: 0x1234abcd\n\n" +
	"/dev/mmcblk0p1 : start=8192, size=1048576, type=c\n" +
	"/dev/mmcblk0p2 : start=1056768, size=2097152, type=83\n")

var fuzzComps = []backupset.Compression{backupset.CompressNone, backupset.CompressGzip, backupset.CompressZstd}

// tarSeed is a small root-like archive as GNU tar would write it, with a
// long name (PAX), a symlink, a hardlink and xattrs.
func tarSeed(f testing.TB) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	add := func(h *tar.Header, body string) {
		h.Size = int64(len(body))
		if err := tw.WriteHeader(h); err != nil {
			f.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			f.Fatal(err)
		}
	}
	add(&tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755}, "")
	add(&tar.Header{Name: "./etc/hostname", Typeflag: tar.TypeReg, Mode: 0o644}, "pi\n")
	add(&tar.Header{Name: "./" + string(bytes.Repeat([]byte("x"), 120)), Typeflag: tar.TypeReg, Mode: 0o600,
		PAXRecords: map[string]string{"SCHILY.xattr.security.capability": "\x01\x00\x00\x02"}}, "long")
	add(&tar.Header{Name: "./lnk", Typeflag: tar.TypeSymlink, Linkname: "/etc/hostname"}, "")
	add(&tar.Header{Name: "./hard", Typeflag: tar.TypeLink, Linkname: "./etc/hostname"}, "")
	if err := tw.Close(); err != nil {
		f.Fatal(err)
	}
	return b.Bytes()
}

func compressSeed(f *testing.F, data []byte, c backupset.Compression) []byte {
	var b bytes.Buffer
	w, err := compress.NewWriter(&b, c)
	if err != nil {
		f.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		f.Fatal(err)
	}
	if err := w.Close(); err != nil {
		f.Fatal(err)
	}
	return b.Bytes()
}

// FuzzSetTar verifies a raspiBackup tar set (no manifest) whose payload,
// plain, gzip or zstd, is arbitrary bytes: the tar headers and streams
// verify reads from a backup share. It must not panic or hang, and its
// report must agree with its error.
func FuzzSetTar(f *testing.F) {
	seed := tarSeed(f)
	for i, c := range fuzzComps {
		f.Add(uint8(i), compressSeed(f, seed, c))
		f.Add(uint8(i), compressSeed(f, seed[:700], c)) // truncated inside a member
	}
	f.Add(uint8(0), seed[:512])
	f.Add(uint8(0), make([]byte, 1024)) // end-of-archive only: no members
	f.Fuzz(func(t *testing.T, which uint8, payload []byte) {
		c := fuzzComps[int(which)%len(fuzzComps)]
		ext := map[backupset.Compression]string{backupset.CompressNone: ".tar", backupset.CompressGzip: ".tar.gz", backupset.CompressZstd: ".tar.zst"}[c]
		fsys := fstest.MapFS{
			fuzzSetName + ext:  {Data: payload},
			"pi-backup.sfdisk": {Data: fuzzSfdisk},
			"pi-backup.mbr":    {Data: append(make([]byte, 510), 0x55, 0xaa)},
			"pi-backup.img":    {Data: fatBoot()},
		}
		rep, err := Set(context.Background(), fsys, fuzzSetName, Options{})
		if rep == nil {
			t.Fatalf("Set returned no report (err %v)", err)
		}
		if (err == nil) != rep.OK() {
			t.Fatalf("Set error %v but report OK=%v (%v)", err, rep.OK(), rep.Problems)
		}
		if err != nil && !errors.Is(err, ErrFailed) {
			t.Fatalf("Set error %v does not wrap ErrFailed", err)
		}
	})
}

// TestFuzzSetTarSeeds checks that the fuzzer's set is judged on its
// payload: the whole archive verifies and a truncated one does not, in
// each compression.
func TestFuzzSetTarSeeds(t *testing.T) {
	seed := tarSeed(t)
	for _, c := range fuzzComps {
		ext := map[backupset.Compression]string{backupset.CompressNone: ".tar", backupset.CompressGzip: ".tar.gz", backupset.CompressZstd: ".tar.zst"}[c]
		for _, cut := range []bool{false, true} {
			data := seed
			if cut {
				data = seed[:700]
			}
			var b bytes.Buffer
			w, _ := compress.NewWriter(&b, c)
			w.Write(data)
			w.Close()
			fsys := fstest.MapFS{
				fuzzSetName + ext:  {Data: b.Bytes()},
				"pi-backup.sfdisk": {Data: fuzzSfdisk},
				"pi-backup.mbr":    {Data: append(make([]byte, 510), 0x55, 0xaa)},
				"pi-backup.img":    {Data: fatBoot()},
			}
			rep, err := Set(context.Background(), fsys, fuzzSetName, Options{})
			if (err == nil) == cut {
				t.Errorf("%s truncated=%v: Set = %v %v", c, cut, err, rep.Problems)
			}
		}
	}
}

// fatBoot is a FAT32 boot sector, what verify wants of a boot image.
func fatBoot() []byte {
	b := make([]byte, 1024)
	b[11], b[12], b[13] = 0, 2, 8 // 512 bytes per sector, 8 per cluster
	copy(b[82:], "FAT32   ")
	b[510], b[511] = 0x55, 0xaa
	return b
}
