package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/pibackup/pibackup/internal/backuprun"
	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/s3fs"
	"github.com/pibackup/pibackup/internal/store"
	"github.com/pibackup/pibackup/internal/testfs"
	"github.com/pibackup/pibackup/internal/testsrv"
)

// listJSON runs `backupctl list --json target` and returns its sets.
func listJSON(t *testing.T, target string, extra ...string) []listEntry {
	t.Helper()
	code, out, errOut := cli(context.Background(), append(append([]string{"list", "--json"}, extra...), target)...)
	if code != 0 {
		t.Fatalf("list --json %s = exit %d\n%s%s", target, code, out, errOut)
	}
	var l []listEntry
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		t.Fatalf("list --json: %v\n%s", err, out)
	}
	return l
}

// completeSets are the names of the complete sets of a listing.
func completeSets(l []listEntry) []string {
	var out []string
	for _, e := range l {
		if !e.Incomplete {
			out = append(out, e.Set)
		}
	}
	slices.Sort(out)
	return out
}

// killMidUpload backs up into target (a path or a server's URL, whose
// folder is dir on this machine) and SIGKILLs backupctl while it writes
// the payload: the event is the payload file of the new set appearing
// in <host>/tmp/ with data in it, upon which the gate holds the
// backup's next read of the source, so the kill lands mid-write however
// fast the machine. Then `list` shows no new complete set, and the next
// run succeeds and removes the leftover.
func killMidUpload(t *testing.T, target, dir string, extra ...string) {
	signalMidUpload(t, syscall.SIGKILL, target, dir, extra...)
}

// signalMidUpload is killMidUpload with sig. SIGTERM cancels the run:
// backupctl exits 130 and has removed the partial set itself.
func signalMidUpload(t *testing.T, sig syscall.Signal, target, dir string, extra ...string) {
	d := fixture(t)
	faultBinary(t)
	code, out, errOut := cli(context.Background(), append(append([]string{"backup", "-t", "tgz", "--source-disk", d.Path}, extra...), target)...)
	if code != 0 {
		t.Fatalf("first backup: exit %d\n%s%s", code, out, errOut)
	}
	before := completeSets(listJSON(t, target, extra...))
	if len(before) != 1 {
		t.Fatalf("sets after the first backup: %q", before)
	}

	tmp := filepath.Join(dir, "testpi", backupset.TmpDir)
	gate := testfs.NewGate(t, t.TempDir(), d.Path)
	gate.Hold(func(string) bool {
		// The payload (under whatever name the store uploads it) has
		// data: not the boot image or backupctl's own files.
		sets, _ := os.ReadDir(tmp)
		for _, set := range sets {
			files, _ := os.ReadDir(filepath.Join(tmp, set.Name()))
			for _, f := range files {
				fi, err := f.Info()
				if err == nil && fi.Mode().IsRegular() && fi.Size() > 0 && !backupset.IsOwnFile("testpi", f.Name()) {
					return true
				}
			}
		}
		return false
	})
	args := append(append([]string{"backup", "-t", "tar", "--source-disk", gate.Path(d.Path), "--run-dir", t.TempDir()}, extra...), target)
	cmd, bout, done := startBin(t, args...)
	if err := gate.WaitHeld(done, 2*time.Minute); err != nil {
		gate.Release()
		<-done
		t.Fatalf("the backup was never held while it wrote its payload: %v\nbackupctl said: %s", err, bout)
	}
	signalBin(cmd, sig)
	gate.Release()
	<-done
	left := 1 // the killed run's set
	if sig == syscall.SIGTERM {
		left = 0
		if code := cmd.ProcessState.ExitCode(); code != exitCancelled || !strings.Contains(bout.String(), "cancelled") {
			t.Errorf("SIGTERM mid-upload: exit %d; want %d and a line saying it was cancelled\n%s", code, exitCancelled, bout)
		}
	}
	if es, _ := os.ReadDir(tmp); len(es) != left {
		t.Fatalf("%s holds %d sets after %v mid-write; want %d", tmp, len(es), sig, left)
	}
	l := listJSON(t, target, extra...)
	if got := completeSets(l); !slices.Equal(got, before) {
		t.Errorf("complete sets after the kill: %q; want only %q", got, before)
	}
	incomplete := 0
	for _, e := range l {
		if e.Incomplete {
			incomplete++
			if e.Verifiable != "no" {
				t.Errorf("the killed run's set is listed verifiable %q", e.Verifiable)
			}
		}
	}
	if incomplete != left {
		t.Errorf("listing after the %v has %d incomplete sets; want %d:\n%+v", sig, incomplete, left, l)
	}

	code, out, errOut = cli(context.Background(), append(append([]string{"backup", "-t", "tgz", "--source-disk", d.Path}, extra...), target)...)
	if code != 0 {
		t.Fatalf("the run after the kill: exit %d\n%s%s", code, out, errOut)
	}
	after := listJSON(t, target, extra...)
	if got := completeSets(after); len(got) != 2 || !slices.Contains(got, before[0]) {
		t.Errorf("complete sets after the next run: %q; want %s and a new one", got, before[0])
	}
	for _, e := range after {
		if e.Incomplete {
			t.Errorf("the killed run's set is still there: %s", e.Set)
		}
		if !strings.HasPrefix(e.Path, strings.TrimRight(target, "/")+"/") {
			t.Errorf("list says the set is at %s; want it under %s", e.Path, target)
		}
	}
	for _, e := range after {
		if vc, vout, verr := cli(context.Background(), append(append([]string{"verify"}, extra...), e.Path)...); vc != 0 {
			t.Errorf("verify %s: exit %d\n%s%s", e.Path, vc, vout, verr)
		}
	}
	if es, _ := os.ReadDir(tmp); len(es) != 0 {
		t.Errorf("%s is not empty after the next run: %v", tmp, es)
	}
}

