package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/cloudsoda/go-smb2"

	"github.com/pibackup/pibackup/internal/source"
)

// smbWriteBuffer gathers a compressor's small writes into requests of
// this size: go-smb2 waits for each write's answer before the next.
const smbWriteBuffer = 4 << 20

// openSMB opens smb://user@host[:port]/share/path with Options.Password
// (or the URL's), over source.DialSMBShare's connection. The folder must
// exist. SMB has no unix owners or modes: a store needs none, the
// payloads carry them.
func openSMB(ctx context.Context, u *url.URL, o Options) (Store, error) {
	shown := (&url.URL{Scheme: u.Scheme, User: userOnly(u), Host: u.Host, Path: u.Path}).String()
	shareName, dir, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	if shareName == "" {
		return nil, fmt.Errorf("backup folder %s: no share (smb://USER@HOST/SHARE/PATH)", shown)
	}
	port := u.Port()
	if port == "" {
		port = strconv.Itoa(source.DefaultSMBPort)
	}
	password := o.Password
	if pw, ok := u.User.Password(); ok && password == "" {
		password = pw
	}
	addr := net.JoinHostPort(u.Hostname(), port)
	session, share, err := source.DialSMBShare(ctx, addr, u.User.Username(), password, shareName)
	if err != nil {
		if errors.Is(err, source.ErrAuth) && password == "" {
			err = fmt.Errorf("%w; no password given: set smb-password-file", err)
		}
		return nil, fmt.Errorf("backup folder %s: %w", shown, err)
	}
	root := path.Clean("/" + dir)[1:]
	if root == "" {
		root = "."
	}
	c := smbClient{session, share}
	fi, err := share.Stat(source.SMBPath(root))
	if err == nil && !fi.IsDir() {
		err = errors.New("not a folder")
	}
	if err != nil {
		_ = c.Close()
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("backup folder %s: %w: create the folder on the share first", shown, source.ErrNotFound)
		}
		return nil, fmt.Errorf("backup folder %s: %w", shown, err)
	}
	return &remote{url: shown, c: c, mapErr: source.SMBErr, fsys: source.NewSMBFS(share, source.SMBPath(root)),
		path: func(name string) string { return source.SMBPath(path.Join(root, name)) }}, nil
}

// smbClient adapts go-smb2's share to remoteClient.
type smbClient struct {
	session *smb2.Session
	share   *smb2.Share
}

func (c smbClient) MkdirAll(p string) error             { return c.share.MkdirAll(p, 0o755) }
func (c smbClient) Lstat(p string) (fs.FileInfo, error) { return c.share.Lstat(p) }
func (c smbClient) Rename(oldp, newp string) error      { return c.share.Rename(oldp, newp) }
func (c smbClient) RemoveAll(p string) error            { return c.share.RemoveAll(p) }
func (c smbClient) Remove(p string) error               { return c.share.Remove(p) }

func (c smbClient) Close() error { return errors.Join(c.share.Umount(), c.session.Logoff()) }

// Create opens with FILE_CREATE: the server refuses an existing name.
func (c smbClient) Create(p string) (remoteWriter, error) {
	f, err := c.share.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	return &smbWriter{Writer: bufio.NewWriterSize(f, smbWriteBuffer), f: f}, nil
}

type smbWriter struct {
	*bufio.Writer
	f *smb2.File
}

// Close writes the rest and has the server flush the file to its disk.
func (w *smbWriter) Close() error {
	err := w.Flush()
	if err == nil {
		err = w.f.Sync()
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	return err
}

func (w *smbWriter) Abort() { _ = w.f.Close() }
