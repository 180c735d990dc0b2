package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/gdamore/tcell/v2"
	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

	"github.com/pibackup/pibackup/internal/bootcmdline"
	"github.com/pibackup/pibackup/internal/i18n"
	"github.com/pibackup/pibackup/internal/source"
	"github.com/pibackup/pibackup/internal/sshui"
	"github.com/pibackup/pibackup/internal/tui"
	"github.com/pibackup/pibackup/internal/tui/model"
)

// sshServer is the running SSH server (package sshui); nil when the
// settings ask for none or it could not start. Its methods take a nil
// receiver.
type sshServer struct {
	srv  *sshui.Server
	port int

	mu  sync.Mutex
	otp string
}

// startSSH starts the SSH server when the settings ask for one
// (bootcmdline.Config.SSHEnabled) and serves until ctx is done. It is
// never fatal: without it the console UI still works, so errors are
// logged and announced and startSSH returns nil.
//
// It announces the port and the host key's fingerprint on the kernel log
// and the consoles (RECOVERY-SSH ...), and again on the kernel log for
// each address the machine gets. A one-time password is written to the
// consoles only, never to the kernel log or the log ring; header shows
// the current one in the console UI.
func startSSH(ctx context.Context, sys *system, cfg bootcmdline.Config, newUI func(ctx context.Context, screen tcell.Screen) error, log *slog.Logger) *sshServer {
	if !cfg.SSHEnabled() {
		return nil
	}
	s := &sshServer{port: cfg.SSHPortOrDefault()}
	sc := sshui.Config{OneTimePassword: cfg.SSHOneTimePassword(), NewUI: newUI, Log: log.With("subsys", "ssh"), OnOTP: s.setOTP}
	for _, line := range cfg.AuthorizedKeys {
		k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
		if err != nil {
			log.Warn("ssh: authorized_key", "err", err) // checked by bootcmdline
			continue
		}
		sc.AuthorizedKeys = append(sc.AuthorizedKeys, k)
	}
	fail := func(err error) *sshServer {
		log.Warn("ssh server not started", "err", err)
		sys.announce("RECOVERY-SSH-ERROR " + err.Error())
		return nil
	}
	srv, err := sshui.New(sc)
	if err != nil {
		return fail(err)
	}
	s.srv = srv
	l, err := net.Listen("tcp", ":"+strconv.Itoa(s.port))
	if err != nil {
		return fail(err)
	}
	auth := "key"
	if sc.OneTimePassword {
		auth = "one-time-password"
	}
	sys.announce(fmt.Sprintf("RECOVERY-SSH name=%s.local port=%d fingerprint=%s auth=%s", mdnsName, s.port, srv.Fingerprint(), auth))
	if otp := srv.OTP(); otp != "" {
		sys.tell(fmt.Sprintf("SSH one-time password: %s  (user root, port %d, host key %s)", otp, s.port, srv.Fingerprint()))
	}
	go func() {
		if err := srv.Serve(ctx, l); err != nil {
			log.Warn("ssh server stopped", "err", err)
		}
	}()
	go s.announceAddrs(ctx, sys)
	go func() {
		if err := sshui.MDNS(ctx, mdnsName, log); err != nil {
			log.Info("no mDNS: connect by address", "err", err)
		}
	}()
	return s
}

// mdnsName is the name the recovery answers to: ssh root@pibackup-recovery.local.
// Not the Pi's own name: a client's known_hosts entry for that holds the
// system's host key, not the recovery's.
const mdnsName = "pibackup-recovery"

func (s *sshServer) setOTP(otp string) {
	s.mu.Lock()
	s.otp = otp
	s.mu.Unlock()
}

// header is for the console UI's header line: the one-time password
// when there is one. It is never shown in the SSH session's own UI.
func (s *sshServer) header() string {
	if s == nil {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.otp != "" {
		return fmt.Sprintf("   ssh :%d password %s", s.port, s.otp)
	}
	return fmt.Sprintf("   ssh :%d", s.port)
}

// announceAddrs writes a RECOVERY-SSH line to the kernel log for every
// address the machine gets while ctx lasts (DHCP may take a while), so
// dmesg says where to connect. At debug level (<7>): the console belongs
// to the UI by then, and the kernel prints more urgent levels onto it.
// (The UI's header shows the address too.)
func (s *sshServer) announceAddrs(ctx context.Context, sys *system) {
	seen := map[string]bool{}
	tk := time.NewTicker(2 * time.Second)
	defer tk.Stop()
	for {
		addrs, _ := net.InterfaceAddrs()
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok || !ipn.IP.IsGlobalUnicast() || seen[ipn.IP.String()] {
				continue
			}
			seen[ipn.IP.String()] = true
			sys.kmsgWrite([]byte(fmt.Sprintf("<7>RECOVERY-SSH host=%s port=%d fingerprint=%s\n", ipn.IP, s.port, s.srv.Fingerprint())))
		}
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
	}
}

// tell writes line to every console but not to the kernel log: for what
// must not be kept (a one-time password). Call it before the UI owns the
// console.
func (s *system) tell(line string) {
	for _, c := range consoles(s.cmdline(), s.Dev) {
		f, err := os.OpenFile(filepath.Join(s.Dev, c), os.O_WRONLY|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
		if err != nil {
			continue
		}
		_, _ = f.WriteString("\r\n" + line + "\r\n")
		f.Close()
	}
}

// sshUI runs the restore UI on an SSH session's screen, over the same
// model as the console: both show the same restore. It has no shell (the
// console's shell runs on the console tty) and shows no one-time
// password.
func sshUI(m *model.Model, disks source.DiskLister, ring *tui.Ring, network func() string, lang i18n.Lang) func(ctx context.Context, screen tcell.Screen) error {
	return func(ctx context.Context, screen tcell.Screen) error {
		return tui.New(tui.Deps{Screen: screen, Model: m, Disks: disks, Log: ring, Version: version, Network: network, Lang: lang}).Run(ctx)
	}
}
