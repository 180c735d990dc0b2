package testsrv

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// SSHD is a running OpenSSH server.
type SSHD struct {
	Port        int
	User        string // "root"
	KeyPath     string // client private key (ed25519, no passphrase)
	HostKeyPub  string // the server's public host key line
	Fingerprint string // SHA256:... as ssh-keygen -l prints it
	KnownHosts  string // a known_hosts file naming [127.0.0.1]:port
	LogPath     string // sshd's log (LogLevel VERBOSE: every auth attempt)

	pidFile string
}

// StartSSHD starts sshd on 127.0.0.1 with key authentication for root and
// the internal sftp subsystem.
func StartSSHD(t testing.TB) *SSHD {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil { // privilege separation dir sshd insists on
		t.Fatal(err)
	}
	hostKey := filepath.Join(dir, "host_ed25519")
	clientKey := filepath.Join(dir, "id_ed25519")
	run(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", hostKey)
	run(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", clientKey)
	pub, err := os.ReadFile(clientKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	auth := filepath.Join(dir, "authorized_keys")
	writeFile(t, auth, string(pub), 0o600)
	port := FreePort(t)
	cfg := filepath.Join(dir, "sshd_config")
	writeFile(t, cfg, fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s
PidFile %s
AuthorizedKeysFile %s
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
LogLevel VERBOSE
`, port, hostKey, filepath.Join(dir, "sshd.pid"), auth), 0o600)
	logPath := filepath.Join(dir, "sshd.log")
	daemon(t, logPath, "/usr/sbin/sshd", "-D", "-f", cfg, "-E", logPath)
	if err := waitPort(port, 10*time.Second); err != nil {
		t.Fatalf("sshd: %v", err)
	}
	hostPub, err := os.ReadFile(hostKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	fp := strings.Fields(run(t, "ssh-keygen", "-l", "-E", "sha256", "-f", hostKey+".pub"))
	kh := filepath.Join(dir, "known_hosts")
	fields := strings.Fields(string(hostPub))
	writeFile(t, kh, fmt.Sprintf("[127.0.0.1]:%d %s %s\n", port, fields[0], fields[1]), 0o644)
	return &SSHD{Port: port, User: "root", KeyPath: clientKey, HostKeyPub: strings.TrimSpace(string(hostPub)), Fingerprint: fp[1], KnownHosts: kh,
		LogPath: logPath, pidFile: filepath.Join(dir, "sshd.pid")}
}
