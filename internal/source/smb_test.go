package source_test

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/pibackup/pibackup/internal/source"
	"github.com/pibackup/pibackup/internal/source/sourcetest"
	"github.com/pibackup/pibackup/internal/testfs"
	"github.com/pibackup/pibackup/internal/testsrv"
)

func smbSpec(s *testsrv.SMB, path string) source.Spec {
	return source.Spec{Kind: source.KindSMB, Host: "127.0.0.1", Port: s.Port, User: s.User, Password: s.Password, Share: s.Share, Path: path}
}

func TestSMBConformance(t *testing.T) {
	testfs.Require(t, "smb")
	sourcetest.Run(t, func(t *testing.T, dir string) source.Source {
		s := testsrv.StartSMB(t, dir)
		src, err := source.DialSMB(context.Background(), smbSpec(s, "."))
		if err != nil {
			t.Fatal(err)
		}
		return src
	})
}

// startSMB shares the fixture with a real Samba smbd.
func startSMB(t *testing.T) *testsrv.SMB {
	t.Helper()
	testfs.Require(t, "smb")
	dir := t.TempDir()
	if err := sourcetest.Write(dir); err != nil {
		t.Fatal(err)
	}
	return testsrv.StartSMB(t, dir)
}

func TestSMBErrors(t *testing.T) {
	s := startSMB(t)
	ctx := context.Background()
	sub := smbSpec(s, "pi")
	src, err := source.DialSMB(ctx, sub)
	if err != nil {
		t.Fatalf("DialSMB(subfolder) = %v", err)
	}
	src.Close()
	bad := smbSpec(s, ".")
	bad.Password = "wrong"
	if _, err := source.DialSMB(ctx, bad); !errors.Is(err, source.ErrAuth) {
		t.Errorf("wrong password: %v; want ErrAuth", err)
	}
	noShare := smbSpec(s, ".")
	noShare.Share = "nope"
	if _, err := source.DialSMB(ctx, noShare); !errors.Is(err, source.ErrNotFound) {
		t.Errorf("missing share: %v; want ErrNotFound", err)
	}
	if _, err := source.DialSMB(ctx, smbSpec(s, "nope")); !errors.Is(err, source.ErrNotFound) {
		t.Errorf("missing folder: %v; want ErrNotFound", err)
	}
}

// TestSMBServerStopped: a read after the server died says the
// connection was lost, so the user knows what to do.
func TestSMBServerStopped(t *testing.T) {
	s := startSMB(t)
	src, err := source.DialSMB(context.Background(), smbSpec(s, sourcetest.Host))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	f, err := src.FS().Open(sourcetest.NewestSet + "/" + sourcetest.NewestSet + ".tgz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s.Stop(t)
	_, err = f.(io.ReaderAt).ReadAt(make([]byte, 1<<20), 0)
	if !errors.Is(err, source.ErrConnectionLost) {
		t.Fatalf("ReadAt after the server stopped: %v; want ErrConnectionLost", err)
	}
}
