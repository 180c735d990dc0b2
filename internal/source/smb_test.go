package source_test

import (
	"context"
	"errors"
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

func TestSMBErrors(t *testing.T) {
	testfs.Require(t, "smb")
	dir := t.TempDir()
	if err := sourcetest.Write(dir); err != nil {
		t.Fatal(err)
	}
	s := testsrv.StartSMB(t, dir)
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
