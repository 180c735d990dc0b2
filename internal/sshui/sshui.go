// Package sshui serves the recovery's text UI over SSH, for the Pis that
// run without a screen. Whoever logs in gets the UI on a tcell.Screen
// drawn over the session channel, sized by the client's pty-req and
// window-change requests.
//
// Limits, on purpose:
//   - One UI session at a time. A second login gets a message saying so
//     and is closed.
//   - Only interactive sessions: no exec, no subsystems (sftp), no port
//     forwarding. A session without a terminal (ssh without -t) gets a
//     message and is closed.
//   - Logins: public keys from Config.AuthorizedKeys, or, when
//     Config.OneTimePassword is set, a password the server makes up. Each
//     one-time password lets in one login; then the next one is made up
//     and handed to Config.OnOTP. The user name does not matter.
//   - The host key is made up at start unless Config.HostKey is given:
//     a client's known_hosts entry holds only until the next boot.
package sshui

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/gdamore/tcell/v2"
	"golang.org/x/crypto/ssh"
)

// Config says who may log in and what they get.
type Config struct {
	// AuthorizedKeys may log in.
	AuthorizedKeys []ssh.PublicKey
	// OneTimePassword lets a password log in once (see Server.OTP).
	OneTimePassword bool
	// HostKey is the server's key; nil makes up an ed25519 key.
	HostKey ssh.Signer
	// NewUI runs the UI on screen until ctx is done (the client left or
	// the server stops) or the UI ends. The screen is not initialised:
	// tview's SetScreen does that, and its Run finalises it.
	NewUI func(ctx context.Context, screen tcell.Screen) error
	// OnOTP is called with each new one-time password, the first one
	// from New, so the console can show it. It is never logged. May be
	// nil.
	OnOTP func(otp string)
	// Log gets logins, refusals and errors; nil discards them.
	Log *slog.Logger
	// KeepAlive is how often a silent client is asked whether it is still
	// there; one that does not answer within twice that is dropped, so a
	// pulled cable frees the session slot. 0 means 30 seconds.
	KeepAlive time.Duration
}

// Server is the SSH server. Make one with New and run it with Serve.
type Server struct {
	cfg  Config
	conf *ssh.ServerConfig
	fp   string
	log  *slog.Logger

	mu   sync.Mutex
	otp  string // "" when one-time passwords are off
	busy string // the client address of the running UI session, "" when free
}

// Messages a client sees on its terminal.
const (
	msgBusy   = "The recovery UI is in use by another SSH session (from %s).\r\nOnly one session at a time; try again when it has ended.\r\n"
	msgNoPTY  = "This server only offers the recovery UI, which needs a terminal: connect with ssh -t.\r\n"
	msgNoExec = "This server only offers the recovery UI, not commands or subsystems: connect with plain ssh (or ssh -t).\r\n"
)

// New checks cfg, makes up the host key if there is none and the first
// one-time password if they are on.
func New(cfg Config) (*Server, error) {
	if cfg.NewUI == nil {
		return nil, errors.New("BUG: sshui.Config.NewUI is nil")
	}
	if len(cfg.AuthorizedKeys) == 0 && !cfg.OneTimePassword {
		return nil, errors.New("no way to log in: no authorized key and no one-time password")
	}
	if cfg.HostKey == nil {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("host key: %w", err)
		}
		if cfg.HostKey, err = ssh.NewSignerFromKey(priv); err != nil {
			return nil, fmt.Errorf("host key: %w", err)
		}
	}
	if cfg.KeepAlive == 0 {
		cfg.KeepAlive = 30 * time.Second
	}
	s := &Server{cfg: cfg, fp: ssh.FingerprintSHA256(cfg.HostKey.PublicKey()), log: cfg.Log}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.conf = &ssh.ServerConfig{
		ServerVersion: "SSH-2.0-pibackup-recovery",
		MaxAuthTries:  6,
	}
	if len(cfg.AuthorizedKeys) > 0 {
		s.conf.PublicKeyCallback = s.checkKey
	}
	if cfg.OneTimePassword {
		otp, err := newOTP()
		if err != nil {
			return nil, err
		}
		s.otp = otp
		s.conf.PasswordCallback = s.checkPassword
		if cfg.OnOTP != nil {
			cfg.OnOTP(otp)
		}
	}
	s.conf.AddHostKey(cfg.HostKey)
	return s, nil
}

