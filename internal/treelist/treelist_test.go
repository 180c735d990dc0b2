package treelist

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestEscape(t *testing.T) {
	for _, p := range []string{"a", "a b", "tab\there", "nl\nx", `back\slash`, "ünïcode", "\x7f\x00", "x\\x41"} {
		e := Escape(p)
		if strings.ContainsAny(e, " \t\n") {
			t.Errorf("Escape(%q) = %q holds a separator", p, e)
		}
		got, err := Unescape(e)
		if err != nil || got != p {
			t.Errorf("Unescape(Escape(%q)) = %q, %v", p, got, err)
		}
	}
	for _, bad := range []string{`a\`, `a\x4`, `a\y41`, `\xzz`} {
		if _, err := Unescape(bad); err == nil {
			t.Errorf("Unescape(%q) accepted", bad)
		}
	}
}

func TestLessIsWalkOrder(t *testing.T) {
	paths := []string{"a-c", "a/b", ".", "a", "b", "a/b/c", "a.d", "a/a"}
	slices.SortFunc(paths, comparePaths)
	want := []string{".", "a", "a/a", "a/b", "a/b/c", "a-c", "a.d", "b"}
	if !slices.Equal(paths, want) {
		t.Errorf("sorted = %q; want %q", paths, want)
	}
}

func TestLineRoundTrip(t *testing.T) {
	e := Entry{Type: 'f', Mode: 0o4755, UID: 1000, GID: 33, MtimeNS: -123456789, Size: 42,
		Hash: strings.Repeat("ab", 32), Rdev: None, XattrHash: None, Link: "a b/c", Path: "x\ny"}
	got, err := ParseLine(e.String())
	if err != nil || got != e {
		t.Fatalf("ParseLine(%q) = %+v, %v; want %+v", e.String(), got, err, e)
	}
}

// TestWriteAndDiff lists a small tree, changes it in the ways a backup can
// go wrong, and checks that Diff names each change.
func TestWriteAndDiff(t *testing.T) {
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "a/b"), 0o755))
	must(os.WriteFile(filepath.Join(root, "a/b/f"), []byte("hello"), 0o644))
	must(os.WriteFile(filepath.Join(root, "a-c"), []byte("x"), 0o600))
	must(os.Link(filepath.Join(root, "a-c"), filepath.Join(root, "a/hl")))
	must(os.Symlink("../a-c", filepath.Join(root, "a/sym")))
	must(os.WriteFile(filepath.Join(root, "skip.me"), []byte("x"), 0o600))

	list := func() string {
		var b bytes.Buffer
		_, _, err := Write(&b, root, func(rel string) bool { return rel == "skip.me" })
		must(err)
		return b.String()
	}
	var b bytes.Buffer
	n, size, err := Write(&b, root, func(rel string) bool { return rel == "skip.me" })
	must(err)
	if n != 7 || size != 7 {
		t.Errorf("Write = %d entries, %d bytes; want 7, 7\n%s", n, size, b.String())
	}
	before := b.String()
	if d, err := Diff(strings.NewReader(before), strings.NewReader(list())); err != nil || d != "" {
		t.Fatalf("Diff of the same tree = %q, %v", d, err)
	}
	if !strings.Contains(before, " a/hl a-c\n") {
		t.Errorf("hardlink not recorded:\n%s", before)
	}

	must(os.Chmod(filepath.Join(root, "a/b/f"), 0o640))
	d, err := Diff(strings.NewReader(before), strings.NewReader(list()))
	if err != nil || !strings.HasPrefix(d, `"a/b/f": mode differs`) {
		t.Errorf("Diff after chmod = %q, %v", d, err)
	}
	must(os.Chmod(filepath.Join(root, "a/b/f"), 0o644))
	fi, err := os.Stat(filepath.Join(root, "a"))
	must(err)
	must(os.Remove(filepath.Join(root, "a/sym")))
	must(os.Chtimes(filepath.Join(root, "a"), fi.ModTime(), fi.ModTime()))
	d, err = Diff(strings.NewReader(before), strings.NewReader(list()))
	if err != nil || d != `"a/sym": only in a` {
		t.Errorf("Diff after remove = %q, %v", d, err)
	}
	if _, err := Diff(strings.NewReader("garbage\n"), strings.NewReader(before)); err == nil {
		t.Error("Diff accepted a listing without header")
	}
}
