package restore

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pibackup/pibackup/internal/blockdev"
)

// TestInspectTargetErrors: a refused image file says what is wrong with a
// sentinel the CLI and the recovery UI turn into their own hint; the
// engine names no command-line flag.
func TestInspectTargetErrors(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]string{
		"new file without a size":   filepath.Join(dir, "new.img"),
		"empty file without a size": filepath.Join(dir, "empty.img"),
	}
	if f, err := os.Create(cases["empty file without a size"]); err != nil {
		t.Fatal(err)
	} else {
		f.Close()
	}
	for name, path := range cases {
		_, err := inspectTarget(blockdev.Host(), path, 0, nil)
		if !errors.Is(err, ErrNoSize) || !errors.Is(err, ErrTarget) {
			t.Errorf("%s: %v; want ErrNoSize and ErrTarget", name, err)
		} else if strings.Contains(err.Error(), "--") {
			t.Errorf("%s: %v names a flag", name, err)
		}
	}
}
