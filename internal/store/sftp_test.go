package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pibackup/pibackup/internal/source"
	"github.com/pibackup/pibackup/internal/store"
	"github.com/pibackup/pibackup/internal/testfs"
	"github.com/pibackup/pibackup/internal/testsrv"
)

// startSSHD starts a real OpenSSH sshd (about a second) and hides any
// ssh-agent of the environment, so each test says which auth it means.
func startSSHD(t testing.TB) *testsrv.SSHD {
	t.Helper()
	testfs.Require(t, "sftp")
	t.Setenv("SSH_AUTH_SOCK", "")
	return testsrv.StartSSHD(t)
}

func sftpURL(s *testsrv.SSHD, dir string) string {
	return fmt.Sprintf("sftp://%s@127.0.0.1:%d%s", s.User, s.Port, dir)
}

func openSFTP(t testing.TB, s *testsrv.SSHD, dir string) store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), sftpURL(s, dir), store.Options{SSHIdentity: s.KeyPath, SSHKnownHosts: s.KnownHosts})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestSFTP(t *testing.T) {
	s := startSSHD(t)
	dir := t.TempDir()
	runRemote(t, openSFTP(t, s, dir), sftpURL(s, dir), dir)
}

func TestSFTPHostKey(t *testing.T) {
	s := startSSHD(t)
	dir := t.TempDir()
	u := sftpURL(s, dir)
	open := func(knownHosts string) error {
		return tryOpen(u, store.Options{SSHIdentity: s.KeyPath, SSHKnownHosts: knownHosts})
	}
	pin := fmt.Sprintf("ssh-keyscan -p %d 127.0.0.1 >> ", s.Port)
	_, otherPub := newKey(t, "ed25519")
	_, ecdsaPub := newKey(t, "ecdsa")
	hostPub := strings.Join(strings.Fields(s.HostKeyPub)[:2], " ")

	for _, tc := range []struct {
		name, content string // of the known_hosts file; "-" for no file
		want          error
	}{
		{"no file", "-", &source.HostKeyError{}},
		{"empty file", "", &source.HostKeyError{}},
		{"other host only", fmt.Sprintf("[127.0.0.1]:%d %s\n", s.Port+1, hostPub), &source.HostKeyError{}},
		{"other port's entry is not this one", "127.0.0.1 " + hostPub + "\n", &source.HostKeyError{}},
		{"wrong key", fmt.Sprintf("[127.0.0.1]:%d %s", s.Port, otherPub), source.ErrHostKeyMismatch},
		{"wrong key of another type", fmt.Sprintf("[127.0.0.1]:%d %s", s.Port, ecdsaPub), source.ErrHostKeyMismatch},
		{"pinned", "", nil},
		{"pinned among others", fmt.Sprintf("# comment\nnas %s[127.0.0.1]:%d %s\n", otherPub, s.Port, hostPub), nil},
		{"hashed", "hash", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kh := filepath.Join(t.TempDir(), "known_hosts")
			switch {
			case tc.name == "pinned":
				kh = s.KnownHosts
			case tc.content == "hash":
				b, err := os.ReadFile(s.KnownHosts)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(kh, b, 0o644); err != nil {
					t.Fatal(err)
				}
				if out, err := exec.Command("ssh-keygen", "-H", "-f", kh).CombinedOutput(); err != nil {
					t.Fatalf("ssh-keygen -H: %v %s", err, out)
				}
				if b, _ := os.ReadFile(kh); bytes.Contains(b, []byte("127.0.0.1")) {
					t.Fatalf("known_hosts not hashed: %s", b)
				}
			case tc.content != "-":
				if err := os.WriteFile(kh, []byte(tc.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			before := authAttempts(t, s)
			err := open(kh)
			t.Log(err)
			if tc.want != nil && authAttempts(t, s) != before {
				t.Errorf("the client tried to log on with an unpinned host key")
			}
			switch want := tc.want.(type) {
			case nil:
				if err != nil {
					t.Fatal(err)
				}
				return
			case *source.HostKeyError:
				var hk *source.HostKeyError
				if !errors.As(err, &hk) || hk.Fingerprint != s.Fingerprint {
					t.Fatalf("Open() = %v; want a HostKeyError with %s", err, s.Fingerprint)
				}
			default:
				if !errors.Is(err, want) {
					t.Fatalf("Open() = %v; want %v", err, want)
				}
				if !strings.Contains(err.Error(), "ssh-keygen -R") {
					t.Errorf("no advice on removing the old key: %v", err)
				}
			}
			if !strings.Contains(err.Error(), s.Fingerprint) || !strings.Contains(err.Error(), pin+kh) {
				t.Errorf("error without the fingerprint %s and %q: %v", s.Fingerprint, pin+kh, err)
			}
		})
	}
	// The advice works: the line it gives pins the key.
	t.Run("keyscan", func(t *testing.T) {
		kh := filepath.Join(t.TempDir(), "known_hosts")
		err := open(kh)
		_, cmd, ok := strings.Cut(err.Error(), "pin it with: ")
		if !ok {
			t.Fatalf("no advice: %v", err)
		}
		if out, err := exec.Command("sh", "-c", cmd).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v %s", cmd, err, out)
		}
		if err := open(kh); err != nil {
			t.Fatalf("after %s: %v", cmd, err)
		}
	})
}

func TestSFTPAuth(t *testing.T) {
	s := startSSHD(t)
	dir := t.TempDir()
	u := sftpURL(s, dir)
	other, _ := newKey(t, "ed25519")
	locked := filepath.Join(t.TempDir(), "locked")
	if err := exec.Command("cp", s.KeyPath, locked).Run(); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ssh-keygen", "-q", "-p", "-N", "pass-phrase", "-f", locked).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -p: %v %s", err, out)
	}
	open := func(o store.Options) error {
		o.SSHKnownHosts = s.KnownHosts
		return tryOpen(u, o)
	}

	t.Run("wrong key", func(t *testing.T) {
		if err := open(store.Options{SSHIdentity: other}); !errors.Is(err, source.ErrAuth) {
			t.Fatalf("Open() = %v; want ErrAuth", err)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		err := open(store.Options{Password: "wrong-pw"})
		if !errors.Is(err, source.ErrAuth) {
			t.Fatalf("Open() = %v; want ErrAuth", err)
		}
		if strings.Contains(err.Error(), "wrong-pw") {
			t.Errorf("error shows the password: %v", err)
		}
	})
	t.Run("nothing to log on with", func(t *testing.T) {
		if err := open(store.Options{}); !errors.Is(err, source.ErrAuth) || !strings.Contains(err.Error(), "ssh-identity") {
			t.Fatalf("Open() = %v; want ErrAuth with advice", err)
		}
	})
	t.Run("key with a passphrase", func(t *testing.T) {
		if err := open(store.Options{SSHIdentity: locked}); err == nil || !strings.Contains(err.Error(), "ssh-add") {
			t.Fatalf("Open() = %v; want advice to use ssh-agent", err)
		}
	})
	t.Run("missing key file", func(t *testing.T) {
		if err := open(store.Options{SSHIdentity: other + ".nope"}); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Open() = %v; want fs.ErrNotExist", err)
		}
	})
	t.Run("missing folder", func(t *testing.T) {
		err := tryOpen(u+"/nope", store.Options{SSHIdentity: s.KeyPath, SSHKnownHosts: s.KnownHosts})
		if !errors.Is(err, source.ErrNotFound) {
			t.Fatalf("Open() = %v; want ErrNotFound", err)
		}
	})
	t.Run("agent", func(t *testing.T) {
		sock := startAgent(t)
		if err := open(store.Options{}); !errors.Is(err, source.ErrAuth) {
			t.Fatalf("Open() with an empty agent = %v; want ErrAuth", err)
		}
		add := exec.Command("ssh-add", s.KeyPath)
		add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
		if out, err := add.CombinedOutput(); err != nil {
			t.Fatalf("ssh-add: %v %s", err, out)
		}
		if err := open(store.Options{}); err != nil {
			t.Fatalf("Open() with the key in the agent: %v", err)
		}
	})
}

