package store

import (
	"context"
	"fmt"
	"net/url"
)

// openSMB opens smb://user@host/share/path. Not written yet.
func openSMB(_ context.Context, u *url.URL, _ Options) (Store, error) {
	return nil, fmt.Errorf("backup folder %s: %w", u.Redacted(), ErrUnsupported)
}