// TestBackupKilledUploadLocal: a killed run into a local folder.
func TestBackupKilledUploadLocal(t *testing.T) {
	dir := t.TempDir()
	killMidUpload(t, dir, dir)
}

// startSSHD starts a real OpenSSH sshd on 127.0.0.1 and returns it with
// the flags that reach it; an ssh-agent of the environment is hidden.
func startSSHD(t *testing.T) (*testsrv.SSHD, []string) {
	t.Helper()
	testfs.Require(t, "sftp")
	t.Setenv("SSH_AUTH_SOCK", "")
	s := testsrv.StartSSHD(t)
	return s, []string{"--ssh-identity", s.KeyPath, "--ssh-known-hosts", s.KnownHosts}
}

func sftpURL(s *testsrv.SSHD, dir string) string {
	return fmt.Sprintf("sftp://%s@127.0.0.1:%d%s", s.User, s.Port, dir)
}

// TestBackupKilledUploadSFTP: a killed upload to an SFTP server, and
// one cancelled with SIGTERM.
func TestBackupKilledUploadSFTP(t *testing.T) {
	s, flags := startSSHD(t)
	t.Run("SIGKILL", func(t *testing.T) {
		dir := t.TempDir()
		killMidUpload(t, sftpURL(s, dir), dir, flags...)
	})
	t.Run("SIGTERM", func(t *testing.T) {
		dir := t.TempDir()
		signalMidUpload(t, syscall.SIGTERM, sftpURL(s, dir), dir, flags...)
	})
}

