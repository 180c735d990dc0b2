package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestStoreOptions(t *testing.T) {
	pwFile := filepath.Join(t.TempDir(), "smb.pw")
	c := Defaults()
	c.SSHIdentity, c.SSHKnownHosts = "/root/.ssh/id_backup", "/etc/backupctl/known_hosts"
	o, err := c.StoreOptions(nil)
	if err != nil || o.SSHIdentity != c.SSHIdentity || o.SSHKnownHosts != c.SSHKnownHosts || o.Password != "" {
		t.Fatalf("StoreOptions() = %+v, %v", o, err)
	}
	c.SMBPasswordFile = pwFile
	if _, err := c.StoreOptions(nil); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing password file: %v", err)
	}
	if err := os.WriteFile(pwFile, []byte("s3cret pw\r\nsecond line\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := c.StoreOptions(nil); !errors.Is(err, ErrInsecure) {
		t.Fatalf("password file others can read: %v; want ErrInsecure", err)
	}
	if err := os.Chmod(pwFile, 0o600); err != nil {
		t.Fatal(err)
	}
	if o, err := c.StoreOptions(nil); err != nil || o.Password != "s3cret pw" {
		t.Fatalf("StoreOptions() password %q, %v; want the first line", o.Password, err)
	}
	if err := os.WriteFile(pwFile, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := c.StoreOptions(nil); err == nil {
		t.Fatal("an empty password file was accepted")
	}
}
