package treelist

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// Hashes taken earlier in the listed tree itself are used for the files
// whose identity is what it was when they were hashed, checked with the
// listing's own lstat; a file changed since, or one whose recorded hash
// is stale, is read again, so the listing is byte for byte the one made
// without them.
func TestReuseHashed(t *testing.T) {
	root := t.TempDir()
	files := map[string]string{"same": "unchanged content", "changed": "before", "absent": "never hashed"}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("same", filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	identity := func(name, content string) Hashed {
		var s unix.Stat_t
		if err := unix.Lstat(filepath.Join(root, name), &s); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(content))
		return Hashed{Dev: uint64(s.Dev), Ino: s.Ino, Size: s.Size, Mtime: s.Mtim, Ctime: s.Ctim, Sum: hex.EncodeToString(sum[:])}
	}
	hashed := map[string]Hashed{"same": identity("same", files["same"]), "changed": identity("changed", files["changed"])}
	// A hash for a path that is a symlink now is not a file's hash.
	hashed["link"] = hashed["same"]
	// "changed" is rewritten with content of the same size after it was
	// hashed: only its ctime (and maybe mtime) tells.
	if err := os.WriteFile(filepath.Join(root, "changed"), []byte("after!"), 0o644); err != nil {
		t.Fatal(err)
	}

	list := func(reuse *Reuse) (string, Stats) {
		var b bytes.Buffer
		st, err := WriteOptions(context.Background(), &b, root, Options{Reuse: reuse})
		if err != nil {
			t.Fatal(err)
		}
		return b.String(), st
	}
	plain, plainSt := list(nil)
	with, withSt := list(NewReuseHashed(hashed))
	if with != plain {
		t.Errorf("listing with earlier hashes differs:\n%s\nwithout:\n%s", with, plain)
	}
	if want := int64(len("after!") + len(files["absent"])); withSt.Hashed != want {
		t.Errorf("listing read %d of %d bytes; want %d (the changed and the never hashed file)", withSt.Hashed, plainSt.Hashed, want)
	}
}
