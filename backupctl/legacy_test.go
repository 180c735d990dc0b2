package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/testfs"
)

// TestRaspiBackupTarCompressors: raspiBackup's --tarCompressionTool makes
// tar sets compressed with bzip2, xz, lzma, lzip, lzop or lz4 (the type
// stays "tar", the payload is <set>.tar.<ext>, there is no manifest).
// Each is made here the way raspiBackup makes it (tar's archive piped
// through the real tool), then listed, verified and restored by backupctl;
// the restored disk must equal the source. Before these decoders, restore
// refused them ("only gzip and zstd compression are supported").
func TestRaspiBackupTarCompressors(t *testing.T) {
	d := fixture(t)
	testfs.Require(t, "legacy-compressors")
	tarSet := backupOK(t, t.TempDir(), "-t", "tar", "--source-disk", d.Path)
	for _, c := range []struct {
		ext  string
		argv []string
	}{
		// The fastest levels: the format is the same at every level.
		{".tar.bz2", []string{"bzip2", "-c", "-1"}},
		{".tar.xz", []string{"xz", "-c", "-0", "-T2"}},
		{".tar.lzma", []string{"xz", "-c", "-0", "--format=lzma"}},
		{".tar.lz", []string{"lzip", "-c", "-0"}},
		{".tar.lzo", []string{"lzop", "-c"}},
		{".tar.lz4", []string{"lz4", "-c"}},
	} {
		t.Run(strings.TrimPrefix(c.ext, ".tar."), func(t *testing.T) {
			backups := t.TempDir()
			set := asRaspiBackupSet(t, tarSet, backups)
			payload := filepath.Join(set, filepath.Base(set)+".tar")
			in, err := os.Open(payload)
			if err != nil {
				t.Fatal(err)
			}
			out, err := os.Create(filepath.Join(set, filepath.Base(set)+c.ext))
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(c.argv[0], c.argv[1:]...)
			var stderr strings.Builder
			cmd.Stdin, cmd.Stdout, cmd.Stderr = in, out, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("%s: %v %s", c.argv[0], err, stderr.String())
			}
			in.Close()
			out.Close()
			os.Remove(payload)

			code, listOut, errOut := cli(context.Background(), "list", "--json", backups)
			if code != 0 || !strings.Contains(listOut, filepath.Base(set)) {
				t.Fatalf("list: exit %d\n%s\n%s", code, listOut, errOut)
			}
			var sets []map[string]any
			if err := json.Unmarshal([]byte(listOut), &sets); err != nil {
				t.Logf("list --json is not an array of sets (%v); checked the name only", err)
			}
			if code, vout, verr := cli(context.Background(), "verify", set); code != 0 {
				t.Fatalf("verify: exit %d\n%s\n%s", code, vout, verr)
			}
			restoreAndCompare(t, d, set)
		})
	}
}

// asRaspiBackupSet copies a backupctl set into backups/<host>/ as
// raspiBackup would have left it: the same payload and metadata files,
// without the files only backupctl writes (manifest, tree listings, run
// log).
func asRaspiBackupSet(t *testing.T, set, backups string) string {
	t.Helper()
	dir := filepath.Join(backups, "testpi")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, filepath.Base(set))
	runTool(t, "cp", "-a", "--sparse=always", set, dst)
	es, err := os.ReadDir(dst)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		n := e.Name()
		if backupset.IsOwnFile("testpi", n) && !raspiBackupMeta(n) {
			os.Remove(filepath.Join(dst, n))
		}
	}
	return dst
}

// raspiBackupMeta reports whether n is a <host>-backup.* file raspiBackup
// itself writes.
func raspiBackupMeta(n string) bool {
	for _, s := range []string{backupset.SuffixBootImage, backupset.SuffixBootTar, backupset.SuffixSfdisk, backupset.SuffixMBR,
		backupset.SuffixBlkid, backupset.SuffixParted, backupset.SuffixFdisk} {
		if n == "testpi"+s {
			return true
		}
	}
	return false
}