// TestBackupDirAsURL drives every command that takes BACKUPDIR as a URL
// (a file:// URL, which store.Open opens like a path, so the URL code
// of the commands runs without a server): backup, list --json, verify
// URL/HOST/SET, status, retention and restore from URL/HOST/SET onto
// an image judged against the source disk.
func TestBackupDirAsURL(t *testing.T) {
	d := fixture(t)
	dir := t.TempDir()
	u := "file://" + dir
	for range 2 {
		if code, out, errOut := cli(context.Background(), "backup", "-t", "tgz", "--source-disk", d.Path, u); code != 0 {
			t.Fatalf("backup %s: exit %d\n%s%s", u, code, out, errOut)
		}
	}
	l := listJSON(t, u)
	if len(completeSets(l)) != 2 {
		t.Fatalf("list --json %s: %+v", u, l)
	}
	for _, e := range l {
		if want := u + "/testpi/" + e.Set; e.Path != want || e.Verifiable != "checksums" {
			t.Errorf("list entry %+v; want path %s, verifiable checksums", e, want)
		}
		if code, out, errOut := cli(context.Background(), "verify", e.Path); code != 0 || !strings.Contains(out, "OK") {
			t.Errorf("verify %s: exit %d\n%s%s", e.Path, code, out, errOut)
		}
	}
	if code, out, errOut := cli(context.Background(), "status", u); code != 0 || !strings.Contains(out, "testpi") {
		t.Errorf("status %s: exit %d\n%s%s", u, code, out, errOut)
	}
	restoreAndCompare(t, d, l[0].Path)
	st, err := readHostState(filepath.Join(dir, "testpi"))
	if err != nil || st.LastRestoreTest == nil || st.LastRestoreTest.Set != l[0].Set {
		t.Errorf("restore from %s was not recorded: %+v %v", l[0].Path, st.LastRestoreTest, err)
	}
	// restore-test picks the newest set of the folder the URL names.
	code, out, errOut := cli(context.Background(), "restore-test", "--work-dir", t.TempDir(), u)
	if code != 0 || !strings.Contains(out, "passed") {
		t.Errorf("restore-test %s: exit %d\n%s%s", u, code, out, errOut)
	}
	if st, err := readHostState(filepath.Join(dir, "testpi")); err != nil || st.LastRestoreTest == nil || st.LastRestoreTest.How != "backupctl restore-test" {
		t.Errorf("restore-test of %s was not recorded: %+v %v", u, st.LastRestoreTest, err)
	}
	if code, out, errOut := cli(context.Background(), "retention", "--keep", "1", u); code != 0 {
		t.Fatalf("retention %s: exit %d\n%s%s", u, code, out, errOut)
	}
	if got := completeSets(listJSON(t, u)); len(got) != 1 || got[0] != l[0].Set {
		t.Errorf("sets after retention --keep 1: %q; want %s", got, l[0].Set)
	}
	if code, _, errOut := cli(context.Background(), "verify", u+"/testpi/not-a-set"); code != exitUsage {
		t.Errorf("verify of a URL that names no set: exit %d %s; want %d", code, errOut, exitUsage)
	}
}

// TestReadCommandsURLRedacted: mount, extract and diff take a set on a
// server; one that cannot be reached fails with its URL named but not
// its password.
func TestReadCommandsURLRedacted(t *testing.T) {
	u := "sftp://backup:secret@nas.invalid/srv/pi-backups/pi/pi@debian12-tgz-backup-20261125-031500"
	for _, args := range [][]string{
		{"mount", u, t.TempDir()},
		{"extract", u, "/etc/fstab", "--to", t.TempDir()},
		{"diff", u, u},
	} {
		code, _, errOut := cli(context.Background(), args...)
		if code == 0 || !strings.Contains(errOut, "nas.invalid") || strings.Contains(errOut, "secret") {
			t.Errorf("%s of an unreachable URL: exit %d\n%s\nwant an error naming the server, no password", args[0], code, errOut)
		}
	}
}

