package store

import (
	"context"
	"fmt"
	"net/url"
)

// openS3 opens s3://bucket/prefix. Not written yet.
func openS3(_ context.Context, u *url.URL, _ Options) (Store, error) {
	return nil, fmt.Errorf("backup folder %s: %w", u.Redacted(), ErrUnsupported)
}
