package verify

import (
	"archive/tar"
	"bytes"
	"testing"

	"github.com/pibackup/pibackup/internal/backupset"
)

// TestContentCheck: the check a writer runs on what it reads back is
// Set's: a tar payload's passes a tar archive and fails on other bytes;
// encrypted payloads and metadata get none, as Set checks none of them
// without keys.
func TestContentCheck(t *testing.T) {
	const set = "pi@debian12-tar-backup-20240416-094106"
	var good bytes.Buffer
	tw := tar.NewWriter(&good)
	if err := tw.WriteHeader(&tar.Header{Name: "etc/hostname", Mode: 0o644, Size: 3, Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte("pi\n"))
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	check, err := ContentCheck(set, set+".tar", 0)
	if err != nil || check == nil {
		t.Fatalf("ContentCheck of the tar payload: check %v, %v", check != nil, err)
	}
	if err := check(bytes.NewReader(good.Bytes())); err != nil {
		t.Errorf("a good archive: %v", err)
	}
	bad := bytes.Clone(good.Bytes())
	copy(bad[148:], "xxxxxxxx") // the header's checksum field
	if err := check(bytes.NewReader(bad)); err == nil {
		t.Error("an archive with a broken header passed")
	}
	for _, f := range []string{set + ".tar" + backupset.EncryptedExt, backupset.MetaFile("pi", backupset.SuffixSfdisk)} {
		if check, err := ContentCheck(set, f, 0); check != nil || err != nil {
			t.Errorf("ContentCheck(%s): a check (error %v), want none", f, err)
		}
	}
	if _, err := ContentCheck("not a set", "x.tar", 0); err == nil {
		t.Error("ContentCheck of a bad set name: no error")
	}
}