// TestBackupSFTP backs up every type an SFTP server takes straight to a
// real OpenSSH server, lists, verifies and restores each set from its
// URL (the restored disk judged against the source), and checks the
// set on the server's disk against its manifest. rsync is refused with
// advice before anything is written.
func TestBackupSFTP(t *testing.T) {
	d := fixture(t)
	s, flags := startSSHD(t)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"dd", []string{"-t", "dd"}},
		{"ddz", []string{"-t", "ddz"}},
		{"dd-zstd", []string{"-t", "dd", "-z", "zstd"}},
		{"tar", []string{"-t", "tar"}},
		{"tgz", []string{"-t", "tgz"}},
		{"tar-zstd-boot-tar", []string{"-t", "tar", "-z", "zstd", "--boot-tar"}},
		{"tar-P", []string{"-t", "tar", "-P", "*"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			u := sftpURL(s, dir)
			args := append(append(append([]string{"backup", "--source-disk", d.Path}, tc.args...), flags...), u)
			start := time.Now()
			if code, out, errOut := cli(context.Background(), args...); code != 0 {
				t.Fatalf("backup %s: exit %d\n%s%s", tc.name, code, out, errOut)
			}
			t.Logf("backup over SFTP took %v", time.Since(start).Round(time.Millisecond))
			l := listJSON(t, u, flags...)
			if len(l) != 1 || l[0].Incomplete || l[0].Verifiable != "checksums" || l[0].Path != u+"/testpi/"+l[0].Set {
				t.Fatalf("list --json %s: %+v", u, l)
			}
			setDir := filepath.Join(dir, "testpi", l[0].Set)
			readManifest(t, setDir)
			if b, err := os.ReadFile(filepath.Join(setDir, backupset.RunLogName("testpi"))); err != nil || !strings.Contains(string(b), "new set verified") {
				t.Errorf("run log in the set on the server: %v\n%s", err, b)
			}
			if st, err := readHostState(filepath.Join(dir, "testpi")); err != nil || st.LastRun == nil || !st.LastRun.OK || st.LastRun.Set != l[0].Set {
				t.Errorf("state file on the server: %+v %v", st.LastRun, err)
			}
			if _, err := os.Stat(filepath.Join(dir, "testpi", backupset.TmpDir)); !os.IsNotExist(err) {
				t.Errorf("tmp/ left on the server: %v", err)
			}
			if code, out, errOut := cli(context.Background(), append(append([]string{"verify"}, flags...), l[0].Path)...); code != 0 || !strings.Contains(out, "OK") {
				t.Errorf("verify %s: exit %d\n%s%s", l[0].Path, code, out, errOut)
			}
			restoreAndCompare(t, d, l[0].Path, flags...)
			if tc.name == "tgz" {
				args := append(append([]string{"restore-test", "--work-dir", t.TempDir()}, flags...), l[0].Path)
				if code, out, errOut := cli(context.Background(), args...); code != 0 || !strings.Contains(out, "passed") {
					t.Errorf("restore-test %s: exit %d\n%s%s", l[0].Path, code, out, errOut)
				}
			}
		})
	}
	t.Run("failed-run", func(t *testing.T) {
		dir := t.TempDir()
		args := append(append([]string{"backup", "-t", "tgz", "--source-disk", d.Path, "--hook-pre-backup", "sh -c 'echo dump failed >&2; exit 1'"}, flags...), sftpURL(s, dir))
		if code, _, errOut := cli(context.Background(), args...); code != exitPreflight {
			t.Fatalf("backup with a failing pre-backup hook: exit %d %s; want %d", code, errOut, exitPreflight)
		}
		if b, err := os.ReadFile(filepath.Join(dir, "testpi", backuprun.FailedLogName)); err != nil || !strings.Contains(string(b), "dump failed") {
			t.Errorf("failed run's log on the server: %v\n%s", err, b)
		}
		if st, err := readHostState(filepath.Join(dir, "testpi")); err != nil || st.LastRun == nil || st.LastRun.OK {
			t.Errorf("state file on the server after a failed run: %+v %v", st.LastRun, err)
		}
		if l := listJSON(t, sftpURL(s, dir), flags...); len(l) != 0 {
			t.Errorf("sets after a failed run: %+v", l)
		}
	})
	t.Run("retention-status", func(t *testing.T) {
		dir := t.TempDir()
		u := sftpURL(s, dir)
		backup := append(append([]string{"backup", "-t", "tgz", "--keep", "1", "--source-disk", d.Path}, flags...), u)
		var sets []string
		for range 2 {
			if code, out, errOut := cli(context.Background(), backup...); code != 0 {
				t.Fatalf("backup: exit %d\n%s%s", code, out, errOut)
			}
			sets = completeSets(listJSON(t, u, flags...))
		}
		if len(sets) != 1 {
			t.Errorf("sets after two runs with keep 1: %q", sets)
		}
		if _, err := os.Stat(filepath.Join(dir, "testpi", backupset.TmpDir)); !os.IsNotExist(err) {
			t.Errorf("tmp/ left on the server after retention: %v", err)
		}
		code, out, errOut := cli(context.Background(), append(append([]string{"status"}, flags...), u)...)
		if code != 0 || !strings.Contains(out, "testpi") || !strings.Contains(out, sets[0]) {
			t.Errorf("status %s: exit %d\n%s%s", u, code, out, errOut)
		}
	})
	t.Run("rsync-refused", func(t *testing.T) {
		dir := t.TempDir()
		code, _, errOut := cli(context.Background(), append(append([]string{"backup", "-t", "rsync", "--source-disk", d.Path}, flags...), sftpURL(s, dir))...)
		if code != exitPreflight || !strings.Contains(errOut, "tgz") || !strings.Contains(errOut, "mount") {
			t.Errorf("rsync to SFTP: exit %d %s; want %d with advice", code, errOut, exitPreflight)
		}
		if es, _ := os.ReadDir(dir); len(es) != 0 {
			t.Errorf("the refused run wrote %v", es)
		}
	})
}

