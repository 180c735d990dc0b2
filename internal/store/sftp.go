package store

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/pibackup/pibackup/internal/source"
)

// DefaultKnownHosts is where the server's pinned host key is looked up
// when Options.SSHKnownHosts is empty: backupctl runs as root.
const DefaultKnownHosts = "/root/.ssh/known_hosts"

// openSFTP opens sftp://user@host[:port]/path. The path is as the server
// resolves it: /srv/backup is absolute; sftp://pi@nas (no path) is the
// user's home folder. The folder must exist.
func openSFTP(ctx context.Context, u *url.URL, o Options) (Store, error) {
	shown := (&url.URL{Scheme: u.Scheme, User: userOnly(u), Host: u.Host, Path: u.Path}).String()
	user := u.User.Username()
	if user == "" {
		return nil, fmt.Errorf("backup folder %s: no user name (sftp://USER@HOST/PATH)", shown)
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = strconv.Itoa(source.DefaultSSHPort)
	}
	addr := net.JoinHostPort(host, port)
	khFile := o.SSHKnownHosts
	if khFile == "" {
		khFile = DefaultKnownHosts
	}
	hostKey, algos, err := pinnedHostKey(khFile, addr)
	if err != nil {
		return nil, fmt.Errorf("backup folder %s: %w", shown, err)
	}
	password := o.Password
	if pw, ok := u.User.Password(); ok && password == "" {
		password = pw
	}
	auth, closeAgent, err := sshAuth(o.SSHIdentity, os.Getenv("SSH_AUTH_SOCK"), password)
	if err != nil {
		return nil, fmt.Errorf("backup folder %s: %w", shown, err)
	}
	sc, err := source.DialSSH(ctx, addr, &ssh.ClientConfig{
		User: user, Auth: auth, HostKeyCallback: hostKey, HostKeyAlgorithms: algos,
	})
	closeAgent()
	if err != nil {
		return nil, fmt.Errorf("backup folder %s: %w", shown, err)
	}
	// Up to 64 requests of 32 KiB in flight per file, for uploads (see
	// sftpClient.Create) and for verify's and restore's reads.
	c, err := sftp.NewClient(sc,
		sftp.UseConcurrentWrites(true),
		sftp.UseConcurrentReads(true),
		sftp.MaxConcurrentRequestsPerFile(64))
	if err != nil {
		sc.Close()
		return nil, fmt.Errorf("backup folder %s: start sftp subsystem: %w", shown, err)
	}
	root := path.Clean(u.Path)
	if u.Path == "" {
		root = "."
	}
	fi, err := c.Stat(root)
	if err == nil && !fi.IsDir() {
		err = errors.New("not a folder")
	}
	if err != nil {
		c.Close()
		sc.Close()
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("backup folder %s: %w: create the folder on the server first", shown, source.ErrNotFound)
		}
		return nil, fmt.Errorf("backup folder %s: %w", shown, err)
	}
	return &remote{url: shown, c: sftpClient{c, sc}, mapErr: source.SFTPErr, fsys: source.NewSFTPFS(c, root),
		path: func(name string) string { return path.Join(root, name) }}, nil
}

// userOnly is u's user without a password, for messages.
func userOnly(u *url.URL) *url.Userinfo {
	if u.User == nil {
		return nil
	}
	return url.User(u.User.Username())
}

