// Package s3fs is a folder in an S3-compatible bucket (AWS, MinIO,
// Garage, Ceph RGW, versitygw ...) seen as files: an fs.FS that reads
// with ranged GETs, uploads that make an object visible only when they
// complete, and removal of a folder. backupctl writes sets through it
// (internal/store's s3:// store) and the recovery reads them (its s3://
// source); it imports neither, so both can use it.
//
// Folders are key prefixes ending in "/": they exist while an object
// lies below them. The client is minio-go: of the two well-kept S3
// libraries it adds the least to the recovery binary (see the commit
// that added it).
package s3fs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Config is how to reach the server. Empty fields are taken from the
// usual AWS variables (see FromEnv).
type Config struct {
	// Endpoint is the server's URL, http:// or https:// with an optional
	// port ("https://minio.lan:9000"); "" is AWS itself.
	Endpoint  string
	Region    string
	AccessKey string
	SecretKey string
	// PathStyle addresses the bucket in the path (MinIO, Garage and most
	// servers on a LAN); otherwise the client picks: the host name on
	// AWS, the path elsewhere.
	PathStyle bool
	// Transport is the HTTP transport; nil is a default one.
	Transport http.RoundTripper
	Log       *slog.Logger
}

// FromEnv fills empty fields of c from AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, AWS_REGION (AWS_DEFAULT_REGION) and
// AWS_ENDPOINT_URL_S3 (AWS_ENDPOINT_URL), read through getenv.
func (c Config) FromEnv(getenv func(string) string) Config {
	first := func(v string, keys ...string) string {
		for _, k := range keys {
			if v != "" {
				return v
			}
			v = getenv(k)
		}
		return v
	}
	c.AccessKey = first(c.AccessKey, "AWS_ACCESS_KEY_ID")
	c.SecretKey = first(c.SecretKey, "AWS_SECRET_ACCESS_KEY")
	c.Region = first(c.Region, "AWS_REGION", "AWS_DEFAULT_REGION")
	c.Endpoint = first(c.Endpoint, "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
	return c
}

var (
	// ErrAuth: the server refused the access key or the signature.
	ErrAuth = errors.New("the S3 server refused the credentials: check the access key and the secret key")
	// ErrNoBucket: the bucket does not exist.
	ErrNoBucket = errors.New("no such bucket: create it on the server first (backupctl makes no buckets)")
	// ErrUnreachable: no answer from the endpoint.
	ErrUnreachable = errors.New("S3 server unreachable: check the endpoint, the port and that the network is up")
)

// Bucket is the folder prefix in bucket, opened.
type Bucket struct {
	core   *minio.Core
	bucket string
	prefix string // "" or ending in "/"
	desc   string
	log    *slog.Logger
}

// ParseURL splits s3://bucket/prefix.
func ParseURL(u *url.URL) (bucket, prefix string, err error) {
	if u.Scheme != "s3" || u.Host == "" {
		return "", "", fmt.Errorf("%s: want s3://bucket/prefix", u.Redacted())
	}
	if u.User != nil || u.Port() != "" || u.RawQuery != "" {
		return "", "", fmt.Errorf("%s: an s3:// URL is s3://bucket/prefix; the endpoint, region and keys are settings", u.Redacted())
	}
	prefix = strings.Trim(u.Path, "/")
	if prefix != "" && !fs.ValidPath(prefix) {
		return "", "", fmt.Errorf("%s: the prefix is not a clean path", u.Redacted())
	}
	return u.Host, prefix, nil
}

// Open connects to the server and checks that bucket exists and the
// credentials are good. prefix is a folder in the bucket ("" is the
// bucket's top).
func Open(ctx context.Context, bucket, prefix string, c Config) (*Bucket, error) {
	desc := "s3://" + path.Join(bucket, prefix)
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	host, secure := "s3.amazonaws.com", true
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return nil, fmt.Errorf("%s: endpoint %q: want http://host[:port] or https://host[:port]", desc, c.Endpoint)
		}
		host, secure = u.Host, u.Scheme == "https"
		if c.Region == "" {
			// Servers on a LAN have one region; asking for the bucket's
			// location first would cost a request per run.
			c.Region = "us-east-1"
		}
	}
	if c.AccessKey == "" || c.SecretKey == "" {
		return nil, fmt.Errorf("%s: no access key or secret key (set s3-access-key and s3-secret-key-file, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY): %w", desc, ErrAuth)
	}
	lookup := minio.BucketLookupAuto
	if c.PathStyle {
		lookup = minio.BucketLookupPath
	}
	core, err := minio.NewCore(host, &minio.Options{
		Creds:        credentials.NewStaticV4(c.AccessKey, c.SecretKey, ""),
		Secure:       secure,
		Region:       c.Region,
		BucketLookup: lookup,
		Transport:    c.Transport,
		// Parts are retried by Upload itself; a few client retries
		// cover a dropped connection on the other requests without
		// stalling for long when the server is gone.
		MaxRetries: 3,
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", desc, err)
	}
	b := &Bucket{core: core, bucket: bucket, desc: desc, log: c.Log}
	if prefix != "" {
		b.prefix = strings.Trim(prefix, "/") + "/"
	}
	// A listing, not HEAD bucket: a HEAD answer has no body, so servers'
	// "unknown access key" and "no such bucket" can look alike.
	if _, err := core.ListObjectsV2(bucket, b.prefix, "", "", "/", 1); err != nil {
		return nil, b.wrap("open", "", fmt.Errorf("at %s: %w", host, err))
	}
	return b, nil
}

// String is the bucket and prefix as an s3:// URL (never a secret).
func (b *Bucket) String() string { return b.desc }

// key is the object key of name, a path relative to the prefix.
func (b *Bucket) key(name string) string {
	if name == "." {
		return b.prefix
	}
	return b.prefix + name
}

// wrap turns a minio error into one that says what failed and wraps a
// sentinel callers test for: fs.ErrNotExist, fs.ErrExist, ErrAuth,
// ErrNoBucket or ErrUnreachable.
func (b *Bucket) wrap(op, name string, err error) error {
	if err == nil {
		return nil
	}
	where := b.desc
	if name != "" {
		where = b.desc + "/" + name
	}
	var kind error
	var resp minio.ErrorResponse
	errors.As(err, &resp)
	switch resp.Code {
	case "NoSuchKey", "NotFound", "NoSuchUpload":
		kind = fs.ErrNotExist
	case "PreconditionFailed":
		kind = fs.ErrExist
	case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken",
		"XAdminUserNotFound": // versitygw's answer to an unknown access key
		kind = ErrAuth
	case "NoSuchBucket":
		kind = ErrNoBucket
	case "":
		var ue *url.Error
		if errors.As(err, &ue) {
			kind = ErrUnreachable
		}
	default:
		switch resp.StatusCode {
		case http.StatusForbidden:
			kind = ErrAuth
		case http.StatusNotFound:
			kind = fs.ErrNotExist
		}
	}
	if kind == nil {
		return fmt.Errorf("%s %s: %w", op, where, err)
	}
	return fmt.Errorf("%s %s: %w (%w)", op, where, kind, err)
}
