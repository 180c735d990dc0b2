package testsrv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func requireRoot(t *testing.T, what, bin string) {
	t.Helper()
	req := os.Getenv("PIBACKUP_TEST_REQUIRE")
	strict := req == "all" || strings.Contains(","+req+",", ","+what+",")
	if _, err := exec.LookPath(bin); err != nil || os.Geteuid() != 0 {
		if strict {
			t.Fatalf("%s needs root and %s", what, bin)
		}
		t.Skipf("%s needs root and %s", what, bin)
	}
}

// TestSSHD checks the server with the real OpenSSH sftp client.
func TestSSHD(t *testing.T) {
	requireRoot(t, "sftp", "sshd")
	s := StartSSHD(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hello"), []byte("hi"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sftp", "-b", "-", "-i", s.KeyPath, "-o", "UserKnownHostsFile="+s.KnownHosts, "-o", "StrictHostKeyChecking=yes", "-P", strconv.Itoa(s.Port), "root@127.0.0.1")
	cmd.Stdin = strings.NewReader("ls " + dir + "\n")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "hello") {
		t.Fatalf("sftp ls: %v\n%s", err, out)
	}
	if !strings.HasPrefix(s.Fingerprint, "SHA256:") {
		t.Errorf("fingerprint %q", s.Fingerprint)
	}
}

// TestSMB checks the share with smbclient when it is installed.
func TestSMB(t *testing.T) {
	requireRoot(t, "smb", "smbd")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "hello"), []byte("hi"), 0o644)
	s := StartSMB(t, dir)
	if _, err := exec.LookPath("smbclient"); err != nil {
		t.Skip("smbclient not installed; the recovery's Go client is tested in internal/source")
	}
	out, err := exec.Command("smbclient", "//127.0.0.1/"+s.Share, "-p", strconv.Itoa(s.Port), "-U", s.User+"%"+s.Password, "-c", "ls").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "hello") {
		t.Fatalf("smbclient: %v\n%s", err, out)
	}
}

// TestNFS checks that ganesha comes up and answers on its ports.
func TestNFS(t *testing.T) {
	requireRoot(t, "nfs", "ganesha.nfsd")
	n := StartNFS(t, t.TempDir())
	if n.Port == 0 {
		t.Fatal("no port")
	}
}

// TestS3 checks that versitygw serves the bucket and keeps what it is
// given across a restart (the store tests stop it mid-upload).
func TestS3(t *testing.T) {
	s := StartS3(t)
	if err := os.WriteFile(filepath.Join(s.Dir, s.Bucket, "hello"), []byte("hi"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("curl", "-sS", "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD", "--aws-sigv4", "aws:amz:"+s.Region+":s3", "--user", s.AccessKey+":"+s.SecretKey,
		s.Endpoint+"/"+s.Bucket+"/hello").CombinedOutput()
	if err != nil || string(out) != "hi" {
		t.Fatalf("GET with curl: %v %q", err, out)
	}
}
