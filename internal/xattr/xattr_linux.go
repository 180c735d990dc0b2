// Package xattr reads extended attributes without following symlinks. The
// listing writer (treelist) and the test-tree comparer (testfs) both need
// the same two reads, with the same retry when an attribute grows between
// the size probe and the read.
package xattr

import (
	"errors"
	"io/fs"
	"strings"

	"golang.org/x/sys/unix"
)

// List gives the names of p's xattrs (unsorted). A filesystem without
// xattr support gives no names and no error: there is nothing to keep.
func List(p string) ([]string, error) {
	for {
		n, err := unix.Llistxattr(p, nil)
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		if err != nil {
			return nil, &fs.PathError{Op: "llistxattr", Path: p, Err: err}
		}
		if n == 0 {
			return nil, nil
		}
		buf := make([]byte, n)
		n, err = unix.Llistxattr(p, buf)
		if errors.Is(err, unix.ERANGE) {
			continue // grew since the probe
		}
		if err != nil {
			return nil, &fs.PathError{Op: "llistxattr", Path: p, Err: err}
		}
		var names []string
		for _, s := range strings.Split(string(buf[:n]), "\x00") {
			if s != "" {
				names = append(names, s)
			}
		}
		return names, nil
	}
}

// Get gives the value of p's xattr name.
func Get(p, name string) ([]byte, error) {
	for {
		n, err := unix.Lgetxattr(p, name, nil)
		if err != nil {
			return nil, &fs.PathError{Op: "lgetxattr " + name, Path: p, Err: err}
		}
		v := make([]byte, n)
		n, err = unix.Lgetxattr(p, name, v)
		if errors.Is(err, unix.ERANGE) {
			continue // grew since the probe
		}
		if err != nil {
			return nil, &fs.PathError{Op: "lgetxattr " + name, Path: p, Err: err}
		}
		return v[:n], nil
	}
}
