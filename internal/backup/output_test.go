package backup

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/pibackup/pibackup/internal/store"
)

// TestCreateOutRefusesNamesOutside: the writer of set files takes only
// file names in the set folder, the names readers accept in a manifest;
// a name with "..", "/" or an absolute path creates nothing anywhere.
func TestCreateOutRefusesNamesOutside(t *testing.T) {
	base := t.TempDir()
	set := filepath.Join(base, "set")
	if err := os.Mkdir(set, 0o755); err != nil {
		t.Fatal(err)
	}
	st, err := store.OpenDir(base)
	if err != nil {
		t.Fatal(err)
	}
	r := &runner{st: st, tmpRel: "set"}
	ctx := context.Background()
	for _, rel := range []string{"../escaped", "sub/../../escaped", filepath.Join(base, "escaped"), "sub/file", "", "."} {
		o, err := r.createOut(ctx, rel, 0o600, false)
		if err == nil {
			o.Abort()
			t.Errorf("createOut(%q) succeeded", rel)
		}
	}
	for _, dir := range []string{base, set} {
		es, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if e.Name() != "set" {
				t.Errorf("%s holds %s after the refused names", dir, e.Name())
			}
		}
	}
	o, err := r.createOut(ctx, "pi-backup.img", 0o600, false)
	if err != nil {
		t.Fatalf("createOut of a set file name: %v", err)
	}
	o.Abort()
}
