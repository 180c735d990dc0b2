package store

import (
	"context"
	"fmt"
	"net/url"
)

// openSFTP opens sftp://user@host[:port]/path. Not written yet.
func openSFTP(_ context.Context, u *url.URL, _ Options) (Store, error) {
	return nil, fmt.Errorf("backup folder %s: %w", u.Redacted(), ErrUnsupported)
}