// TestBackupSMB backs up to a real Samba share with the password from
// smb-password-file, lists, verifies and restores from the URL, and
// kills an upload to it.
func TestBackupSMB(t *testing.T) {
	d := fixture(t)
	testfs.Require(t, "smb")
	share := t.TempDir()
	s := testsrv.StartSMB(t, share)
	pw := filepath.Join(t.TempDir(), "smb-password")
	if err := os.WriteFile(pw, []byte(s.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	flags := []string{"--smb-password-file", pw}
	url := func(sub string) string {
		return fmt.Sprintf("smb://%s@127.0.0.1:%d/%s/%s", s.User, s.Port, s.Share, sub)
	}
	// Every type a share holds (rsync needs a filesystem: refused on
	// every server, tested over SFTP).
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"dd", []string{"-t", "dd"}},
		{"ddz", []string{"-t", "ddz"}},
		{"tar", []string{"-t", "tar"}},
		{"tgz", []string{"-t", "tgz"}},
		{"tgz-P", []string{"-t", "tgz", "-P", "*"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.Mkdir(filepath.Join(share, tc.name), 0o700); err != nil {
				t.Fatal(err)
			}
			u := url(tc.name)
			if code, out, errOut := cli(context.Background(), append(append(append([]string{"backup", "--source-disk", d.Path}, tc.args...), flags...), u)...); code != 0 {
				t.Fatalf("backup to %s: exit %d\n%s%s", u, code, out, errOut)
			}
			l := listJSON(t, u, flags...)
			if len(l) != 1 || l[0].Incomplete || l[0].Verifiable != "checksums" {
				t.Fatalf("list --json %s: %+v", u, l)
			}
			readManifest(t, filepath.Join(share, tc.name, "testpi", l[0].Set))
			if code, out, errOut := cli(context.Background(), append(append([]string{"verify"}, flags...), l[0].Path)...); code != 0 {
				t.Errorf("verify %s: exit %d\n%s%s", l[0].Path, code, out, errOut)
			}
			restoreAndCompare(t, d, l[0].Path, flags...)
		})
	}
	t.Run("killed", func(t *testing.T) {
		if err := os.Mkdir(filepath.Join(share, "killed"), 0o700); err != nil {
			t.Fatal(err)
		}
		killMidUpload(t, url("killed"), filepath.Join(share, "killed"), flags...)
	})
}