// authAttempts counts the logons sshd logged, failed or not.
func authAttempts(t *testing.T, s *testsrv.SSHD) int {
	t.Helper()
	b, err := os.ReadFile(s.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	return len(regexp.MustCompile(`(?m)(Accepted|Failed|Postponed) (publickey|password|keyboard-interactive)`).FindAll(b, -1))
}

// newKey makes a key pair of type typ and returns the private key file
// and the public key line.
func newKey(t *testing.T, typ string) (file, pub string) {
	t.Helper()
	file = filepath.Join(t.TempDir(), typ)
	if out, err := exec.Command("ssh-keygen", "-q", "-t", typ, "-N", "", "-f", file).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	b, err := os.ReadFile(file + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return file, string(b)
}

// startAgent runs ssh-agent on a socket of its own and points
// SSH_AUTH_SOCK at it for the test.
func startAgent(t *testing.T) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "agent.sock")
	cmd := exec.Command("ssh-agent", "-D", "-a", sock)
	if err := cmd.Start(); err != nil {
		t.Fatalf("ssh-agent: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// ssh-agent -D listens before it forks nothing: wait for the socket.
	for range 100 {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Setenv("SSH_AUTH_SOCK", sock)
	return sock
}

func TestSFTPServerStopped(t *testing.T) {
	s := startSSHD(t)
	dir := t.TempDir()
	serverStopped(t, openSFTP(t, s, dir), dir, s.Stop)
}

// BenchmarkSFTPWrite measures uploads to 127.0.0.1 in the odd-sized
// writes a compressor makes: go test -bench SFTPWrite -benchtime 1x.
func BenchmarkSFTPWrite(b *testing.B) {
	s := startSSHD(b)
	benchWrite(b, openSFTP(b, s, b.TempDir()))
}
