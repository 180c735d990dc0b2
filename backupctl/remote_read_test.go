package main

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pibackup/pibackup/internal/testfs"
	"github.com/pibackup/pibackup/internal/testsrv"
)

// s3Flags are the flags that reach the test S3 server s.
func s3Flags(t *testing.T, s *testsrv.S3) []string {
	t.Helper()
	key := filepath.Join(t.TempDir(), "s3.key")
	must(t, os.WriteFile(key, []byte(s.SecretKey+"\n"), 0o600))
	return []string{"--s3-endpoint", s.Endpoint, "--s3-access-key", s.AccessKey, "--s3-secret-key-file", key, "--s3-path-style"}
}

// onlySet backs up into the server folder u and returns the URL of the
// one complete set there.
func onlySet(t *testing.T, u string, flags []string, args ...string) string {
	t.Helper()
	code, out, errOut := cli(context.Background(), append(append(append([]string{"backup"}, args...), flags...), u)...)
	if code != 0 {
		t.Fatalf("backup %q to %s: exit %d\n%s%s", args, u, code, out, errOut)
	}
	l := listJSON(t, u, flags...)
	if len(l) != 1 || l[0].Incomplete {
		t.Fatalf("list --json %s: %+v", u, l)
	}
	return l[0].Path
}

// cacheFiles are the files in the mount cache folder, with their sizes.
func cacheFiles(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err == nil {
			out[d.Name()] = fi.Size()
		}
		return err
	})
	must(t, err)
	return out
}

// mountAndCompare mounts set (a URL) with args, compares root/ with the
// source's root filesystem in every attribute and boot/ with its boot
// partition, and returns what mount said before it was mounted.
func mountAndCompare(t *testing.T, d *testfs.PiDisk, set, cache string, args ...string) string {
	t.Helper()
	mnt := t.TempDir()
	done, notes := mountCLINotes(t, set, mnt, append([]string{"--cache-dir", cache}, args...)...)
	diffs, err := testfs.Compare(mountRoot(t, d, false), filepath.Join(mnt, "root"), testfs.CompareOptions{Ignore: compareIgnore})
	must(t, err)
	if len(diffs) > 0 {
		t.Errorf("root/ of %s differs from the source:\n%s", set, testfs.FormatDiffs(diffs, 20))
	}
	checkBoot(t, bootFiles(t, d), filepath.Join(mnt, "boot"))
	runTool(t, "umount", mnt)
	if r := <-done; r.code != 0 {
		t.Fatalf("mount: exit %d after umount\n%s", r.code, r.out)
	}
	return notes
}