// TestBackupS3: backups straight into a bucket of a real S3 server
// (versitygw), listed, verified and restored from the URL, with the
// secret key from s3.secret-key-file; a set is made visible by its
// manifest, written last.
func TestBackupS3(t *testing.T) {
	d := fixture(t)
	s := testsrv.StartS3(t)
	key := filepath.Join(t.TempDir(), "s3.key")
	if err := os.WriteFile(key, []byte(s.SecretKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	flags := []string{"--s3-endpoint", s.Endpoint, "--s3-access-key", s.AccessKey, "--s3-secret-key-file", key, "--s3-path-style"}
	for _, typ := range []string{"tgz", "ddz", "dd", "tar"} {
		t.Run(typ, func(t *testing.T) {
			u := "s3://" + s.Bucket + "/" + typ
			if code, out, errOut := cli(context.Background(), append(append([]string{"backup", "-t", typ, "--source-disk", d.Path}, flags...), u)...); code != 0 {
				t.Fatalf("backup to %s: exit %d\n%s%s", u, code, out, errOut)
			}
			l := listJSON(t, u, flags...)
			if len(l) != 1 || l[0].Incomplete || l[0].Verifiable != "checksums" {
				t.Fatalf("list --json %s: %+v", u, l)
			}
			readManifest(t, filepath.Join(s.Dir, s.Bucket, typ, "testpi", l[0].Set))
			if code, out, errOut := cli(context.Background(), append(append([]string{"verify"}, flags...), l[0].Path)...); code != 0 {
				t.Errorf("verify %s: exit %d\n%s%s", l[0].Path, code, out, errOut)
			}
			restoreAndCompare(t, d, l[0].Path, flags...)
		})
	}
	t.Run("fleet", func(t *testing.T) {
		// Many Pis, one bucket: each writes its own host folder, one
		// list over the bucket shows every host's sets.
		u := "s3://" + s.Bucket + "/fleet"
		for _, host := range []string{"kitchen", "garage"} {
			if code, out, errOut := cli(context.Background(), append(append([]string{"backup", "-t", "tgz", "--hostname", host, "--source-disk", d.Path}, flags...), u)...); code != 0 {
				t.Fatalf("backup of %s: exit %d\n%s%s", host, code, out, errOut)
			}
		}
		hosts := map[string]int{}
		for _, e := range listJSON(t, u, flags...) {
			if !e.Incomplete && strings.HasPrefix(e.Path, u+"/") {
				hosts[e.Host]++
			}
		}
		if hosts["kitchen"] != 1 || hosts["garage"] != 1 || len(hosts) != 2 {
			t.Errorf("list --json of the bucket: complete sets per host under %s: %v; want kitchen 1, garage 1", u, hosts)
		}
	})
	t.Run("stale-upload", func(t *testing.T) {
		// A run killed in its first payload leaves only a multipart
		// upload with a part in it: no folder to list. The next run
		// aborts it.
		ctx := context.Background()
		u, _ := url.Parse("s3://" + s.Bucket + "/stale")
		st, err := store.OpenS3(ctx, u, store.S3Options{Endpoint: s.Endpoint, AccessKey: s.AccessKey, SecretKey: s.SecretKey, PathStyle: true}, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		c, err := minio.NewCore(strings.TrimPrefix(s.Endpoint, "http://"), &minio.Options{
			Creds: credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""), Region: s.Region, BucketLookup: minio.BucketLookupPath})
		if err != nil {
			t.Fatal(err)
		}
		key := "stale/testpi/testpi@debian12-tgz-backup-20260101-000000/payload.tgz"
		id, err := c.NewMultipartUpload(ctx, s.Bucket, key, minio.PutObjectOptions{})
		if err == nil {
			_, err = c.PutObjectPart(ctx, s.Bucket, key, id, 1, strings.NewReader("part one"), 8, minio.PutObjectPartOptions{})
		}
		if err != nil {
			t.Fatal(err)
		}
		if code, out, errOut := cli(ctx, append(append([]string{"backup", "-t", "tgz", "--source-disk", d.Path}, flags...), u.String())...); code != 0 {
			t.Fatalf("backup: exit %d\n%s%s", code, out, errOut)
		}
		if n, err := st.AbortStaleUploads(ctx, "."); err != nil || n != 0 {
			t.Errorf("after the next run %d unfinished uploads are left (%v); want 0", n, err)
		}
	})
	t.Run("wrong-key", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "bad.key")
		os.WriteFile(bad, []byte("not-the-key\n"), 0o600)
		code, out, errOut := cli(context.Background(), "list", "--s3-endpoint", s.Endpoint, "--s3-access-key", s.AccessKey,
			"--s3-secret-key-file", bad, "--s3-path-style", "s3://"+s.Bucket+"/tgz")
		if code == 0 || !strings.Contains(out+errOut, "refused the credentials") || strings.Contains(out+errOut, "not-the-key") {
			t.Errorf("list with a wrong secret key: exit %d\n%s%s", code, out, errOut)
		}
	})
}

// uploadsWithParts counts the unfinished multipart uploads under prefix
// whose key ends in suffix and that have at least one part on the
// server.
func uploadsWithParts(ctx context.Context, c *minio.Core, bucket, prefix, suffix string) (int, error) {
	res, err := c.ListMultipartUploads(ctx, bucket, prefix, "", "", "", 1000)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, up := range res.Uploads {
		if !strings.HasSuffix(up.Key, suffix) {
			continue
		}
		parts, err := c.ListObjectParts(ctx, bucket, up.Key, up.UploadID, 0, 10)
		if err != nil {
			return 0, err
		}
		if len(parts.ObjectParts) > 0 {
			n++
		}
	}
	return n, nil
}

