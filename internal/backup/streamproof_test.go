package backup

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/payload"
	"github.com/pibackup/pibackup/internal/testfs"
	"github.com/pibackup/pibackup/internal/verify"
)

var shared = testfs.SharedDisk{Prefix: "backup-fixture-", Opts: testfs.DiskOptions{Hostname: "testpi"}}

func TestMain(m *testing.M) {
	code := m.Run()
	shared.Remove()
	os.Exit(code)
}

// readBackRun backs up the shared Pi disk into a new folder as
// backuprun does (verify.ContentCheck, verify.Set with the proofs
// before the commit) and returns the folder, the verify report (nil if
// the run did not get that far) and the run's error. corrupt, if set,
// is the test hook between writeback and read.
func readBackRun(t *testing.T, typ backupset.Type, comp backupset.Compression, seal *payload.Sealer, corrupt func(path string, off, n int64) error) (string, *verify.Report, error) {
	t.Helper()
	return provenRun(t, Options{Type: typ, Compression: comp, Encrypt: seal}, Deps{afterWriteback: corrupt})
}

// provenRun backs up the shared Pi disk with o into a new folder, with
// deps' test hooks and the checks backuprun passes (verify.ContentCheck,
// verify.ImageCheck, verify.Set with the proofs before the commit). It
// returns the folder, the verify report (nil if the run did not get that
// far) and the run's error.
func provenRun(t *testing.T, o Options, deps Deps) (string, *verify.Report, error) {
	t.Helper()
	o.Target, o.SourceDisk = t.TempDir(), shared.Get(t).Path
	var rep *verify.Report
	deps.ContentCheck, deps.ImageCheck = verify.ContentCheck, verify.ImageCheck
	deps.BeforeCommit = func(ctx context.Context, set Staged) error {
		var err error
		rep, err = verify.Set(ctx, set.FS, set.Name, verify.Options{LocalDir: set.LocalDir, Proofs: set.Proofs})
		return err
	}
	_, err := Run(context.Background(), o, deps)
	return o.Target, rep, err
}

// sets lists the set folders under target.
func sets(t *testing.T, target string) []string {
	t.Helper()
	var names []string
	hosts, err := os.ReadDir(target)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hosts {
		es, err := os.ReadDir(filepath.Join(target, h.Name()))
		if err != nil {
			continue
		}
		for _, e := range es {
			if !e.IsDir() {
				continue // the lock
			}
			names = append(names, filepath.Join(h.Name(), e.Name()))
		}
	}
	return names
}

// sealer encrypts to a new age key.
func sealer(t *testing.T) *payload.Sealer {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	s, err := payload.NewSealer([]string{id.Recipient().String()}, "")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestReadBackWhileWriting: a tar, a tar.zst and an encrypted set in a local folder
// have their payload read back from the disk while it is written: the
// verify before the commit says so and does not read it again, and the
// set is committed. A corruption of the payload between its writeback
// and its read-back (the test hook; TestFollowReadsTheDisk in
// internal/readback does it on the block device) fails the run with an
// error naming the file, and no set is committed. In a tar written by
// GNU tar itself the tar check is what sees a changed header, in a
// tar.zst GNU tar wrote through the zstd program the decompression (the
// frame's checksum); in a stream backupctl writes, the bytes are
// compared with those written.
func TestReadBackWhileWriting(t *testing.T) {
	zstdWant := "bytes 0 to " // the Go encoder, through backupctl
	if _, ok := zstdForTar(); ok {
		zstdWant = "content check: "
	}
	for _, c := range []struct {
		name string
		comp backupset.Compression
		ext  string
		at   int64  // where the corruption goes: a tar header, or anywhere
		want string // what the error says
		seal *payload.Sealer
		// noZstd: the zstd program is not installed, the Go encoder
		// writes through backupctl
		noZstd bool
	}{
		{"tar", backupset.CompressNone, ".tar", 0, "content check: tar archive", nil, false},
		{"tar.zst", backupset.CompressZstd, ".tar.zst", 5000, zstdWant, nil, false},
		{"tar.zst, no zstd program", backupset.CompressZstd, ".tar.zst", 5000, "bytes 0 to ", nil, true},
		// Encrypted: the ciphertext as stored is compared, as verify
		// hashes it without keys.
		{"tar.zst.age", backupset.CompressZstd, ".tar.zst.age", 5000, "bytes 0 to ", sealer(t), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.noZstd {
				pathWithout(t, "zstd")
			}
			target, rep, err := readBackRun(t, backupset.TypeTar, c.comp, c.seal, nil)
			if err != nil {
				t.Fatalf("backup: %v", err)
			}
			var payload string
			for _, s := range rep.Checked {
				if strings.Contains(s, c.ext+" (") {
					payload = s
				}
			}
			if !strings.Contains(payload, "read back from the disk while written") {
				t.Errorf("the verify report does not say the payload was read back while written: %q", rep.Checked)
			}
			if n := len(sets(t, target)); n != 1 {
				t.Errorf("%d sets committed, want 1: %q", n, sets(t, target))
			}

			hit := false
			target, _, err = readBackRun(t, backupset.TypeTar, c.comp, c.seal, func(path string, off, n int64) error {
				if !strings.HasSuffix(path, c.ext) || off != 0 {
					return nil
				}
				f, err := os.OpenFile(path, os.O_WRONLY, 0)
				if err != nil {
					return err
				}
				defer f.Close()
				hit = true
				_, err = f.WriteAt([]byte("changed on the way to the disk"), c.at)
				return err
			})
			if !hit {
				t.Fatalf("the hook corrupted nothing (%v)", err)
			}
			if err == nil || !strings.Contains(err.Error(), c.ext+": read back from the disk while written") || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("backup with a corrupted payload: %v, want the read-back's error naming the file", err)
			}
			t.Logf("the error: %v", err)
			if s := sets(t, target); len(s) != 0 {
				t.Errorf("sets left after the failed run: %q", s)
			}
		})
	}
}
