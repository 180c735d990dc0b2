package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/restore"
	"github.com/pibackup/pibackup/internal/testfs"
)

// copySet copies a set folder into a fresh host folder, so a test may
// damage it.
func copySet(t *testing.T, set string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "testpi")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, filepath.Base(set))
	runTool(t, "cp", "-a", "--sparse=always", set, dst)
	return dst
}

// editManifest reads a set's manifest, lets edit change it and writes it
// back (the manifest has no checksum of its own).
func editManifest(t *testing.T, set string, edit func(m *backupset.Manifest)) {
	t.Helper()
	p := testfs.ManifestPath(t, set)
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	m, err := backupset.ReadManifest(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	edit(m)
	var b bytes.Buffer
	if err := backupset.WriteManifest(&b, m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// rehash records name's current size and SHA-256 in the manifest, so only
// the checks of structure can catch what was done to it.
func rehash(t *testing.T, set, name string) {
	t.Helper()
	fi, err := os.Stat(filepath.Join(set, name))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(readFileOrFail(t, filepath.Join(set, name)))
	editManifest(t, set, func(m *backupset.Manifest) {
		for i := range m.Files {
			if m.Files[i].Path == name {
				m.Files[i].Size, m.Files[i].SHA256 = fi.Size(), hex.EncodeToString(sum[:])
				return
			}
		}
		t.Fatalf("%s is not in the manifest", name)
	})
}

func readFileOrFail(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// editSfdisk rewrites the partition lines of a set's sfdisk dump.
func editSfdisk(t *testing.T, set string, edit func(head []string, parts []string) []string) {
	t.Helper()
	p := filepath.Join(set, backupset.MetaFile("testpi", backupset.SuffixSfdisk))
	var head, parts []string
	for _, l := range strings.Split(strings.TrimRight(string(readFileOrFail(t, p)), "\n"), "\n") {
		if strings.Contains(l, " : ") {
			parts = append(parts, l)
		} else {
			head = append(head, l)
		}
	}
	out := strings.Join(edit(head, parts), "\n") + "\n"
	if err := os.WriteFile(p, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
}

// sfdiskField replaces the value of key= (start, size, type) in an sfdisk
// partition line.
func sfdiskField(line, key, value string) string {
	re := regexp.MustCompile(`\b` + key + `=\s*[^,]+`)
	return re.ReplaceAllString(line, key+"="+value)
}

// appended returns a maker of a copy of the tgz set whose archive has
// extra members after its own, the manifest updated for it.
func appended(set string, extra func(tw *tar.Writer)) func(t *testing.T) string {
	return func(t *testing.T) string {
		return rewriteTarSet(t, set, func(tw *tar.Writer, h *tar.Header, body []byte) { writeMember(t, tw, h, body) }, extra)
	}
}

// verifyAndRestore runs verify and a restore onto a new image file and
// returns both outcomes.
func verifyAndRestore(t *testing.T, set string) (vcode int, vout string, rcode int, rerr string, img string) {
	t.Helper()
	ctx := context.Background()
	vcode, vout, _ = cli(ctx, "verify", set)
	img = filepath.Join(t.TempDir(), "t.img")
	rcode, _, rerr = cli(ctx, "restore", "--yes", set, "--to", img, "--size", "320M")
	// The error is the line main prints; GNU tar's own words may follow
	// it on lines of their own.
	line := lastLine(rerr)
	if i := strings.LastIndex(rerr, "backupctl: "); i >= 0 {
		line, _, _ = strings.Cut(rerr[i:], "\n")
	}
	return vcode, vout, rcode, line, img
}

// TestVerifyAgreesWithRestore: sets damaged so that every checksum still
// matches (the manifest's hashes recomputed) fail verify exactly where a
// restore refuses them, with the restore's own words, and a restore
// never copies such a set.
func TestVerifyAgreesWithRestore(t *testing.T) {
	d := fixture(t)
	backups := t.TempDir()
	tgz := backupOK(t, backups, "--source-disk", d.Path, "-t", "tgz")
	dd := backupOK(t, backups, "--source-disk", d.Path, "-t", "dd")
	sfdiskName := backupset.MetaFile("testpi", backupset.SuffixSfdisk)
	mbrName := backupset.MetaFile("testpi", backupset.SuffixMBR)

	// withoutManifest turns a backupctl set into a raspiBackup one.
	withoutManifest := func(t *testing.T) string {
		s := copySet(t, tgz)
		if err := os.Remove(testfs.ManifestPath(t, s)); err != nil {
			t.Fatal(err)
		}
		return s
	}
	cases := []struct {
		name string
		make func(t *testing.T) string
		want string // in restore's error and verify's output
	}{
		{"tar-escapes", appended(tgz, func(tw *tar.Writer) {
			reg := func(name string) {
				writeMember(t, tw, &tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644}, []byte("pwned\n"))
			}
			reg("./../escape")
			reg("/etc/absolute")
			writeMember(t, tw, &tar.Header{Name: "./link", Typeflag: tar.TypeSymlink, Linkname: "/tmp", Mode: 0o777}, nil)
			reg("./link/through-symlink")
		}), `tar member "./../escape"`},
		{"tar-symlink-then-child", appended(tgz, func(tw *tar.Writer) {
			writeMember(t, tw, &tar.Header{Name: "./link", Typeflag: tar.TypeSymlink, Linkname: "/tmp", Mode: 0o777}, nil)
			writeMember(t, tw, &tar.Header{Name: "./link/child", Typeflag: tar.TypeReg, Mode: 0o644}, []byte("x\n"))
		}), `tar member "./link/child" lies below "link"`},
		{"tar-absolute", appended(tgz, func(tw *tar.Writer) {
			writeMember(t, tw, &tar.Header{Name: "/etc/absolute", Typeflag: tar.TypeReg, Mode: 0o644}, []byte("x\n"))
		}), `tar member "/etc/absolute": absolute`},
		{"tar-without-end-marker", func(t *testing.T) string {
			// Cut right after a member: archive/tar alone sees a whole
			// archive, GNU tar extracts every member without complaint.
			s := appended(tgz, func(*tar.Writer) {})(t)
			payload := filepath.Join(s, filepath.Base(s)+".tgz")
			zr, err := gzip.NewReader(bytes.NewReader(readFileOrFail(t, payload)))
			if err != nil {
				t.Fatal(err)
			}
			raw, err := io.ReadAll(zr)
			if err != nil {
				t.Fatal(err)
			}
			// tar.Writer.Close ends the archive with exactly the marker,
			// two zero blocks.
			var out bytes.Buffer
			zw := gzip.NewWriter(&out)
			zw.Write(raw[:len(raw)-1024])
			zw.Close()
			if err := os.WriteFile(payload, out.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			rehash(t, s, filepath.Base(payload))
			return s
		}, "without its end-of-archive marker"},
		{"sfdisk-overlap", func(t *testing.T) string {
			s := withoutManifest(t)
			editSfdisk(t, s, func(head, parts []string) []string {
				// Partition 2 starts inside partition 1.
				return append(head, parts[0], sfdiskField(parts[1], "start", "8192"))
			})
			return s
		}, "overlap"},
		{"sfdisk-root-not-linux", func(t *testing.T) string {
			s := withoutManifest(t)
			editSfdisk(t, s, func(head, parts []string) []string {
				return append(head, parts[0], sfdiskField(parts[1], "type", "7"))
			})
			return s
		}, "cannot tell the root partition"},
		{"sfdisk-300-partitions", func(t *testing.T) string {
			s := withoutManifest(t)
			editSfdisk(t, s, func(head, parts []string) []string {
				out := append(head, parts...)
				for i := 3; i <= 300; i++ {
					out = append(out, fmt.Sprintf("/dev/mmcblk0p%d : start=%d, size=8, type=83", i, 1<<22+int64(i)*8))
				}
				return out
			})
			return s
		}, "partition 5 is a logical partition, but the table has no extended partition"},
		{"sfdisk-start-overflow", func(t *testing.T) string {
			s := withoutManifest(t)
			editSfdisk(t, s, func(head, parts []string) []string {
				return append(head, parts[0], sfdiskField(parts[1], "start", "18014398509481983"))
			})
			return s
		}, "partition 2"},
		{"dd-truncated", func(t *testing.T) string {
			s := copySet(t, dd)
			img := filepath.Join(s, filepath.Base(s)+".img")
			if err := os.Truncate(img, 100_000_000); err != nil {
				t.Fatal(err)
			}
			rehash(t, s, filepath.Base(img))
			return s
		}, "the manifest's image_size is 268435456"},
		{"mbr-random", func(t *testing.T) string {
			s := copySet(t, tgz)
			b := make([]byte, 512)
			rand.Read(b)
			b[510], b[511] = 0, 0 // random, but never by chance a signature
			if err := os.WriteFile(filepath.Join(s, mbrName), b, 0o644); err != nil {
				t.Fatal(err)
			}
			rehash(t, s, mbrName)
			return s
		}, "no MBR signature"},
		{"mbr-short", func(t *testing.T) string {
			s := copySet(t, tgz)
			b := readFileOrFail(t, filepath.Join(s, mbrName))[:100]
			if err := os.WriteFile(filepath.Join(s, mbrName), b, 0o644); err != nil {
				t.Fatal(err)
			}
			rehash(t, s, mbrName)
			return s
		}, "100 bytes"},
		{"boot-image-not-fat", func(t *testing.T) string {
			s := copySet(t, tgz)
			name := backupset.MetaFile("testpi", backupset.SuffixBootImage)
			f, err := os.OpenFile(filepath.Join(s, name), os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			// Its boot sector zeroed: the restore would copy a partition
			// no firmware can read.
			if _, err := f.WriteAt(make([]byte, 4096), 0); err != nil {
				t.Fatal(err)
			}
			f.Close()
			rehash(t, s, name)
			return s
		}, "no FAT boot sector"},
		{"sfdisk-contradicts-manifest", func(t *testing.T) string {
			s := copySet(t, tgz)
			editSfdisk(t, s, func(head, parts []string) []string {
				return append(head, parts[0], sfdiskField(parts[1], "size", "8192"))
			})
			rehash(t, s, sfdiskName)
			return s
		}, "contradicts the manifest"},
		{"manifest-type-contradicts-name", func(t *testing.T) string {
			s := copySet(t, tgz)
			editManifest(t, s, func(m *backupset.Manifest) { m.Type = backupset.TypeTar })
			return s
		}, "the folder name says testpi/tgz"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			set := c.make(t)
			vcode, vout, rcode, rerr, img := verifyAndRestore(t, set)
			t.Logf("verify: exit %d: %s", vcode, strings.TrimSpace(vout))
			t.Logf("restore: exit %d: %s", rcode, rerr)
			if vcode != exitVerify {
				t.Errorf("verify = exit %d, want %d (FAILED)", vcode, exitVerify)
			}
			if rcode == 0 {
				t.Errorf("restore = exit 0; want a refusal")
			}
			if !strings.Contains(rerr, c.want) {
				t.Errorf("restore error %q does not say %q", rerr, c.want)
			}
			// The restore's reason, word for word, is one of verify's.
			// A refusal while streaming comes with what the restore was
			// doing and what it left; the reason follows.
			reason := strings.TrimPrefix(strings.TrimPrefix(rerr, "backupctl: "), "restore: ")
			if _, after, ok := strings.Cut(reason, "run the restore again): "); ok {
				reason = strings.TrimPrefix(after, "root filesystem: ")
				reason, _, _ = strings.Cut(reason, ": "+restore.ErrDamaged.Error())
			}
			if !strings.Contains(vout, reason) {
				t.Errorf("verify output does not carry restore's reason %q:\n%s", reason, vout)
			}
			if rcode == exitPreflight {
				if _, err := os.Stat(img); err == nil {
					t.Errorf("a refusal before writing created %s", img)
				}
			}
		})
	}
}

// TestListUndecodableManifest: a set whose manifest cannot be decoded
// has no checksums anyone can check.
func TestListUndecodableManifest(t *testing.T) {
	d := fixture(t)
	set := copySet(t, backupOK(t, t.TempDir(), "--source-disk", d.Path, "-t", "tgz"))
	if err := os.WriteFile(testfs.ManifestPath(t, set), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := cli(context.Background(), "list", "--json", filepath.Dir(set))
	if code != 0 {
		t.Fatalf("list = exit %d: %s", code, errOut)
	}
	var got []listEntry
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Verifiable != "no" {
		t.Errorf("list --json = %+v; want one set, verifiable \"no\"", got)
	}
}
