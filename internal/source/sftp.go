package source

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// SFTP is a backup folder on an SFTP server.
type SFTP struct {
	spec   Spec
	ssh    *ssh.Client
	client *sftp.Client
	fsys   *remoteFS
}

var _ Source = (*SFTP)(nil)

// dialTimeout bounds the TCP connect and the SSH handshake.
const dialTimeout = 20 * time.Second

// DialSFTP connects to the server in sp and opens sp.Path.
//
// The server's host key is checked before any credential is sent. When
// sp.KnownHost is "", DialSFTP fails with a *HostKeyError holding the
// fingerprint to show the user; when it is set and differs, it fails
// with ErrHostKeyMismatch.
func DialSFTP(ctx context.Context, sp Spec) (*SFTP, error) {
	if sp.User == "" {
		return nil, fmt.Errorf("sftp %s: no user name", sp.Addr())
	}
	var auth []ssh.AuthMethod
	if len(sp.Identity) > 0 {
		signer, err := ParseIdentity(sp.Identity, sp.Password)
		if err != nil {
			return nil, err
		}
		auth = append(auth, ssh.PublicKeys(signer))
	}
	if sp.Password != "" && len(sp.Identity) == 0 {
		auth = append(auth, PasswordAuth(sp.Password)...)
	}
	if len(auth) == 0 {
		return nil, fmt.Errorf("sftp %s: no password and no identity: %w", sp.Addr(), ErrAuth)
	}
	sc, err := DialSSH(ctx, sp.Addr(), &ssh.ClientConfig{
		User:            sp.User,
		Auth:            auth,
		HostKeyCallback: pinnedHostKey(sp.Addr(), sp.KnownHost),
	})
	if err != nil {
		return nil, err
	}
	addr := sp.Addr()
	client, err := sftp.NewClient(sc,
		sftp.UseConcurrentReads(true),
		sftp.MaxConcurrentRequestsPerFile(64))
	if err != nil {
		sc.Close()
		return nil, fmt.Errorf("sftp %s: start sftp subsystem: %w", addr, err)
	}
	root := sp.Path
	if root == "" {
		root = "."
	}
	fi, err := client.Stat(root)
	if err != nil {
		client.Close()
		sc.Close()
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("sftp %s: folder %s: %w", addr, root, ErrNotFound)
		}
		return nil, fmt.Errorf("sftp %s: folder %s: %w", addr, root, err)
	}
	if !fi.IsDir() {
		client.Close()
		sc.Close()
		return nil, fmt.Errorf("sftp %s: %s is not a folder", addr, root)
	}
	return &SFTP{spec: sp, ssh: sc, client: client, fsys: newRemoteFS(sftpClient{client}, root, "/", SFTPErr)}, nil
}

// DialSSH connects to addr and does the SSH handshake with cfg, bounded
// by dialTimeout, over a TCP connection that notices a dead peer (see
// dialTCP). An error from cfg.HostKeyCallback is returned as it is, so
// the caller's advice on pinning the key reaches the user; a rejected
// login wraps ErrAuth and a failed connect ErrUnreachable.
func DialSSH(ctx context.Context, addr string, cfg *ssh.ClientConfig) (*ssh.Client, error) {
	c := *cfg
	c.Timeout = dialTimeout
	var hostKeyErr error
	c.HostKeyCallback = func(host string, remote net.Addr, key ssh.PublicKey) error {
		hostKeyErr = cfg.HostKeyCallback(host, remote, key)
		return hostKeyErr
	}
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	conn, err := dialTCP(ctx, addr)
	if err != nil {
		return nil, fmt.Errorf("sftp %s: %w (%w)", addr, ErrUnreachable, err)
	}
	// The handshake has no context; a deadline on the conn bounds it.
	_ = conn.SetDeadline(time.Now().Add(dialTimeout))
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	sc, chans, reqs, err := ssh.NewClientConn(conn, addr, &c)
	stop()
	if err != nil {
		conn.Close()
		switch {
		case hostKeyErr != nil:
			return nil, hostKeyErr
		case strings.Contains(err.Error(), "unable to authenticate"):
			return nil, fmt.Errorf("sftp %s as %s: %w", addr, c.User, ErrAuth)
		}
		return nil, fmt.Errorf("sftp %s: ssh handshake: %w", addr, err)
	}
	_ = conn.SetDeadline(time.Time{})
	return ssh.NewClient(sc, chans, reqs), nil
}