// Fingerprint is the host key's fingerprint as ssh-keygen -l and the
// client's first-connection prompt show it (SHA256:...).
func (s *Server) Fingerprint() string { return s.fp }

// HostKey is the server's public host key, for a known_hosts line.
func (s *Server) HostKey() ssh.PublicKey { return s.cfg.HostKey.PublicKey() }

// OTP is the current one-time password, "" when they are off.
func (s *Server) OTP() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.otp
}

func (s *Server) checkKey(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
	b := k.Marshal()
	for _, a := range s.cfg.AuthorizedKeys {
		if bytes.Equal(a.Marshal(), b) {
			return &ssh.Permissions{Extensions: map[string]string{"auth": "publickey", "key": ssh.FingerprintSHA256(k)}}, nil
		}
	}
	return nil, errors.New("key not authorised")
}

func (s *Server) checkPassword(c ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
	s.mu.Lock()
	ok := s.otp != "" && subtle.ConstantTimeCompare([]byte(normalizeOTP(string(pw))), []byte(normalizeOTP(s.otp))) == 1
	var next string
	if ok {
		var err error
		if next, err = newOTP(); err != nil {
			next = "" // no randomness: no more password logins
		}
		s.otp = next
	}
	s.mu.Unlock()
	if !ok {
		s.log.Info("ssh: wrong one-time password", "remote", c.RemoteAddr().String())
		return nil, errors.New("wrong password")
	}
	if s.cfg.OnOTP != nil {
		s.cfg.OnOTP(next)
	}
	return &ssh.Permissions{Extensions: map[string]string{"auth": "one-time password"}}, nil
}

// Serve accepts connections on l until ctx is done, then closes l and
// every connection and returns nil once they have ended. Other accept
// errors are returned.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	for {
		nc, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			return err
		}
		wg.Go(func() { s.handle(ctx, nc) })
	}
}

// handle runs one connection: handshake, login, its channels.
func (s *Server) handle(ctx context.Context, nc net.Conn) {
	defer nc.Close()
	remote := nc.RemoteAddr().String()
	_ = nc.SetDeadline(time.Now().Add(time.Minute)) // time to type a password
	conn, chans, reqs, err := ssh.NewServerConn(nc, s.conf)
	if err != nil {
		s.log.Info("ssh: no login", "remote", remote, "err", err)
		return
	}
	_ = nc.SetDeadline(time.Time{})
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	ext := conn.Permissions.Extensions
	s.log.Info("ssh: login", "remote", remote, "user", conn.User(), "auth", ext["auth"], "key", ext["key"])

	go ssh.DiscardRequests(reqs)
	go keepAlive(ctx, conn, s.cfg.KeepAlive)
	var wg sync.WaitGroup
	for nch := range chans {
		if nch.ChannelType() != "session" {
			_ = nch.Reject(ssh.Prohibited, "this server only offers the recovery UI")
			continue
		}
		ch, creqs, err := nch.Accept()
		if err != nil {
			continue
		}
		wg.Go(func() { s.session(ctx, remote, ch, creqs) })
	}
	cancel()
	wg.Wait()
	s.log.Info("ssh: logout", "remote", remote)
}

// keepAlive drops a connection whose peer no longer answers.
func keepAlive(ctx context.Context, conn ssh.Conn, every time.Duration) {
	tk := time.NewTicker(every)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
		dead := time.AfterFunc(2*every, func() { conn.Close() })
		_, _, err := conn.SendRequest("keepalive@openssh.com", true, nil)
		dead.Stop()
		if err != nil {
			return
		}
	}
}

// ptyRequest is the payload of pty-req (RFC 4254 section 6.2).
type ptyRequest struct {
	Term          string
	Cols, Rows    uint32
	Width, Height uint32
	Modes         string
}

// windowChange is the payload of window-change (RFC 4254 section 6.7).
type windowChange struct {
	Cols, Rows    uint32
	Width, Height uint32
}

