package store

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
)

// Options are what opening a server needs besides its URL. They come
// from backupctl's settings; secrets never appear in String.
type Options struct {
	// SSHIdentity is a private key file for sftp:// (an ssh-agent at
	// SSH_AUTH_SOCK is tried when it is empty).
	SSHIdentity string
	// SSHKnownHosts is an OpenSSH known_hosts file that must pin the
	// server's host key; "" means /root/.ssh/known_hosts.
	SSHKnownHosts string
	// Password is the SMB password (or an SSH password when no key is
	// given).
	Password string
	// S3 configures s3:// stores.
	S3  S3Options
	Log *slog.Logger
}

// S3Options configures an S3-compatible server. Empty fields fall back
// to the usual AWS variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
// AWS_REGION, AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL).
type S3Options struct {
	Endpoint  string // https://minio.lan:9000; "" for AWS itself
	Region    string
	AccessKey string
	SecretKey string
	// PathStyle addresses the bucket in the path (MinIO, Garage and most
	// servers on a LAN) instead of the host name.
	PathStyle bool
}

// IsURL says whether dir names a server rather than a local folder.
func IsURL(dir string) bool {
	i := strings.Index(dir, "://")
	return i > 0 && !strings.ContainsAny(dir[:i], "/.")
}

// Open opens the backup folder dir: a local path, or
// sftp://user@host[:port]/path, smb://user@host/share/path or
// s3://bucket/prefix.
func Open(ctx context.Context, dir string, o Options) (Store, error) {
	if !IsURL(dir) {
		return OpenDir(dir)
	}
	u, err := url.Parse(dir)
	if err != nil {
		return nil, fmt.Errorf("backup folder %q: %w", Redact(dir), err)
	}
	switch u.Scheme {
	case "file":
		return OpenDir(u.Path)
	case "sftp":
		return openSFTP(ctx, u, o)
	case "smb":
		return openSMB(ctx, u, o)
	case "s3":
		return openS3(ctx, u, o)
	}
	return nil, fmt.Errorf("backup folder %s: %w: %q (use a path, sftp://, smb:// or s3://)", Redact(dir), ErrUnsupported, u.Scheme)
}

// Redact is dir with any password in it replaced, for messages.
func Redact(dir string) string {
	u, err := url.Parse(dir)
	if err != nil || u.User == nil {
		return dir
	}
	return u.Redacted()
}
