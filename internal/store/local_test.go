package store_test

import (
	"context"
	"testing"

	"github.com/pibackup/pibackup/internal/store"
	"github.com/pibackup/pibackup/internal/store/storetest"
)

func TestDir(t *testing.T) {
	st, err := store.Open(context.Background(), t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if st.Local() == "" || !st.CanRename() {
		t.Fatalf("a local folder: Local %q CanRename %v", st.Local(), st.CanRename())
	}
	storetest.Run(t, st)
}

func TestIsURL(t *testing.T) {
	for in, want := range map[string]bool{
		"/srv/backup": false, "backup": false, "./a://b": false,
		"sftp://u@h/p": true, "s3://bucket/prefix": true, "smb://u@h/share": true,
	} {
		if got := store.IsURL(in); got != want {
			t.Errorf("IsURL(%q) = %v", in, got)
		}
	}
}