// TestBackupKilledUploadS3: `backupctl backup` SIGKILLed in the middle
// of a multipart upload to a real S3 server (versitygw). The source holds
// 64 MiB of random data, so the tar payload is many 8 MiB parts; the
// event is the server listing a part of the payload's upload, upon which
// the gate holds the backup's next read of the source (with up to
// InFlight parts buffered, most of the payload is still unread, so the
// upload cannot finish). Then `list` shows no complete set, an
// unfinished upload is on the server, and the next run succeeds, aborts
// the stale upload and leaves one complete, verified set.
func TestBackupKilledUploadS3(t *testing.T) {
	src := copyFixture(t)
	faultBinary(t)
	t.Run("fill", func(t *testing.T) { // the root is unmounted when it ends
		root := mountRoot(t, src, true)
		f, err := os.Create(filepath.Join(root, "srv", "random.bin"))
		must(t, err)
		_, err = io.CopyN(f, rand.Reader, 8*s3fs.PartSize)
		must(t, err)
		must(t, f.Close())
	})
	s := testsrv.StartS3(t)
	flags := s3Flags(t, s)
	ctx := context.Background()
	c, err := minio.NewCore(strings.TrimPrefix(s.Endpoint, "http://"), &minio.Options{
		Creds: credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""), Region: s.Region, BucketLookup: minio.BucketLookupPath})
	must(t, err)
	u := "s3://" + s.Bucket + "/kill"

	gate := testfs.NewGate(t, t.TempDir(), src.Path)
	var pollErr error
	gate.Hold(func(string) bool {
		n, err := uploadsWithParts(ctx, c, s.Bucket, "kill/", ".tar")
		if err != nil {
			pollErr = err
		}
		return n > 0
	})
	args := append(append([]string{"backup", "-t", "tar", "--source-disk", gate.Path(src.Path), "--run-dir", t.TempDir()}, flags...), u)
	cmd, bout, done := startBin(t, args...)
	if err := gate.WaitHeld(done, 10*time.Minute); err != nil {
		gate.Release()
		<-done
		t.Fatalf("the backup was never held after a part of its payload was uploaded: %v (last poll error: %v)\nbackupctl said: %s", err, pollErr, bout)
	}
	signalBin(cmd, syscall.SIGKILL)
	gate.Release()
	<-done
	if code := cmd.ProcessState.ExitCode(); code != -1 {
		t.Fatalf("backupctl was not killed (exit %d); it finished before the kill\n%s", code, bout)
	}

	if n, err := uploadsWithParts(ctx, c, s.Bucket, "kill/", ".tar"); err != nil || n != 1 {
		t.Errorf("unfinished payload uploads with parts after the kill: %d (%v); want 1", n, err)
	}
	l := listJSON(t, u, flags...)
	if got := completeSets(l); len(got) != 0 {
		t.Errorf("complete sets after the kill: %q; want none", got)
	}
	for _, e := range l {
		if e.Incomplete && e.Verifiable != "no" {
			t.Errorf("the killed run's set is listed verifiable %q", e.Verifiable)
		}
	}

	code, out, errOut := cli(ctx, append(append([]string{"backup", "-t", "tar", "--source-disk", src.Path}, flags...), u)...)
	if code != 0 {
		t.Fatalf("the run after the kill: exit %d\n%s%s", code, out, errOut)
	}
	after := listJSON(t, u, flags...)
	if got := completeSets(after); len(got) != 1 || len(after) != 1 {
		t.Errorf("sets after the next run: %+v; want one complete set and nothing else", after)
	}
	if n, err := uploadsWithParts(ctx, c, s.Bucket, "kill/", ""); err != nil || n != 0 {
		t.Errorf("unfinished uploads after the next run: %d (%v); want 0 (aborted)", n, err)
	}
	for _, e := range after {
		if vc, vout, verr := cli(ctx, append(append([]string{"verify"}, flags...), e.Path)...); vc != 0 {
			t.Errorf("verify %s: exit %d\n%s%s", e.Path, vc, vout, verr)
		}
	}
}