// TestMountEncryptedS3 mounts an encrypted uncompressed tar set straight
// from a real S3 server (versitygw): root/ equals the source in every
// attribute and boot/ holds the boot partition's files. The archive is
// read in place, decrypted at the offsets read: the cache gets its
// index, never a copy of the archive. The host folder's URL shows the
// set too. extract gets one file out of the set on S3 with its
// metadata.
func TestMountEncryptedS3(t *testing.T) {
	testfs.Require(t, "fuse")
	d := fixture(t)
	s := testsrv.StartS3(t)
	flags := s3Flags(t, s)
	ageID, ageRcpt := ageKeyFiles(t)
	host := "s3://" + s.Bucket + "/enc"
	set := onlySet(t, host, flags, "-t", "tar", "--encrypt-to", ageRcpt, "--source-disk", d.Path)
	open := append(slices.Clone(flags), "--age-identity", ageID)

	t.Run("mount", func(t *testing.T) {
		cache := t.TempDir()
		notes := mountAndCompare(t, d, set, cache, open...)
		if !strings.Contains(notes, "indexing") || !strings.Contains(notes, "from the server") {
			t.Errorf("mount said nothing of reading the archive from the server:\n%s", notes)
		}
		var total int64
		for name, n := range cacheFiles(t, cache) {
			total += n
			if strings.HasSuffix(name, ".tar") || strings.HasSuffix(name, ".img") {
				t.Errorf("the cache holds a copy of the payload: %s (%d bytes)", name, n)
			}
		}
		t.Logf("cache after mounting the encrypted tar from S3: %d bytes", total)
		// A second mount reads the cached index: no note.
		if notes := mountAndCompare(t, d, set, cache, open...); strings.Contains(notes, "indexing") {
			t.Errorf("the second mount indexed again:\n%s", notes)
		}
	})
	t.Run("hostdir", func(t *testing.T) {
		mnt := t.TempDir()
		done := mountCLI(t, host+"/testpi", mnt, append([]string{"--cache-dir", t.TempDir()}, open...)...)
		want, err := os.ReadFile(filepath.Join(mountRoot(t, d, false), testfs.PathFstab))
		must(t, err)
		name := set[strings.LastIndex(set, "/")+1:]
		if got, err := os.ReadFile(filepath.Join(mnt, name, "root", testfs.PathFstab)); err != nil || string(got) != string(want) {
			t.Errorf("%s/root/%s over S3: %v %q", name, testfs.PathFstab, err, got)
		}
		runTool(t, "umount", mnt)
		if r := <-done; r.code != 0 {
			t.Fatalf("mount: exit %d after umount\n%s", r.code, r.out)
		}
	})
	t.Run("extract", func(t *testing.T) {
		dest := newExt4(t, 64<<20)
		code, out, errOut := cli(context.Background(), append([]string{"extract", set, "/" + testfs.PathFstab, testfs.PathACLDir, "--to", dest}, open...)...)
		if code != 0 {
			t.Fatalf("extract from S3: exit %d\n%s%s", code, out, errOut)
		}
		src := mountRoot(t, d, false)
		for _, p := range []string{testfs.PathFstab, testfs.PathACLDir} {
			diffs, err := testfs.Compare(filepath.Join(src, p), filepath.Join(dest, p), testfs.CompareOptions{})
			must(t, err)
			if len(diffs) > 0 {
				t.Errorf("/%s extracted from S3 differs from the source:\n%s", p, testfs.FormatDiffs(diffs, 10))
			}
		}
	})
	t.Run("keys", func(t *testing.T) {
		wrongID, _ := ageKeyFiles(t)
		for _, tc := range []struct {
			name string
			key  []string
			want string
		}{
			{"missing", nil, "--age-identity"},
			{"wrong", []string{"--age-identity", wrongID}, "no identity matches"},
		} {
			for _, args := range [][]string{
				{"mount", set, t.TempDir(), "--cache-dir", t.TempDir()},
				{"extract", set, "/etc", "--to", t.TempDir()},
				{"diff", set, set},
			} {
				args = append(append(args, flags...), tc.key...)
				code, _, errOut := cli(context.Background(), args...)
				if code != exitPreflight || !strings.Contains(errOut, tc.want) {
					t.Errorf("%s with the key %s: exit %d\n%s\nwant exit %d and %q", args[0], tc.name, code, errOut, exitPreflight, tc.want)
				}
			}
		}
	})
}

// TestMountEncryptedSFTP mounts an encrypted tgz set over SFTP (a real
// OpenSSH server): decompressed into the cache once, with a line saying
// how much is read from the server; root/ and boot/ equal the source.
func TestMountEncryptedSFTP(t *testing.T) {
	testfs.Require(t, "fuse")
	d := fixture(t)
	s, flags := startSSHD(t)
	ageID, ageRcpt := ageKeyFiles(t)
	set := onlySet(t, sftpURL(s, t.TempDir()), flags, "-t", "tgz", "--encrypt-to", ageRcpt, "--source-disk", d.Path)
	cache := t.TempDir()
	notes := mountAndCompare(t, d, set, cache, append(slices.Clone(flags), "--age-identity", ageID)...)
	if !strings.Contains(notes, "indexing") || !strings.Contains(notes, "MiB to read from the server") {
		t.Errorf("mount said nothing of what it fetches:\n%s", notes)
	}
	tars := 0
	for name := range cacheFiles(t, cache) {
		if strings.HasSuffix(name, ".tar") {
			tars++
		}
	}
	if tars != 1 {
		t.Errorf("the cache holds %d decompressed archives; want 1: %v", tars, cacheFiles(t, cache))
	}
}

// TestDiffSFTP makes two encrypted tgz sets on an SFTP server around
// four changes to the source and diffs them by their URLs.
func TestDiffSFTP(t *testing.T) {
	src := copyFixture(t)
	s, flags := startSSHD(t)
	ageID, ageRcpt := ageKeyFiles(t)
	u := sftpURL(s, t.TempDir())
	backup := func() string {
		before := listJSON(t, u, flags...)
		code, out, errOut := cli(context.Background(), append(append([]string{"backup", "-t", "tgz", "--encrypt-to", ageRcpt, "--source-disk", src.Path}, flags...), u)...)
		if code != 0 {
			t.Fatalf("backup: exit %d\n%s%s", code, out, errOut)
		}
		for _, e := range listJSON(t, u, flags...) {
			if !slices.ContainsFunc(before, func(b listEntry) bool { return b.Set == e.Set }) {
				return e.Path
			}
		}
		t.Fatal("no new set")
		return ""
	}
	before := backup()
	changeSource(t, src)
	after := backup()
	code, out, errOut := cli(context.Background(), append([]string{"diff", before, after, "--age-identity", ageID}, flags...)...)
	if code != 0 {
		t.Fatalf("diff over SFTP: exit %d\n%s%s", code, out, errOut)
	}
	checkFourChanges(t, "over SFTP", out)
}
