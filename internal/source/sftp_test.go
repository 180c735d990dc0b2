package source_test

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/pibackup/pibackup/internal/source"
	"github.com/pibackup/pibackup/internal/source/sourcetest"
	"github.com/pibackup/pibackup/internal/testfs"
	"github.com/pibackup/pibackup/internal/testsrv"
)

// startSSHD starts a real OpenSSH sshd for one test (about a second).
func startSSHD(t *testing.T) (*testsrv.SSHD, []byte) {
	t.Helper()
	testfs.Require(t, "sftp")
	s := testsrv.StartSSHD(t)
	key, err := os.ReadFile(s.KeyPath)
	if err != nil {
		t.Fatal(err)
	}
	return s, key
}

func sftpSpec(s *testsrv.SSHD, key []byte, dir string) source.Spec {
	return source.Spec{Kind: source.KindSFTP, Host: "127.0.0.1", Port: s.Port, User: s.User, Path: dir, Identity: key, KnownHost: s.Fingerprint}
}

func TestSFTPConformance(t *testing.T) {
	s, key := startSSHD(t)
	sourcetest.Run(t, func(t *testing.T, dir string) source.Source {
		src, err := source.DialSFTP(context.Background(), sftpSpec(s, key, dir))
		if err != nil {
			t.Fatal(err)
		}
		return src
	})
}

func TestSFTPErrors(t *testing.T) {
	s, key := startSSHD(t)
	dir := t.TempDir()
	if err := sourcetest.Write(dir); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	t.Run("unknown host key", func(t *testing.T) {
		sp := sftpSpec(s, key, dir)
		sp.KnownHost = ""
		sp.Identity, sp.Password = nil, "must-not-be-sent"
		_, err := source.DialSFTP(ctx, sp)
		var hk *source.HostKeyError
		if !errors.As(err, &hk) || hk.Fingerprint != s.Fingerprint || hk.KeyType != "ssh-ed25519" {
			t.Fatalf("DialSFTP() = %v; want HostKeyError with %s", err, s.Fingerprint)
		}
	})
	t.Run("pinned key as ssh-keygen prints it", func(t *testing.T) {
		sp := sftpSpec(s, key, dir)
		sp.KnownHost = "256 " + s.Fingerprint + " root@host (ED25519)"
		src, err := source.DialSFTP(ctx, sp)
		if err != nil {
			t.Fatal(err)
		}
		src.Close()
	})
	t.Run("host key mismatch", func(t *testing.T) {
		sp := sftpSpec(s, key, dir)
		sp.KnownHost = "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s"
		if _, err := source.DialSFTP(ctx, sp); !errors.Is(err, source.ErrHostKeyMismatch) {
			t.Fatalf("DialSFTP() = %v; want ErrHostKeyMismatch", err)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		sp := sftpSpec(s, key, dir)
		sp.Identity, sp.Password = nil, "wrong"
		_, err := source.DialSFTP(ctx, sp)
		if !errors.Is(err, source.ErrAuth) {
			t.Fatalf("DialSFTP() = %v; want ErrAuth", err)
		}
		if strings.Contains(err.Error(), "wrong") {
			t.Errorf("error shows the password: %v", err)
		}
	})
	t.Run("wrong user", func(t *testing.T) {
		sp := sftpSpec(s, key, dir)
		sp.User = "nobody"
		if _, err := source.DialSFTP(ctx, sp); !errors.Is(err, source.ErrAuth) {
			t.Fatalf("DialSFTP() = %v; want ErrAuth", err)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		sp := sftpSpec(s, key, dir)
		sp.Port = port
		if _, err := source.DialSFTP(ctx, sp); !errors.Is(err, source.ErrUnreachable) {
			t.Fatalf("DialSFTP() = %v; want ErrUnreachable", err)
		}
	})
	t.Run("missing folder", func(t *testing.T) {
		if _, err := source.DialSFTP(ctx, sftpSpec(s, key, dir+"/nope")); !errors.Is(err, source.ErrNotFound) {
			t.Fatalf("DialSFTP() = %v; want ErrNotFound", err)
		}
	})
	t.Run("through the Opener", func(t *testing.T) {
		var o source.Opener
		src, err := o.Open(ctx, sftpSpec(s, key, dir))
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		if src.LocalDir() != "" || src.Device() != "" || !strings.HasPrefix(src.String(), "sftp://root@127.0.0.1:") {
			t.Errorf("LocalDir %q Device %q String %q", src.LocalDir(), src.Device(), src.String())
		}
	})
}
