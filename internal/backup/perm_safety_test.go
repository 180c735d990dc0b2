package backup

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestExposureWarning(t *testing.T) {
	base := t.TempDir()
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	// t.TempDir's parents may be private on some systems; only judge
	// the cases when every parent is searchable by others.
	open := true
	for d := filepath.Dir(base); d != filepath.Dir(d); d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err != nil || fi.Mode().Perm()&0o001 == 0 {
			open = false
		}
	}
	for _, tt := range []struct {
		mode os.FileMode
		want string // substring of the warning; "" no warning
	}{
		{0o700, ""},
		{0o750, ""},
		{0o755, "list and read"},
		{0o711, "whose names they know"},
		{0o777, "chmod 700"},
	} {
		dir := filepath.Join(base, tt.mode.String())
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, tt.mode); err != nil {
			t.Fatal(err)
		}
		got, err := ExposureWarning(dir)
		if err != nil {
			t.Fatal(err)
		}
		want := tt.want
		if !open {
			want = ""
		}
		if (want == "") != (got == "") || !strings.Contains(got, want) {
			t.Errorf("ExposureWarning(%04o dir) = %q; want a warning containing %q", tt.mode, got, want)
		}
	}
	// A private parent hides an open target.
	if err := os.Chmod(base, 0o700); err != nil {
		t.Fatal(err)
	}
	if got, _ := ExposureWarning(filepath.Join(base, os.FileMode(0o777).String())); got != "" {
		t.Errorf("ExposureWarning under a 0700 parent = %q; want none", got)
	}
	if _, err := ExposureWarning(filepath.Join(base, "missing")); err == nil {
		t.Error("ExposureWarning of a missing folder: no error")
	}
}
