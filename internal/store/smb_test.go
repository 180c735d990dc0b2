package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pibackup/pibackup/internal/source"
	"github.com/pibackup/pibackup/internal/store"
	"github.com/pibackup/pibackup/internal/testfs"
	"github.com/pibackup/pibackup/internal/testsrv"
)

// startSMB shares a new folder with a real Samba smbd (a few seconds).
func startSMB(t testing.TB) (*testsrv.SMB, string) {
	t.Helper()
	testfs.Require(t, "smb")
	dir := t.TempDir()
	return testsrv.StartSMB(t, dir), dir
}

func smbURL(s *testsrv.SMB, sub string) string {
	return fmt.Sprintf("smb://%s@127.0.0.1:%d/%s%s", s.User, s.Port, s.Share, sub)
}

func openSMB(t testing.TB, s *testsrv.SMB, sub string) store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), smbURL(s, sub), store.Options{Password: s.Password})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestSMB(t *testing.T) {
	s, dir := startSMB(t)
	if err := os.Mkdir(filepath.Join(dir, "pis"), 0o755); err != nil {
		t.Fatal(err)
	}
	st := openSMB(t, s, "/pis")
	if strings.Contains(st.String(), s.Password) {
		t.Errorf("String() = %q shows the password", st.String())
	}
	runRemote(t, st, smbURL(s, "/pis"), filepath.Join(dir, "pis"))
}

func TestSMBErrors(t *testing.T) {
	s, _ := startSMB(t)
	open := func(u, password string) error {
		return tryOpen(u, store.Options{Password: password})
	}
	if err := open(smbURL(s, ""), s.Password); err != nil {
		t.Errorf("the share's top folder: %v", err)
	}
	err := open(smbURL(s, ""), "wrong-pw")
	if !errors.Is(err, source.ErrAuth) || strings.Contains(err.Error(), "wrong-pw") {
		t.Errorf("wrong password: %v; want ErrAuth without the password", err)
	}
	if err := open(smbURL(s, ""), ""); !errors.Is(err, source.ErrAuth) || !strings.Contains(err.Error(), "smb-password-file") {
		t.Errorf("no password: %v; want ErrAuth and advice", err)
	}
	if err := open(fmt.Sprintf("smb://%s@127.0.0.1:%d/nope", s.User, s.Port), s.Password); !errors.Is(err, source.ErrNotFound) {
		t.Errorf("missing share: %v; want ErrNotFound", err)
	}
	if err := open(smbURL(s, "/nope"), s.Password); !errors.Is(err, source.ErrNotFound) {
		t.Errorf("missing folder: %v; want ErrNotFound", err)
	}
	if err := open(fmt.Sprintf("smb://%s@127.0.0.1:%d", s.User, s.Port), s.Password); err == nil || !strings.Contains(err.Error(), "no share") {
		t.Errorf("no share: %v", err)
	}
}

func TestSMBServerStopped(t *testing.T) {
	s, dir := startSMB(t)
	serverStopped(t, openSMB(t, s, ""), dir, s.Stop)
}

// BenchmarkSMBWrite measures uploads to 127.0.0.1 in the odd-sized
// writes a compressor makes: go test -bench SMBWrite -benchtime 1x.
func BenchmarkSMBWrite(b *testing.B) {
	s, _ := startSMB(b)
	benchWrite(b, openSMB(b, s, ""))
}
