package sshui_test

import (
	"encoding/pem"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/pibackup/pibackup/internal/sshui"
)

// TestOpenSSHClient logs in with the real ssh(1), once with a key and
// once with the one-time password (through SSH_ASKPASS), with the host
// key pinned in known_hosts, and drives the UI through a pipe.
func TestOpenSSHClient(t *testing.T) {
	sshBin, err := exec.LookPath("ssh")
	if err != nil {
		t.Skip("no OpenSSH client:", err)
	}
	for _, tt := range []struct {
		name string
		otp  bool
	}{{"key", false}, {"one-time password", true}} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			key, priv := newKey(t)
			cfg := sshui.Config{OneTimePassword: tt.otp}
			if !tt.otp {
				cfg.AuthorizedKeys = []ssh.PublicKey{key.PublicKey()}
			}
			s := startServer(t, cfg)
			host, port, _ := strings.Cut(s.addr, ":")
			known := "[" + host + "]:" + port + " " + string(ssh.MarshalAuthorizedKey(s.HostKey()))
			write(t, filepath.Join(dir, "known_hosts"), known, 0o600)
			args := []string{"-tt", "-F", "/dev/null", "-p", port,
				"-o", "UserKnownHostsFile=" + filepath.Join(dir, "known_hosts"), "-o", "StrictHostKeyChecking=yes",
				"-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR"}
			env := append(os.Environ(), "TERM=xterm-256color")
			if tt.otp {
				write(t, filepath.Join(dir, "askpass"), "#!/bin/sh\necho '"+s.OTP()+"'\n", 0o700)
				args = append(args, "-o", "PreferredAuthentications=password", "-o", "PubkeyAuthentication=no")
				env = append(env, "SSH_ASKPASS="+filepath.Join(dir, "askpass"), "SSH_ASKPASS_REQUIRE=force")
			} else {
				block, err := ssh.MarshalPrivateKey(priv, "")
				if err != nil {
					t.Fatal(err)
				}
				write(t, filepath.Join(dir, "id"), string(pem.EncodeToMemory(block)), 0o600)
				args = append(args, "-i", filepath.Join(dir, "id"), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes")
			}
			cmd := exec.Command(sshBin, append(args, "root@"+host)...)
			cmd.Env = env
			screen := newVT(80, 24)
			var stderr strings.Builder
			cmd.Stdout, cmd.Stderr = screen, &stderr
			in, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			defer func() {
				in.Close()
				select {
				case err := <-done:
					if err != nil {
						t.Errorf("ssh: %v; stderr: %s", err, stderr.String())
					}
				case <-time.After(10 * time.Second):
					_ = cmd.Process.Kill()
					t.Errorf("ssh did not exit after its input closed; stderr: %s", stderr.String())
				}
			}()
			screen.wait(t, "size 80x24") // ssh -tt on a pipe knows no size: the default
			screen.wait(t, "Alpha")
			_, _ = io.WriteString(in, keyDown+keyDown+keyEnter)
			screen.wait(t, "picked Gamma")
		})
	}
}

func write(t *testing.T, name, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}
