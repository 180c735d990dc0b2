package source

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/cloudsoda/go-smb2"
)

// SMB is a backup folder on an SMB 2/3 share, read in user space: the
// recovery kernels have no CIFS client.
type SMB struct {
	spec    Spec
	session *smb2.Session
	share   *smb2.Share
	fsys    *remoteFS
}

var _ Source = (*SMB)(nil)

// DialSMB logs on to the server in sp with NTLM and opens sp.Share and
// sp.Path. An empty user logs on as guest.
func DialSMB(ctx context.Context, sp Spec) (*SMB, error) {
	addr := sp.Addr()
	session, share, err := DialSMBShare(ctx, addr, sp.User, sp.Password, sp.Share)
	if err != nil {
		return nil, err
	}
	p := path.Clean(sp.Path)
	if p == "/" || p == "" {
		p = "."
	}
	p = strings.TrimPrefix(p, "/")
	fi, err := share.Stat(SMBPath(p))
	if err != nil || !fi.IsDir() {
		_ = share.Umount()
		_ = session.Logoff()
		if err == nil || errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("smb %s: folder %s in %s: %w", addr, p, sp.Share, ErrNotFound)
		}
		return nil, fmt.Errorf("smb %s: folder %s: %w", addr, p, err)
	}
	root := SMBPath(p)
	return &SMB{spec: sp, session: session, share: share, fsys: newRemoteFS(smbShare{share}, root, `\`, SMBErr)}, nil
}

// DialSMBShare logs on to the server at addr with NTLM, over a TCP
// connection that notices a dead peer (see dialTCP), and mounts share.
// An empty user logs on as guest; DOMAIN\user names a domain. A
// rejected login wraps ErrAuth, a missing share ErrNotFound. The share
// is bound to no context: each call on it runs to the end or fails.
func DialSMBShare(ctx context.Context, addr, user, password, shareName string) (*smb2.Session, *smb2.Share, error) {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	conn, err := dialTCP(ctx, addr)
	if err != nil {
		return nil, nil, fmt.Errorf("smb %s: %w (%w)", addr, ErrUnreachable, err)
	}
	if user == "" {
		user = "guest"
	}
	domain := ""
	if d, u, ok := strings.Cut(user, `\`); ok {
		domain, user = d, u
	}
	d := &smb2.Dialer{Initiator: &smb2.NTLMInitiator{User: user, Password: password, Domain: domain}}
	session, err := d.DialConn(ctx, conn, addr)
	if err != nil {
		conn.Close()
		if ntStatus(err) == statusLogonFailure || ntStatus(err) == statusAccessDenied {
			return nil, nil, fmt.Errorf("smb %s as %s: %w", addr, user, ErrAuth)
		}
		return nil, nil, fmt.Errorf("smb %s: session setup: %w", addr, err)
	}
	share, err := session.Mount(shareName)
	if err != nil {
		_ = session.Logoff()
		switch ntStatus(err) {
		case statusBadNetworkName:
			return nil, nil, fmt.Errorf("smb %s: share %q: %w", addr, shareName, ErrNotFound)
		case statusAccessDenied:
			return nil, nil, fmt.Errorf("smb %s: share %q: %w", addr, shareName, ErrAuth)
		}
		return nil, nil, fmt.Errorf("smb %s: share %q: %w", addr, shareName, err)
	}
	return session, share.WithContext(context.Background()), nil
}

// NewSMBFS is the folder root (in go-smb2's syntax, see SMBPath) of a
// share as an fs.FS that keeps the io/fs promises (see remoteFS).
func NewSMBFS(share *smb2.Share, root string) fs.FS {
	return newRemoteFS(smbShare{share}, root, `\`, SMBErr)
}

// NTSTATUS codes (MS-ERREF 2.3.1) that mean something to the user.
const (
	statusLogonFailure   = 0xC000006D
	statusAccessDenied   = 0xC0000022
	statusBadNetworkName = 0xC00000CC
)

func ntStatus(err error) uint32 {
	var re *smb2.ResponseError
	if errors.As(err, &re) {
		return re.Code
	}
	return 0
}

// SMBErr maps go-smb2's errors to the io/fs sentinels.
func SMBErr(err error) error {
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fs.ErrNotExist
	case errors.Is(err, os.ErrPermission), ntStatus(err) == statusAccessDenied:
		return fs.ErrPermission
	}
	return err
}

// smbShare adapts *smb2.Share to remote.
type smbShare struct{ s *smb2.Share }

func (s smbShare) Stat(p string) (fs.FileInfo, error)      { return s.s.Stat(p) }
func (s smbShare) ReadDir(p string) ([]fs.FileInfo, error) { return s.s.ReadDir(p) }
func (s smbShare) Open(p string) (remoteFile, error)       { return s.s.Open(p) }

// SMBPath turns an io/fs path into what go-smb2 wants ("" for the root).
func SMBPath(p string) string {
	if p == "." {
		return ""
	}
	return strings.ReplaceAll(p, "/", `\`)
}

// FS implements Source.
func (s *SMB) FS() fs.FS { return s.fsys }

// LocalDir implements Source: SMB has none.
func (s *SMB) LocalDir() string { return "" }

// Device implements Source.
func (s *SMB) Device() string { return "" }

func (s *SMB) String() string { return s.spec.String() }

// Close implements Source.
func (s *SMB) Close() error {
	if s.share == nil {
		return nil
	}
	err := s.share.Umount()
	if e := s.session.Logoff(); err == nil {
		err = e
	}
	s.share = nil
	return err
}
