package main

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gdamore/tcell/v2"
	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

	"github.com/pibackup/pibackup/internal/bootcmdline"
)

// TestStartSSHOneTimePassword starts the server as run would with
// recovery.ssh=1 and checks where the password goes: the console and the
// header, never the kernel log.
func TestStartSSHOneTimePassword(t *testing.T) {
	dir := t.TempDir()
	sys := &system{Cmdline: filepath.Join(dir, "cmdline"), Kmsg: filepath.Join(dir, "kmsg"), Dev: dir, RunDir: dir}
	for _, f := range []string{"cmdline", "console"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	kernelLog := fakeKmsg(t, sys.Kmsg)
	port := freePort(t)
	cfg, err := bootcmdline.Parse("recovery.ssh=1 recovery.ssh_port="+strconv.Itoa(port), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan struct{}, 1)
	s := startSSH(ctx, sys, cfg, func(ctx context.Context, screen tcell.Screen) error {
		ran <- struct{}{}
		return nil
	}, testLog(t))
	if s == nil {
		t.Fatal("startSSH() = nil")
	}
	otp := s.srv.OTP()
	line := "RECOVERY-SSH name=pibackup-recovery.local port=" + strconv.Itoa(port) + " fingerprint=" + s.srv.Fingerprint()
	kmsg := kernelLog(line)
	console, _ := os.ReadFile(filepath.Join(dir, "console"))
	if !strings.Contains(kmsg, line) {
		t.Errorf("kernel log %q lacks the RECOVERY-SSH line", kmsg)
	}
	if strings.Contains(kmsg, otp) {
		t.Errorf("kernel log shows the one-time password: %q", kmsg)
	}
	if !strings.Contains(string(console), otp) || !strings.Contains(s.header(), otp) {
		t.Errorf("console %q / header %q lack the one-time password", console, s.header())
	}

	c, err := ssh.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port), &ssh.ClientConfig{
		User: "root", Auth: []ssh.AuthMethod{ssh.Password(otp)}, HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if strings.Contains(s.header(), otp) || s.srv.OTP() == "" || !strings.Contains(s.header(), s.srv.OTP()) {
		t.Errorf("after a login header() = %q; want the next password %q", s.header(), s.srv.OTP())
	}
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.RequestPty("xterm", 24, 80, ssh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	if err := sess.Shell(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ran:
	case <-time.After(10 * time.Second):
		t.Fatal("the UI did not run")
	}
	if err := sess.Wait(); err != nil {
		t.Errorf("session: %v", err)
	}
}

func TestStartSSHOff(t *testing.T) {
	for _, cmdline := range []string{"", "recovery.ssh=0"} {
		cfg, err := bootcmdline.Parse(cmdline, strings.NewReader("authorized_key=ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJwCdzfFPDnHXW9ngv0ysnGvbXUbhl8F2iPH6hDIgeii\n"))
		if err != nil {
			t.Fatal(err)
		}
		if cmdline == "" {
			cfg.AuthorizedKeys = nil
		}
		if s := startSSH(context.Background(), nil, cfg, nil, testLog(t)); s != nil || s.header() != "" {
			t.Errorf("%q: startSSH() = %v; want nil", cmdline, s)
		}
	}
}

// fakeKmsg makes a FIFO at path (a plain file would be overwritten by
// every kmsgWrite, /dev/kmsg is not) and returns a function that waits
// for a string in what was written to it and returns all of that.
func fakeKmsg(t *testing.T, path string) func(want string) string {
	t.Helper()
	if err := unix.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0) // a reader that is always there
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	var mu sync.Mutex
	var b strings.Builder
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := f.Read(buf)
			mu.Lock()
			b.Write(buf[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	// Waits until want was written (the reader may lag), for at most 5s.
	return func(want string) string {
		for deadline := time.Now().Add(5 * time.Second); ; {
			mu.Lock()
			s := b.String()
			mu.Unlock()
			if strings.Contains(s, want) || time.Now().After(deadline) {
				return s
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func testLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}
