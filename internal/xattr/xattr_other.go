//go:build !linux

package xattr

import (
	"errors"
	"io/fs"
)

// List is Linux-only: the listings and test trees it serves describe a
// Linux root filesystem. Elsewhere it says so instead of returning
// nothing, which would read as "no xattrs to keep".
func List(p string) ([]string, error) {
	return nil, &fs.PathError{Op: "llistxattr", Path: p, Err: errors.ErrUnsupported}
}

// Get is Linux-only; see List.
func Get(p, name string) ([]byte, error) {
	return nil, &fs.PathError{Op: "lgetxattr", Path: p, Err: errors.ErrUnsupported}
}