// session runs the requests of one session channel; a shell request
// starts the UI.
func (s *Server) session(ctx context.Context, remote string, ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		tty  *chanTTY
		term string
		ui   chan struct{} // closed when the UI has ended
	)
	refuse := func(req *ssh.Request, msg string) {
		_ = req.Reply(true, nil)
		_, _ = io.WriteString(ch, msg)
		exit(ch, 1)
		cancel()
	}
	for {
		var req *ssh.Request
		select {
		case req = <-reqs:
		case <-ctx.Done():
		}
		if req == nil {
			break
		}
		switch req.Type {
		case "pty-req":
			var p ptyRequest
			if tty != nil || ssh.Unmarshal(req.Payload, &p) != nil {
				_ = req.Reply(false, nil)
				continue
			}
			term = p.Term
			tty = newChanTTY(ch, int(p.Cols), int(p.Rows))
			_ = req.Reply(true, nil)
		case "window-change":
			var w windowChange
			if tty != nil && ssh.Unmarshal(req.Payload, &w) == nil {
				tty.resize(int(w.Cols), int(w.Rows))
			}
			_ = req.Reply(false, nil) // want_reply is false by the RFC; Reply does nothing then
		case "shell":
			if ui != nil {
				_ = req.Reply(false, nil)
				continue
			}
			if tty == nil {
				refuse(req, msgNoPTY)
				continue
			}
			if holder, ok := s.claim(remote); !ok {
				s.log.Info("ssh: refused a second session", "remote", remote, "running", holder)
				refuse(req, fmt.Sprintf(msgBusy, holder))
				continue
			}
			_ = req.Reply(true, nil)
			screen, err := tcell.NewTerminfoScreenFromTtyTerminfo(tty, lookupTerminfo(term))
			if err != nil { // no terminfo at all; not with tcell's built-in database
				s.release()
				refuse(req, fmt.Sprintf("No terminal description for %q: %v\r\n", term, err))
				continue
			}
			ui = make(chan struct{})
			tty.hangup = cancel
			go func() {
				defer close(ui)
				err := s.cfg.NewUI(ctx, screen)
				tty.Close()
				s.release() // before the exit status: a client that saw it may come back at once
				if err != nil {
					s.log.Warn("ssh: UI", "remote", remote, "err", err)
					_, _ = fmt.Fprintf(ch, "\r\nrecovery UI: %v\r\n", err)
					exit(ch, 1)
				} else {
					exit(ch, 0)
				}
				cancel()
			}()
		case "exec", "subsystem":
			refuse(req, msgNoExec)
		default: // env, x11-req, auth-agent-req@openssh.com, ...
			_ = req.Reply(false, nil)
		}
	}
	cancel()
	if tty != nil {
		tty.Close()
	}
	if ui != nil {
		<-ui
	}
}

// exit sends the exit status that ends the client's ssh command.
func exit(ch ssh.Channel, code uint32) {
	_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Code uint32 }{code}))
	_ = ch.CloseWrite()
}

// claim takes the one UI session slot for remote, or says who holds it.
func (s *Server) claim(remote string) (holder string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.busy != "" {
		return s.busy, false
	}
	s.busy = remote
	return "", true
}

func (s *Server) release() {
	s.mu.Lock()
	s.busy = ""
	s.mu.Unlock()
}

// otpAlphabet has no 0/o, 1/i/l: it is read off a screen and typed.
const otpAlphabet = "23456789abcdefghjkmnpqrstuvwxyz"

// newOTP makes up a password of 12 letters and digits (59 bits) shown in
// groups of four: "k7qm-x3pa-9fwd".
func newOTP() (string, error) {
	var b strings.Builder
	size := big.NewInt(int64(len(otpAlphabet)))
	for i := range 12 {
		if i > 0 && i%4 == 0 {
			b.WriteByte('-')
		}
		n, err := rand.Int(rand.Reader, size)
		if err != nil {
			return "", fmt.Errorf("one-time password: %w", err)
		}
		b.WriteByte(otpAlphabet[n.Int64()])
	}
	return b.String(), nil
}

// normalizeOTP lets the password be typed with or without dashes and
// spaces, in either case.
func normalizeOTP(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '-', ' ':
			return -1
		}
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, s)
}