// sshAuth is how to log on: the key file identity if given, else the
// keys of the ssh-agent at agentSock, and the password (if any) after
// either. closeAgent ends the agent connection once the handshake is
// over.
func sshAuth(identity, agentSock, password string) (auth []ssh.AuthMethod, closeAgent func(), err error) {
	closeAgent = func() {}
	switch {
	case identity != "":
		key, err := os.ReadFile(identity)
		if err != nil {
			return nil, nil, fmt.Errorf("ssh identity: %w", err)
		}
		signer, err := ssh.ParsePrivateKey(key)
		var missing *ssh.PassphraseMissingError
		if errors.As(err, &missing) {
			return nil, nil, fmt.Errorf("ssh identity %s is protected by a passphrase: add it to an ssh-agent (ssh-add %s) and leave ssh-identity empty, or use a key without one", identity, identity)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("ssh identity %s: %w", identity, err)
		}
		auth = append(auth, ssh.PublicKeys(signer))
	case agentSock != "":
		conn, err := net.Dial("unix", agentSock)
		if err != nil {
			return nil, nil, fmt.Errorf("ssh-agent at SSH_AUTH_SOCK=%s: %w", agentSock, err)
		}
		auth = append(auth, ssh.PublicKeysCallback(agent.NewClient(conn).Signers))
		closeAgent = func() { conn.Close() }
	}
	if password != "" {
		auth = append(auth, source.PasswordAuth(password)...)
	}
	if len(auth) == 0 {
		return nil, nil, fmt.Errorf("no way to log on: set ssh-identity to a key file, start an ssh-agent (SSH_AUTH_SOCK) or give a password: %w", source.ErrAuth)
	}
	return auth, closeAgent, nil
}

// pinnedHostKey accepts only a host key that the OpenSSH known_hosts
// file pins for addr ("[host]:port" entries, hashed ones included). It
// also returns the key types pinned for addr, so the server is asked
// for a key of a pinned type rather than its first choice.
//
// An unknown or different key fails the handshake before any credential
// is sent, with the fingerprint and the command that pins the key.
func pinnedHostKey(file, addr string) (ssh.HostKeyCallback, []string, error) {
	host, port, _ := net.SplitHostPort(addr)
	pin := fmt.Sprintf("ssh-keyscan -p %s %s >> %s", port, host, file)
	check, err := knownhosts.New(file)
	if errors.Is(err, fs.ErrNotExist) {
		check = func(string, net.Addr, ssh.PublicKey) error { return &knownhosts.KeyError{} }
	} else if err != nil {
		return nil, nil, fmt.Errorf("known hosts: %w", err)
	}
	cb := func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		err := check(hostname, remote, key)
		var ke *knownhosts.KeyError
		var re *knownhosts.RevokedError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &re):
			return fmt.Errorf("%s presented %s %s, which %s:%d marks as revoked: %w",
				addr, key.Type(), ssh.FingerprintSHA256(key), re.Revoked.Filename, re.Revoked.Line, source.ErrHostKeyMismatch)
		case errors.As(err, &ke) && len(ke.Want) == 0:
			hk := &source.HostKeyError{Addr: addr, KeyType: key.Type(), Fingerprint: ssh.FingerprintSHA256(key)}
			return fmt.Errorf("%w is not pinned in %s: compare it with the server's (ssh-keygen -lf /etc/ssh/ssh_host_%s_key.pub there), then pin it with: %s",
				hk, file, keyFileType(key.Type()), pin)
		case errors.As(err, &ke):
			return fmt.Errorf("%s presented %s %s, not the key pinned at %s:%d: %w; if the server's key was changed on purpose, remove the old one (ssh-keygen -R '%s' -f %s) and pin the new one with: %s",
				addr, key.Type(), ssh.FingerprintSHA256(key), ke.Want[0].Filename, ke.Want[0].Line, source.ErrHostKeyMismatch, knownhosts.Normalize(addr), file, pin)
		}
		return fmt.Errorf("known hosts %s: %w", file, err)
	}
	return cb, pinnedAlgorithms(check, addr), nil
}

