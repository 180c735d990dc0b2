package sshui_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gdamore/tcell/v2"
	"github.com/rivo/tview"
	"golang.org/x/crypto/ssh"

	"github.com/pibackup/pibackup/internal/sshui"
	"github.com/pibackup/pibackup/internal/tui"
	"github.com/pibackup/pibackup/internal/tui/model"
	"github.com/pibackup/pibackup/internal/tui/tuitest"
)

// pickerUI is a small tview app: a list to move through and a line that
// shows the pick and the screen size.
func pickerUI(ctx context.Context, screen tcell.Screen) error {
	app := tview.NewApplication().SetScreen(screen)
	info := tview.NewTextView()
	list := tview.NewList().ShowSecondaryText(false)
	for _, name := range []string{"Alpha", "Beta", "Gamma"} {
		list.AddItem(name, "", 0, func() { info.SetText("picked " + name) })
	}
	size := tview.NewTextView()
	app.SetBeforeDrawFunc(func(s tcell.Screen) bool {
		w, h := s.Size()
		size.SetText(fmt.Sprintf("size %dx%d", w, h))
		return false
	})
	root := tview.NewFlex().SetDirection(tview.FlexRow).
		AddItem(size, 1, 0, false).
		AddItem(info, 1, 0, false).
		AddItem(list, 0, 1, true)
	stop := context.AfterFunc(ctx, app.Stop)
	defer stop()
	return app.SetRoot(root, true).Run()
}

type server struct {
	*sshui.Server
	addr string

	mu   sync.Mutex
	otps []string
}

func (s *server) lastOTP() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.otps[len(s.otps)-1]
}

// startServer runs a server on 127.0.0.1:0 for the test's lifetime.
func startServer(t *testing.T, cfg sshui.Config) *server {
	t.Helper()
	s := &server{}
	if cfg.NewUI == nil {
		cfg.NewUI = pickerUI
	}
	cfg.OnOTP = func(otp string) {
		s.mu.Lock()
		s.otps = append(s.otps, otp)
		s.mu.Unlock()
	}
	cfg.Log = slog.New(slog.NewTextHandler(tlogWriter{t}, nil))
	var err error
	if s.Server, err = sshui.New(cfg); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = l.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve() = %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return after cancel")
		}
	})
	return s
}

type tlogWriter struct{ t *testing.T }

func (w tlogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func newKey(t *testing.T) (ssh.Signer, ed25519.PrivateKey) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s, priv
}

// dial logs in, checking the host key against the server's fingerprint.
func (s *server) dial(auth ...ssh.AuthMethod) (*ssh.Client, error) {
	return ssh.Dial("tcp", s.addr, &ssh.ClientConfig{
		User: "root",
		Auth: auth,
		HostKeyCallback: func(_ string, _ net.Addr, k ssh.PublicKey) error {
			if got := ssh.FingerprintSHA256(k); got != s.Fingerprint() {
				return fmt.Errorf("host key %s; want %s", got, s.Fingerprint())
			}
			return nil
		},
		Timeout: 10 * time.Second,
	})
}

