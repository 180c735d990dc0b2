package restore

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRestoreHostileTar restores copies of the fixture's backupctl tgz
// set whose archive starts with members made to write outside the
// target, re-signed (the manifest gets the new size and SHA-256, so only
// the structure of the archive can give them away): a "../" member, an
// absolute one, a symlink to a host folder followed by a file below it,
// and a hardlink to an absolute host path. GNU tar refuses the first,
// third and fourth; the absolute name it strips and extracts inside the
// target, which the restore refuses after the fact (it reads GNU tar's
// warning). Each restore must fail with a message naming the problem,
// leave the target marked incomplete without a partition table, and
// leave a canary folder on the host, which every member aims at,
// untouched.
func TestRestoreHostileTar(t *testing.T) {
	fx := getFixture(t)
	for _, c := range []struct {
		name    string
		members func(canary string) []*tar.Header
		wantMsg string
	}{
		{"dot-dot member", func(canary string) []*tar.Header {
			// The restore extracts into a folder in $TMPDIR, set to a
			// folder next to the canary below: "../../canary" is the canary.
			return []*tar.Header{{Name: "../../canary/pwned", Typeflag: tar.TypeReg, Mode: 0o644, Size: 6}}
		}, "Member name contains '..'"},
		{"absolute member", func(canary string) []*tar.Header {
			return []*tar.Header{{Name: filepath.Join(canary, "pwned"), Typeflag: tar.TypeReg, Mode: 0o644, Size: 6}}
		}, "absolute paths"},
		{"file below a symlink to outside", func(canary string) []*tar.Header {
			return []*tar.Header{
				{Name: "./esc", Typeflag: tar.TypeSymlink, Linkname: canary},
				{Name: "./esc/pwned", Typeflag: tar.TypeReg, Mode: 0o644, Size: 6},
			}
		}, "Cannot open: Not a directory"},
		{"absolute hardlink", func(canary string) []*tar.Header {
			return []*tar.Header{{Name: "./hl", Typeflag: tar.TypeLink, Linkname: filepath.Join(canary, "victim")}}
		}, "Cannot hard link"},
	} {
		t.Run(c.name, func(t *testing.T) {
			base := t.TempDir()
			canary := filepath.Join(base, "canary")
			if err := os.Mkdir(canary, 0o755); err != nil {
				t.Fatal(err)
			}
			victim := filepath.Join(canary, "victim")
			if err := os.WriteFile(victim, []byte("host file\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			tmp := filepath.Join(base, "tmp")
			if err := os.Mkdir(tmp, 0o755); err != nil {
				t.Fatal(err)
			}
			t.Setenv("TMPDIR", tmp) // the restore's mount folder: tmp/pibackup-mnt-*

			set := copySet(t, fx.sets["b-tgz"])
			payload := filepath.Base(set) + ".tgz"
			prependMembers(t, set, payload, c.members(canary))

			img := filepath.Join(base, "t.img")
			p, err := NewPlan(context.Background(), Options{Set: os.DirFS(set), SetName: filepath.Base(set), LocalDir: set,
				Target: img, Size: 300 << 20, Log: testLogger(t)})
			if err != nil {
				t.Fatalf("NewPlan: %v (the archive's structure is only seen while it is extracted)", err)
			}
			res, err := p.Execute(context.Background())
			t.Logf("error: %v", err)
			if err == nil {
				t.Fatal("the hostile archive restored without an error")
			}
			if !errors.Is(err, ErrIncomplete) || !res.Incomplete {
				t.Errorf("Execute = %+v, %v; want the target marked incomplete", res, err)
			}
			if !strings.Contains(err.Error(), c.wantMsg) {
				t.Errorf("error does not say %q", c.wantMsg)
			}
			noTable(t, img)
			es, err := os.ReadDir(canary)
			if err != nil {
				t.Fatal(err)
			}
			if len(es) != 1 || es[0].Name() != "victim" {
				t.Errorf("canary folder holds %v after the restore; want only victim", es)
			}
			if b, _ := os.ReadFile(victim); string(b) != "host file\n" {
				t.Errorf("host file changed: %q", b)
			}
		})
	}
}

// prependMembers rewrites the tgz payload of set with hs (regular files
// get "pwned" as content) before its members, and re-signs it in the
// manifest. GNU tar reads concatenated archives' members in order, so the
// original archive follows unchanged, end-of-archive marker included.
func prependMembers(t *testing.T, set, payload string, hs []*tar.Header) {
	t.Helper()
	p := filepath.Join(set, payload)
	orig, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(orig)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	tw := tar.NewWriter(zw)
	for _, h := range hs {
		h.Format = tar.FormatGNU
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			io.WriteString(tw, "pwned\n")
		}
	}
	if err := tw.Flush(); err != nil { // no Close: no end-of-archive marker
		t.Fatal(err)
	}
	if _, err := io.Copy(zw, zr); err != nil {
		t.Fatal(err)
	}
	orig.Close()
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	resign(t, set, payload, out.Bytes())
}
