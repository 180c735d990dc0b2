package config

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/pibackup/pibackup/internal/store"
)

// StoreOptions are what store.Open needs besides BACKUPDIR to open a
// server. The SMB password is read from smb-password-file, which others
// must not be able to read (ErrInsecure, as for a config file holding a
// secret); only its first line counts, so an editor's newline is no
// part of the password.
func (c *Config) StoreOptions(log *slog.Logger) (store.Options, error) {
	o := store.Options{SSHIdentity: c.SSHIdentity, SSHKnownHosts: c.SSHKnownHosts, Log: log}
	if c.SMBPasswordFile == "" {
		return o, nil
	}
	b, mode, err := readFile(c.SMBPasswordFile)
	if err != nil {
		return o, fmt.Errorf("smb-password-file: %w", err)
	}
	if mode.Perm()&0o077 != 0 {
		return o, fmt.Errorf("%w: smb-password-file %s has mode %04o; run: chmod 600 %s", ErrInsecure, c.SMBPasswordFile, mode.Perm(), c.SMBPasswordFile)
	}
	pw, _, _ := strings.Cut(string(b), "\n")
	o.Password = strings.TrimSuffix(pw, "\r")
	if o.Password == "" {
		return o, fmt.Errorf("smb-password-file %s: the first line is empty; it must hold the password", c.SMBPasswordFile)
	}
	return o, nil
}