// pinnedAlgorithms lists the host key algorithms of the keys pinned for
// addr first, then the others, as OpenSSH's ssh does: a server with
// several host keys then presents the pinned one, and one whose key is
// of another type still gets to present it and fail as a mismatch
// rather than as "no common algorithm". knownhosts has no lookup; a
// check with a key that cannot be pinned (a fresh one) returns the
// pinned keys in its KeyError.
func pinnedAlgorithms(check ssh.HostKeyCallback, addr string) []string {
	all := ssh.SupportedAlgorithms().HostKeys
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return all
	}
	probe, err := ssh.NewPublicKey(pub)
	if err != nil {
		return all
	}
	var ke *knownhosts.KeyError
	if !errors.As(check(addr, &net.TCPAddr{}, probe), &ke) {
		return all
	}
	var algos []string
	for _, k := range ke.Want {
		switch t := k.Key.Type(); t {
		case ssh.KeyAlgoRSA: // one key type, three signature algorithms
			algos = append(algos, ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA)
		default:
			algos = append(algos, t)
		}
	}
	for _, a := range all {
		if !slices.Contains(algos, a) {
			algos = append(algos, a)
		}
	}
	return algos
}

// keyFileType is the part of /etc/ssh/ssh_host_*_key.pub that holds a
// key of type t.
func keyFileType(t string) string {
	switch {
	case strings.Contains(t, "ed25519"):
		return "ed25519"
	case strings.HasPrefix(t, "ecdsa"):
		return "ecdsa"
	}
	return "rsa"
}

// sftpClient adapts pkg/sftp's client to remoteClient. The connection
// is source.DialSSH's: a server that dies mid-upload fails the write in
// about 30 s instead of hanging it.
type sftpClient struct {
	c   *sftp.Client
	ssh *ssh.Client
}

func (c sftpClient) MkdirAll(p string) error             { return c.c.MkdirAll(p) }
func (c sftpClient) Lstat(p string) (fs.FileInfo, error) { return c.c.Lstat(p) }
func (c sftpClient) Rename(oldp, newp string) error      { return c.c.Rename(oldp, newp) }
func (c sftpClient) Remove(p string) error               { return c.c.Remove(p) }

func (c sftpClient) RemoveAll(p string) error { return c.c.RemoveAll(p) }

// Close ends the sftp session, then the connection; a connection that
// died already is closed.
func (c sftpClient) Close() error {
	err := c.c.Close()
	if e := c.ssh.Close(); !errors.Is(e, net.ErrClosed) {
		err = errors.Join(err, e)
	}
	return err
}

// Create starts an upload that runs in a goroutine fed from a pipe by
// pkg/sftp's ReadFromWithConcurrency: it keeps many write requests in
// flight, whatever the size of the caller's writes (one request per
// Write, waiting for its answer, is a few MB/s on a LAN).
func (c sftpClient) Create(p string) (remoteWriter, error) {
	f, err := c.c.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	w := &sftpWriter{f: f, pw: pw, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		_, w.copyErr = f.ReadFromWithConcurrency(pr, 0)
		// A failed upload stops the caller's next Write.
		pr.CloseWithError(cmpOr(w.copyErr, io.ErrClosedPipe))
	}()
	return w, nil
}

func cmpOr(err, def error) error {
	if err != nil {
		return err
	}
	return def
}

type sftpWriter struct {
	f       *sftp.File
	pw      *io.PipeWriter
	done    chan struct{}
	copyErr error // valid after done
}

func (w *sftpWriter) Write(p []byte) (int, error) {
	n, err := w.pw.Write(p)
	if err != nil {
		<-w.done
		return n, cmpOr(w.copyErr, err)
	}
	return n, nil
}

// Close waits for the upload, then has the server fsync the file
// (fsync@openssh.com; servers without it only promise the write).
func (w *sftpWriter) Close() error {
	w.pw.Close()
	<-w.done
	err := w.copyErr
	var st *sftp.StatusError
	if err == nil {
		if err = w.f.Sync(); errors.As(err, &st) && st.FxCode() == sftp.ErrSSHFxOpUnsupported {
			err = nil
		}
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	return err
}

var errAborted = errors.New("upload aborted")

func (w *sftpWriter) Abort() {
	w.pw.CloseWithError(errAborted)
	<-w.done
	w.f.Close()
}
