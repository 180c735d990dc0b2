package xattr

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

func TestListGet(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if names, err := List(p); err != nil || len(names) != 0 {
		t.Fatalf("List of a file without xattrs = %q, %v; want none", names, err)
	}
	big := make([]byte, 3000) // larger than a first guess would be
	for i := range big {
		big[i] = byte(i)
	}
	want := map[string][]byte{"user.a": []byte("1"), "user.empty": {}, "user.big": big}
	for n, v := range want {
		if err := unix.Lsetxattr(p, n, v, 0); err != nil {
			t.Fatalf("set %s: %v", n, err)
		}
	}
	names, err := List(p)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"user.a", "user.big", "user.empty"}) {
		t.Fatalf("List = %q", names)
	}
	for n, v := range want {
		got, err := Get(p, n)
		if err != nil || !slices.Equal(got, v) {
			t.Errorf("Get %s = %d bytes, %v; want %d bytes", n, len(got), err, len(v))
		}
	}

	// A symlink is not followed: its own (absent) xattrs are read.
	l := filepath.Join(dir, "l")
	if err := os.Symlink("f", l); err != nil {
		t.Fatal(err)
	}
	if names, err := List(l); err != nil || len(names) != 0 {
		t.Errorf("List of a symlink = %q, %v; want none", names, err)
	}
	if _, err := Get(p, "user.missing"); !errors.Is(err, unix.ENODATA) {
		t.Errorf("Get of a missing xattr: %v, want ENODATA", err)
	}
}
