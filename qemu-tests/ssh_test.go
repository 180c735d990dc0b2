//go:build !race

package qemutests

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

var sshAnnounceRE = regexp.MustCompile(`RECOVERY-SSH name=(\S+) port=(\d+) fingerprint=(SHA256:\S+) auth=([a-z-]+)[^a-z-]`)

// TestSSHRestore is the headless path: recovery.conf on the image's FAT
// authorises a key, so the recovery starts its SSH server; the test
// forwards a port on 127.0.0.1 to the guest's port 22, logs in with the
// key (checking the host key against the fingerprint the recovery
// announces on the console), asks for an 80×24 terminal and drives the
// same UI through a whole restore from a USB disk onto /dev/vdb, reading
// the screen through a terminal emulator, and powers off from the UI.
// The host judges and boots the restored disk as in TestRestoreMatrix.
func TestSSHRestore(t *testing.T) {
	a := requireArtifacts(t)
	start := time.Now()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	authorized := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey()))) + " qemu-test"
	c := stageCase(t, a, usbSource(t), "tgz", nil, "authorized_key="+authorized)
	work, fx, rec, target, drives := c.work, c.fx, c.rec, c.target, c.drives
	t.Logf("fixture and backup: %s", time.Since(start).Round(time.Second))

	port := freePort(t)
	cfg := VMConfig{Arch: "arm64", Kernel: a.boot.Kernel, Initrd: a.boot.Initramfs,
		LogPath: filepath.Join(work, "recovery-console.log"),
		Append:  a.boot.Cmdline, // no recovery.* keys: the interactive UI
		Drives:  append([]Drive{{Path: rec}, {Path: target}}, drives...),
		HostFwd: []string{fmt.Sprintf("tcp:127.0.0.1:%d-:22", port)}}
	ctx, cancel := context.WithTimeout(context.Background(), uiBootDeadline+restoreDeadline+5*time.Minute)
	defer cancel()
	vm, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Kill()
	serialTail := func() string {
		return "--- serial log, tail, control sequences cut ---\n" + plainTail(vm.Console(), 3000)
	}
	boot := time.Now()
	m, err := vm.Expect(sshAnnounceRE, uiBootDeadline)
	if err != nil {
		t.Fatalf("%v\n%s", err, serialTail())
	}
	fingerprint := m[3]
	if m[2] != "22" || m[4] != "key" {
		t.Fatalf("announced %q; want port 22 and auth=key", m[0])
	}
	t.Logf("boot to %q: %s", m[0], time.Since(boot).Round(time.Second))

	client := dialRecovery(t, "127.0.0.1:"+strconv.Itoa(port), signer, fingerprint, serialTail)
	defer client.Close()
	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	stdin, err := sess.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := newScreen(t, "SSH session", 80, 24, stdin)
	s.diag = serialTail
	sess.Stdout, sess.Stderr = s, s
	// A client's terminal is raw (the modes are the client's business);
	// xterm-256color is what most terminal emulators announce.
	if err := sess.RequestPty("xterm-256color", 24, 80, ssh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	if err := sess.Shell(); err != nil {
		t.Fatal(err)
	}
	ended := make(chan struct{})
	var sessErr error
	go func() {
		sessErr = sess.Wait()
		close(ended)
	}()
	s.closed = ended
	t.Logf("logged in: %s", time.Since(boot).Round(time.Second))

	restoreThroughUI(t, s, keyDown, "PIBACKUPS", "vdb")
	select {
	case <-ended:
		t.Logf("SSH session ended: %v", sessErr)
	case <-time.After(60 * time.Second):
		t.Errorf("the SSH session did not end after power off")
	}
	if err := vm.Wait(90 * time.Second); err != nil {
		t.Fatalf("recovery did not power off: %v\n%s", err, serialTail())
	}
	t.Logf("guest: %s from boot to power-off", time.Since(boot).Round(time.Second))
	judge(t, fx, target)
	bootRestored(t, a, work, target)
	t.Logf("total: %s", time.Since(start).Round(time.Second))
}

// dialRecovery logs in to the recovery's SSH server with key, accepting
// only the host key whose fingerprint the recovery announced. The
// forwarded port accepts at once, but the guest may not have its address
// yet (DHCP): then the handshake fails and the dial is tried again until
// uiBootDeadline.
func dialRecovery(t *testing.T, addr string, key ssh.Signer, fingerprint string, diag func() string) *ssh.Client {
	t.Helper()
	cfg := &ssh.ClientConfig{
		User: "root",
		Auth: []ssh.AuthMethod{ssh.PublicKeys(key)},
		HostKeyCallback: func(_ string, _ net.Addr, k ssh.PublicKey) error {
			if got := ssh.FingerprintSHA256(k); got != fingerprint {
				return fmt.Errorf("host key %s; the recovery announced %s", got, fingerprint)
			}
			return nil
		},
		Timeout: 30 * time.Second,
	}
	deadline := time.Now().Add(uiBootDeadline)
	for try := 1; ; try++ {
		c, err := ssh.Dial("tcp", addr, cfg)
		if err == nil {
			return c
		}
		if strings.Contains(err.Error(), "the recovery announced") || time.Now().After(deadline) {
			t.Fatalf("ssh %s (try %d): %v\n%s", addr, try, err, diag())
		}
		t.Logf("ssh %s (try %d): %v", addr, try, err)
		time.Sleep(2 * time.Second) // a retry interval, not a synchronisation
	}
}

// freePort is a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