func (s *server) mustDial(t *testing.T, auth ...ssh.AuthMethod) *ssh.Client {
	t.Helper()
	c, err := s.dial(auth...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// term is a client session with a terminal.
type term struct {
	sess *ssh.Session
	in   io.WriteCloser
	vt   *vt
}

// openUI asks for a pty of cols×rows and a shell.
func openUI(t *testing.T, c *ssh.Client, cols, rows int) *term {
	t.Helper()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	tm := &term{sess: sess, vt: newVT(cols, rows)}
	sess.Stdout = tm.vt
	if tm.in, err = sess.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := sess.RequestPty("xterm-256color", rows, cols, ssh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	if err := sess.Shell(); err != nil {
		t.Fatal(err)
	}
	return tm
}

func (tm *term) send(t *testing.T, s string) {
	t.Helper()
	if _, err := io.WriteString(tm.in, s); err != nil {
		t.Fatal(err)
	}
}

// Keys as an xterm in keypad mode (tcell turns it on) sends them.
const (
	keyDown  = "\x1bOB"
	keyUp    = "\x1bOA"
	keyEnter = "\r"
)

// output runs a session that the server refuses and returns what it
// printed and its exit status.
func output(t *testing.T, c *ssh.Client, pty bool, run func(*ssh.Session) error) (string, int) {
	t.Helper()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	var out strings.Builder
	sess.Stdout = &out
	if pty {
		if err := sess.RequestPty("xterm", 24, 80, ssh.TerminalModes{}); err != nil {
			t.Fatal(err)
		}
	}
	err = run(sess)
	var ee *ssh.ExitError
	switch {
	case err == nil:
		return out.String(), 0
	case errors.As(err, &ee):
		return out.String(), ee.ExitStatus()
	}
	t.Fatalf("session: %v", err)
	return "", 0
}

func TestKeysArrowsAndResize(t *testing.T) {
	key, _ := newKey(t)
	s := startServer(t, sshui.Config{AuthorizedKeys: []ssh.PublicKey{key.PublicKey()}})
	c := s.mustDial(t, ssh.PublicKeys(key))
	tm := openUI(t, c, 80, 24)
	tm.vt.wait(t, "size 80x24")
	tm.vt.wait(t, "Alpha")
	tm.send(t, keyDown+keyDown+keyUp+keyEnter)
	tm.vt.wait(t, "picked Beta")

	if _, err := tm.sess.SendRequest("window-change", false, ssh.Marshal(struct{ Cols, Rows, W, H uint32 }{120, 40, 0, 0})); err != nil {
		t.Fatal(err)
	}
	tm.vt.resize(120, 40)
	tm.vt.wait(t, "size 120x40")

	// Leaving ends the UI, and the session with exit status 0.
	tm.in.Close()
	if err := tm.sess.Wait(); err != nil {
		t.Errorf("Wait() = %v; want exit status 0", err)
	}
}

func TestRealUI(t *testing.T) {
	w, err := tuitest.NewWorld(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d := w.Deps()
	d.Log = slog.New(slog.DiscardHandler)
	m := model.New(d)
	key, _ := newKey(t)
	s := startServer(t, sshui.Config{
		AuthorizedKeys: []ssh.PublicKey{key.PublicKey()},
		NewUI: func(ctx context.Context, screen tcell.Screen) error {
			return tui.New(tui.Deps{Screen: screen, Model: m, Disks: w.Disks, Version: "v-test"}).Run(ctx)
		},
	})
	tm := openUI(t, s.mustDial(t, ssh.PublicKeys(key)), 100, 30)
	tm.vt.wait(t, "pibackup recovery v-test")
	tm.vt.wait(t, "Restore a backup")
	tm.send(t, "r")
	tm.vt.wait(t, "Network or other location")
	if st := m.State(); st.Screen == model.Home {
		t.Errorf("model still on the home screen after r")
	}
}

func TestWrongKeyRefused(t *testing.T) {
	key, _ := newKey(t)
	other, _ := newKey(t)
	s := startServer(t, sshui.Config{AuthorizedKeys: []ssh.PublicKey{key.PublicKey()}})
	if c, err := s.dial(ssh.PublicKeys(other)); err == nil {
		c.Close()
		t.Fatal("login with a key that is not authorised succeeded")
	}
	// Passwords are off when keys are given.
	if c, err := s.dial(ssh.Password("")); err == nil {
		c.Close()
		t.Fatal("login with a password succeeded on a key-only server")
	}
	if s.OTP() != "" {
		t.Errorf("OTP() = %q on a key-only server", s.OTP())
	}
}

func TestOneTimePassword(t *testing.T) {
	s := startServer(t, sshui.Config{OneTimePassword: true})
	first := s.OTP()
	if first == "" || s.lastOTP() != first {
		t.Fatalf("OTP() = %q, OnOTP got %q", first, s.otps)
	}
	if c, err := s.dial(ssh.Password("abcd-efgh-jkmn")); err == nil {
		c.Close()
		t.Fatal("wrong one-time password let in")
	}
	if c, err := s.dial(ssh.PublicKeys(func() ssh.Signer { k, _ := newKey(t); return k }())); err == nil {
		c.Close()
		t.Fatal("a key let in on a password-only server")
	}
	// Typed in capitals and without dashes.
	c := s.mustDial(t, ssh.Password(strings.ToUpper(strings.ReplaceAll(first, "-", " "))))
	second := s.OTP()
	if second == first || second == "" || s.lastOTP() != second {
		t.Fatalf("after a login OTP() = %q (was %q), OnOTP got %q; want a new one", second, first, s.otps)
	}
	tm := openUI(t, c, 80, 24)
	tm.vt.wait(t, "Alpha")
	if c2, err := s.dial(ssh.Password(first)); err == nil {
		c2.Close()
		t.Fatal("a used one-time password let in again")
	}
	if !strings.Contains(tm.vt.text(), "Alpha") {
		t.Error("first session lost its screen")
	}
}

func TestSecondSessionRefused(t *testing.T) {
	key, _ := newKey(t)
	s := startServer(t, sshui.Config{AuthorizedKeys: []ssh.PublicKey{key.PublicKey()}})
	first := openUI(t, s.mustDial(t, ssh.PublicKeys(key)), 80, 24)
	first.vt.wait(t, "Alpha")

	c2 := s.mustDial(t, ssh.PublicKeys(key))
	out, code := output(t, c2, true, shellWait)
	if !strings.Contains(out, "in use by another SSH session") || code != 1 {
		t.Errorf("second session: exit %d, output %q; want the in-use message and exit 1", code, out)
	}
	first.send(t, keyDown+keyEnter) // the first still works
	first.vt.wait(t, "picked Beta")

	// When the first leaves, the next one gets in.
	first.in.Close()
	if err := first.sess.Wait(); err != nil {
		t.Fatal(err)
	}
	third := openUI(t, c2, 80, 24)
	third.vt.wait(t, "Alpha")
}

func TestOnlyTheUI(t *testing.T) {
	key, _ := newKey(t)
	s := startServer(t, sshui.Config{AuthorizedKeys: []ssh.PublicKey{key.PublicKey()}})
	c := s.mustDial(t, ssh.PublicKeys(key))
	if out, code := output(t, c, false, shellWait); !strings.Contains(out, "ssh -t") || code != 1 {
		t.Errorf("shell without pty: exit %d, output %q", code, out)
	}
	if out, code := output(t, c, false, func(s *ssh.Session) error { return s.Run("cat /etc/shadow") }); !strings.Contains(out, "not commands") || code != 1 {
		t.Errorf("exec: exit %d, output %q", code, out)
	}
	if _, err := c.NewSession(); err != nil {
		t.Fatalf("the connection did not survive refused sessions: %v", err)
	}
	if conn, err := c.Dial("tcp", s.addr); err == nil {
		conn.Close()
		t.Error("port forwarding allowed")
	}
}

func shellWait(s *ssh.Session) error {
	if err := s.Shell(); err != nil {
		return err
	}
	return s.Wait()
}