// NewSFTPFS is the folder root of an SFTP server as an fs.FS that keeps
// the io/fs promises (see remoteFS) and marks a dead connection's errors
// with ErrConnectionLost.
func NewSFTPFS(c *sftp.Client, root string) fs.FS {
	return newRemoteFS(sftpClient{c}, root, "/", SFTPErr)
}

// PasswordAuth logs on with pw, whether the server asks for a password
// or, as many do with PAM, through keyboard-interactive prompts.
func PasswordAuth(pw string) []ssh.AuthMethod {
	return []ssh.AuthMethod{ssh.Password(pw),
		ssh.KeyboardInteractive(func(_, _ string, qs []string, _ []bool) ([]string, error) {
			a := make([]string, len(qs))
			for i := range a {
				a[i] = pw
			}
			return a, nil
		})}
}

// ParseIdentity parses a private key in OpenSSH or PEM format, protected
// by passphrase or not.
func ParseIdentity(key []byte, passphrase string) (ssh.Signer, error) {
	signer, err := ssh.ParsePrivateKey(key)
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		if passphrase == "" {
			return nil, fmt.Errorf("identity is protected by a passphrase; set password= to it: %w", ErrAuth)
		}
		signer, err = ssh.ParsePrivateKeyWithPassphrase(key, []byte(passphrase))
	}
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	return signer, nil
}

// pinnedHostKey accepts only the key whose SHA256 fingerprint is known.
func pinnedHostKey(addr, known string) ssh.HostKeyCallback {
	return func(_ string, _ net.Addr, key ssh.PublicKey) error {
		fp := ssh.FingerprintSHA256(key)
		if known == "" {
			return &HostKeyError{Addr: addr, KeyType: key.Type(), Fingerprint: fp}
		}
		if fp != NormalizeFingerprint(known) {
			return fmt.Errorf("%s presented %s %s: %w", addr, key.Type(), fp, ErrHostKeyMismatch)
		}
		return nil
	}
}

// NormalizeFingerprint accepts a fingerprint as ssh-keygen -l prints it,
// with or without the "SHA256:" prefix, and with the trailing key comment
// and type ("256 SHA256:abc root@pi (ED25519)") that a copy and paste
// brings along.
func NormalizeFingerprint(s string) string {
	for _, f := range strings.Fields(s) {
		if strings.HasPrefix(f, "SHA256:") {
			return strings.TrimRight(f, "=")
		}
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	return "SHA256:" + strings.TrimRight(s, "=")
}

// FS implements Source.
func (s *SFTP) FS() fs.FS { return s.fsys }

// LocalDir implements Source: SFTP has none.
func (s *SFTP) LocalDir() string { return "" }

// Device implements Source.
func (s *SFTP) Device() string { return "" }

func (s *SFTP) String() string { return s.spec.String() }

// Close implements Source.
func (s *SFTP) Close() error {
	if s.client == nil {
		return nil
	}
	err := s.client.Close()
	if e := s.ssh.Close(); err == nil && !errors.Is(e, net.ErrClosed) {
		err = e
	}
	s.client = nil
	return err
}

// SFTPErr maps the errors pkg/sftp returns to the io/fs sentinels.
func SFTPErr(err error) error {
	var st *sftp.StatusError
	if errors.As(err, &st) {
		switch st.FxCode() {
		case sftp.ErrSSHFxNoSuchFile:
			return fs.ErrNotExist
		case sftp.ErrSSHFxPermissionDenied:
			return fs.ErrPermission
		}
	}
	return err
}

// sftpClient adapts *sftp.Client to remote.
type sftpClient struct{ c *sftp.Client }

func (c sftpClient) Stat(p string) (fs.FileInfo, error)      { return c.c.Stat(p) }
func (c sftpClient) ReadDir(p string) ([]fs.FileInfo, error) { return c.c.ReadDir(p) }
func (c sftpClient) Open(p string) (remoteFile, error)       { return c.c.Open(p) }
func (c sftpClient) Lstat(p string) (fs.FileInfo, error)     { return c.c.Lstat(p) }
func (c sftpClient) ReadLink(p string) (string, error)       { return c.c.ReadLink(p) }
