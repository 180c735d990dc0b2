package config

import (
	"fmt"
	"os"
	"strings"

	"github.com/pibackup/pibackup/internal/store"
)

// S3Options are the s3.* settings for store.Open, with the secret key
// read from s3.secret-key-file. The file must not be readable by group
// or others, like a config file holding a secret; an empty name leaves
// the key to AWS_SECRET_ACCESS_KEY.
func (c *Config) S3Options() (store.S3Options, error) {
	o := store.S3Options{Endpoint: c.S3Endpoint, Region: c.S3Region, AccessKey: c.S3AccessKey, PathStyle: c.S3PathStyle}
	if c.S3SecretKeyFile == "" {
		return o, nil
	}
	fi, err := os.Stat(c.S3SecretKeyFile)
	if err != nil {
		return o, fmt.Errorf("s3.secret-key-file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return o, fmt.Errorf("s3.secret-key-file %s: mode %o lets others read the secret key; run chmod 600 %s", c.S3SecretKeyFile, fi.Mode().Perm(), c.S3SecretKeyFile)
	}
	b, err := os.ReadFile(c.S3SecretKeyFile)
	if err != nil {
		return o, fmt.Errorf("s3.secret-key-file: %w", err)
	}
	o.SecretKey = strings.TrimSpace(string(b))
	if o.SecretKey == "" {
		return o, fmt.Errorf("s3.secret-key-file %s is empty", c.S3SecretKeyFile)
	}
	return o, nil
}
