//go:build !race

package qemutests

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/store"
	"github.com/pibackup/pibackup/internal/testsrv"
)

// TestRestoreS3 is issue 19's end to end: backupctl backs the fixture up
// as a tgz set encrypted with age straight into a real S3 server
// (versitygw; no mount, the engine's manifest-last protocol), and the
// recovery restores it unattended — the S3 secret key and the age
// identity from recovery.conf — and the restored disk boots.
func TestRestoreS3(t *testing.T) {
	a := requireArtifacts(t)
	c := &stagedCase{work: t.TempDir()}
	c.fx = fixture(t, a, c.work)
	s := testsrv.StartS3(t)
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(c.work, "s3-secret")
	if err := os.WriteFile(keyFile, []byte(s.SecretKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, a.backupctl, "backup", "-t", "tgz", "--source-disk", c.fx.Path,
		"--encrypt-to", id.Recipient().String(),
		"--s3-endpoint", s.Endpoint, "--s3-region", s.Region, "--s3-access-key", s.AccessKey,
		"--s3-secret-key-file", keyFile, "--s3-path-style",
		"s3://"+s.Bucket+"/sets")
	noPlaintextInBucket(t, s)

	c.url = fmt.Sprintf("s3://%s@%s/sets?endpoint=http://10.0.2.2:%d", s.AccessKey, s.Bucket, s.Port)
	c.conf = []string{"password=" + s.SecretKey, "age_identity=" + id.String()}
	c.rec = recoveryImage(t, a, c.work, c.conf)
	c.target = filepath.Join(c.work, "target.img")
	fi, _ := os.Stat(c.fx.Path)
	mkImage(t, c.target, fi.Size()*3/2)
	res := bootRecovery(t, a, c.work, c.rec, c.target, c.drives, c.unattended()...)
	if res.Error != "" || !res.Verified {
		t.Fatalf("restore in the guest: %+v", res)
	}
	judge(t, c.fx, c.target)
	bootRestored(t, a, c.work, c.target)
}

// noPlaintextInBucket reads the set back through the S3 store: one
// complete set whose payloads are age files, none holding what a plain
// payload holds (a tar header, a FAT boot sector).
func noPlaintextInBucket(t *testing.T, s *testsrv.S3) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, "s3://"+s.Bucket+"/sets", store.Options{S3: store.S3Options{
		Endpoint: s.Endpoint, Region: s.Region, AccessKey: s.AccessKey, SecretKey: s.SecretKey, PathStyle: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	l, err := backupset.ListOptions{ManifestLast: true}.List(st.FS(), ".")
	if err != nil || len(l.Sets) != 1 || !l.Sets[0].HasManifest {
		t.Fatalf("sets in the bucket: %+v %v, want one complete set", l, err)
	}
	set := l.Sets[0]
	if len(set.Payload) == 0 {
		t.Fatalf("set %s lists no payload", set.Dir)
	}
	for _, p := range set.Payload {
		if !strings.HasSuffix(p, ".age") {
			t.Errorf("payload %s is not encrypted", p)
		}
		b, err := fs.ReadFile(st.FS(), set.Dir+"/"+p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte("age-encryption.org/v1\n")) {
			t.Errorf("payload %s has no age header", p)
		}
		// Markers long enough not to turn up in random bytes by chance
		// (a 3-byte gzip magic does in one of three 5 MB payloads; that
		// the file starts with the age header says it is no gzip file).
		for _, plain := range []string{"ustar\x0000", "ustar  \x00", "FAT32   ", "FAT16   "} {
			if bytes.Contains(b, []byte(plain)) {
				t.Errorf("payload %s holds %q in plain text", p, plain)
			}
		}
	}
}
