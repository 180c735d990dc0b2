package config

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/pibackup/pibackup/internal/store"
)

// StoreOptions are what store.Open needs besides BACKUPDIR to open a
// server. The SMB password and the S3 secret key are read from
// smb-password-file and s3.secret-key-file, which others must not be
// able to read (ErrInsecure, as for a config file holding a secret).
func (c *Config) StoreOptions(log *slog.Logger) (store.Options, error) {
	o := store.Options{SSHIdentity: c.SSHIdentity, SSHKnownHosts: c.SSHKnownHosts, Log: log}
	var err error
	if c.SMBPasswordFile != "" {
		if o.Password, err = readSecretFile("smb-password-file", c.SMBPasswordFile, "password"); err != nil {
			return o, err
		}
	}
	o.S3, err = c.S3Options()
	return o, err
}

// S3Options are the s3.* settings, with the secret key read from
// s3.secret-key-file; an empty name leaves the key to
// AWS_SECRET_ACCESS_KEY (store.Open falls back to the AWS variables).
// The key is never a setting of its own: every setting is a flag too,
// and a flag shows in ps and the shell history.
func (c *Config) S3Options() (store.S3Options, error) {
	o := store.S3Options{Endpoint: c.S3Endpoint, Region: c.S3Region, AccessKey: c.S3AccessKey, PathStyle: c.S3PathStyle}
	if c.S3SecretKeyFile == "" {
		return o, nil
	}
	var err error
	o.SecretKey, err = readSecretFile("s3.secret-key-file", c.S3SecretKeyFile, "secret key")
	return o, err
}

// readSecretFile returns the first line of the secret file path named by
// the setting key: only the first line counts, so an editor's newline is
// no part of the secret.
func readSecretFile(key, path, what string) (string, error) {
	b, mode, err := readFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", key, err)
	}
	if mode.Perm()&0o077 != 0 {
		return "", fmt.Errorf("%w: %s %s has mode %04o; run: chmod 600 %s", ErrInsecure, key, path, mode.Perm(), path)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	line = strings.TrimSuffix(line, "\r")
	if line == "" {
		return "", fmt.Errorf("%s %s: the first line is empty; it must hold the %s", key, path, what)
	}
	return line, nil
}
