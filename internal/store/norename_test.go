package store_test

import (
	"context"
	"testing"

	"github.com/pibackup/pibackup/internal/store"
	"github.com/pibackup/pibackup/internal/store/storetest"
)

// TestNoRename: the wrapper the engine's manifest-last tests use is a
// store like any other, one that cannot rename.
func TestNoRename(t *testing.T) {
	d, err := store.Open(context.Background(), t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st := storetest.NoRename(d)
	if st.Local() != "" || st.CanRename() {
		t.Fatalf("NoRename: Local %q CanRename %v", st.Local(), st.CanRename())
	}
	storetest.Run(t, st)
}
