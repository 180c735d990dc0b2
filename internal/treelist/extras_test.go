package treelist

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// listTree writes a small tree with symlinks, xattrs and a hostile name,
// and returns its listing and extras file.
func listTree(t *testing.T) (root string, listing, extras string) {
	t.Helper()
	root = t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "a/b"), 0o755))
	must(os.WriteFile(filepath.Join(root, "a/b/f"), []byte("hello"), 0o644))
	must(os.WriteFile(filepath.Join(root, "tab\tname\n"), []byte("x"), 0o600))
	must(os.Symlink("../a b/\x01target", filepath.Join(root, "a/sym")))
	must(unix.Lsetxattr(filepath.Join(root, "a/b/f"), "user.text", []byte("a value with spaces"), 0))
	must(unix.Lsetxattr(filepath.Join(root, "a/b/f"), "user.bin", []byte{0, 1, 0xff, '\n'}, 0))
	must(unix.Lsetxattr(filepath.Join(root, "a"), "user.empty", nil, 0))
	var l, x bytes.Buffer
	if _, err := WriteOptions(context.Background(), &l, root, Options{Extras: &x}); err != nil {
		t.Fatal(err)
	}
	return root, l.String(), x.String()
}

func TestExtrasWriteRead(t *testing.T) {
	_, listing, extras := listTree(t)
	want := ExtrasHeader + "\n" +
		"x a user.empty -\n" +
		"x a/b/f user.bin 0001ff0a\n" +
		"x a/b/f user.text 612076616c7565207769746820737061636573\n" +
		`l a/sym ../a\x20b/\x01target` + "\n"
	if extras != want {
		t.Errorf("extras file =\n%s\nwant\n%s", extras, want)
	}
	if err := CheckExtras(strings.NewReader(listing), strings.NewReader(extras)); err != nil {
		t.Errorf("CheckExtras of a fresh pair: %v", err)
	}
	r := NewExtrasReader(strings.NewReader(extras))
	var got []Extra
	for {
		x, err := r.Next()
		if err != nil {
			if err.Error() != "EOF" {
				t.Fatal(err)
			}
			break
		}
		got = append(got, x)
	}
	if len(got) != 3 || got[2].Target != "../a b/\x01target" || string(got[1].Xattrs[0].Value) != "\x00\x01\xff\n" || got[0].Xattrs[0].Value != nil {
		t.Errorf("read back %+v", got)
	}
}

// TestCheckExtrasDamage: every way an extras file can disagree with its
// listing is found.
func TestCheckExtrasDamage(t *testing.T) {
	_, listing, extras := listTree(t)
	for _, c := range []struct{ name, old, new, want string }{
		{"target changed", `../a\x20b/\x01target`, `../a\x20b/\x01targeT`, "symlink target"},
		{"target missing", "l a/sym ../a\\x20b/\\x01target\n", "", "symlink without a target"},
		{"xattr value changed", "0001ff0a", "0001ff0b", "xattrs in the extras file do not match"},
		{"xattr dropped", "x a user.empty -\n", "", "xattrs in the extras file do not match"},
		{"path not listed", "l a/sym", "x a/c user.x -\nl a/sym", `"a/c": in the extras file but not in the listing`},
		{"path after the last", "l a/sym ../a\\x20b/\\x01target\n", "l a/sym ../a\\x20b/\\x01target\nx z user.x -\n", `"z": in the extras file but not in the listing`},
		{"bad hex", "0001ff0a", "0001fg0a", "bad hex"},
		{"no header", ExtrasHeader, "# something else", "want"},
	} {
		t.Run(c.name, func(t *testing.T) {
			bad := strings.Replace(extras, c.old, c.new, 1)
			if bad == extras {
				t.Fatalf("BUG: %q not in the extras file", c.old)
			}
			err := CheckExtras(strings.NewReader(listing), strings.NewReader(bad))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("CheckExtras = %v; want %q", err, c.want)
			}
		})
	}
	for _, c := range []struct{ name, extras, want string }{
		{"paths out of order", "l b t\nl a t\n", `path "a" out of order`},
		{"path repeated apart", "l a t\nl b t\nx a u.x -\n", `path "a" out of order`},
		{"xattrs out of order", "x a u.y -\nx a u.x -\n", `xattr "u.x" out of order`},
		{"target after xattrs", "x a u.x -\nl a t\n", "a second symlink target, or one after its xattrs"},
		{"nul in a name", "x a u\\x00x -\n", "malformed"},
		{"dot-dot path", "l ../escape t\n", `"../escape": not a clean path inside the tree`},
		{"inner dot-dot path", "x a/../../escape u.x -\n", `"a/../../escape": not a clean path inside the tree`},
		{"absolute path", "l /etc/passwd t\n", `"/etc/passwd": not a clean path inside the tree`},
		{"empty component", "l a//b t\n", `"a//b": not a clean path inside the tree`},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := NewExtrasReader(strings.NewReader(ExtrasHeader + "\n" + c.extras))
			var err error
			for err == nil {
				_, err = r.Next()
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("ExtrasReader = %v; want %q", err, c.want)
			}
		})
	}
}

// TestChecker: listings a restore must not build from.
func TestChecker(t *testing.T) {
	h := strings.Repeat("ab", 32)
	root := "d 0755 0 0 1 0 - - - - ."
	for _, c := range []struct {
		name  string
		lines []string
		want  string // "" = accepted
	}{
		{"good", []string{root, "d 0755 0 0 1 0 - - - - a", "f 0644 0 0 1 1 " + h + " - - - a/f", "f 0644 0 0 1 1 " + h + " - - a/f a/g", "c 0600 0 0 1 0 - 1:3 - - a/n"}, ""},
		{"no root", []string{"d 0755 0 0 1 0 - - - - a"}, "not the root"},
		{"dot-dot", []string{root, "f 0644 0 0 1 1 " + h + " - - - ../x"}, "not a clean path"},
		{"inner dot-dot", []string{root, "d 0755 0 0 1 0 - - - - a", "f 0644 0 0 1 1 " + h + " - - - a/../../x"}, "not a clean path"},
		{"absolute", []string{root, "f 0644 0 0 1 1 " + h + " - - - /etc/passwd"}, "not a clean path"},
		{"empty component", []string{root, `f 0644 0 0 1 1 ` + h + ` - - - a//b`}, "not a clean path"},
		{"repeated", []string{root, "d 0755 0 0 1 0 - - - - a", "d 0755 0 0 1 0 - - - - a"}, "out of order or repeated"},
		{"below a symlink", []string{root, "l 0777 0 0 1 4 " + h + " - - - a", "f 0644 0 0 1 1 " + h + " - - - a/passwd"}, "parent is not a folder"},
		{"parent missing", []string{root, "f 0644 0 0 1 1 " + h + " - - - a/b"}, "parent is not a folder"},
		{"link to later", []string{root, "f 0644 0 0 1 1 " + h + " - - b a", "f 0644 0 0 1 1 " + h + " - - - b"}, "not a file listed before"},
		{"link to folder", []string{root, "d 0755 0 0 1 0 - - - - a", "f 0644 0 0 1 1 " + h + " - - a b"}, "not a file listed before"},
		{"link type", []string{root, "f 0644 0 0 1 1 " + h + " - - - a", "l 0777 0 0 1 1 " + h + " - - a b"}, "hardlink of type l"},
		{"device without numbers", []string{root, "c 0600 0 0 1 0 - - - - n"}, "bad device numbers"},
		{"file without hash", []string{root, "f 0644 0 0 1 1 - - - - a"}, "without a SHA-256"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var ck Checker
			var err error
			for _, l := range c.lines {
				e, perr := ParseLine(l)
				if perr != nil {
					t.Fatal(perr)
				}
				if err = ck.Check(e); err != nil {
					break
				}
			}
			switch {
			case c.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Errorf("Check = %v; want %q", err, c.want)
			}
		})
	}
}

// TestContentRenamed: a server that shows some names differently (Samba's
// mangled names) still serves every file, found by size and content; a
// file that is gone is ErrContent.
func TestContentRenamed(t *testing.T) {
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "d/sub:x"), 0o755))
	must(os.WriteFile(filepath.Join(root, "d/a:b"), []byte("same size 1"), 0o644))
	must(os.WriteFile(filepath.Join(root, "d/c:d"), []byte("same size 2"), 0o644))
	must(os.WriteFile(filepath.Join(root, "d/plain"), []byte("plain"), 0o644))
	must(os.WriteFile(filepath.Join(root, "d/sub:x/inner"), []byte("inside a renamed folder"), 0o644))
	must(os.WriteFile(filepath.Join(root, "d/sub:x/x:y"), []byte("both renamed"), 0o644))
	var l bytes.Buffer
	if _, err := WriteOptions(context.Background(), &l, root, Options{}); err != nil {
		t.Fatal(err)
	}
	var entries []Entry
	r := NewReader(&l)
	for {
		e, err := r.Next()
		if err != nil {
			break
		}
		entries = append(entries, e)
	}
	// The "server": the same tree with the names that hold a colon
	// mangled, as Samba shows them.
	for _, mv := range [][2]string{{"d/a:b", "d/AB~1"}, {"d/c:d", "d/CD~1"}, {"d/sub:x/x:y", "d/sub:x/XY~1"}, {"d/sub:x", "d/SUBX~1"}} {
		must(os.Rename(filepath.Join(root, mv[0]), filepath.Join(root, mv[1])))
	}
	c := NewContent(os.DirFS(root), entries, nil)
	for _, e := range entries {
		if e.Type != 'f' {
			continue
		}
		var b bytes.Buffer
		if _, err := c.Copy(context.Background(), e, &b); err != nil {
			t.Errorf("Copy(%s): %v", e.Path, err)
		}
	}
	if got := c.Renamed(); got != 4 {
		t.Errorf("Renamed() = %d; want 4 (a:b, c:d, sub:x/inner, sub:x/x:y)", got)
	}
	must(os.Remove(filepath.Join(root, "d/plain")))
	for _, e := range entries {
		if e.Path == "d/plain" {
			_, err := c.Copy(context.Background(), e, &bytes.Buffer{})
			if !errors.Is(err, ErrContent) || !strings.Contains(err.Error(), "d/plain is missing") {
				t.Errorf("Copy of a missing file = %v; want ErrContent", err)
			}
		}
	}
}

// FuzzExtrasReader reads arbitrary extras files, as the restore reads one
// from a share anyone may write to. It must not panic, and what it
// accepts must format back to the same extras.
func FuzzExtrasReader(f *testing.F) {
	f.Add(ExtrasHeader + "\nl a b\nx a user.x 00ff\nx a user.y -\n")
	f.Add(ExtrasHeader + "\nx a\\x20b security.capability 0100000200200000000000000000000000000000\n")
	f.Add(ExtrasHeader + "\nx b u.x -\nl a t\n")
	f.Add("garbage")
	f.Fuzz(func(t *testing.T, s string) {
		r := NewExtrasReader(strings.NewReader(s))
		var b strings.Builder
		b.WriteString(ExtrasHeader + "\n")
		var got []Extra
		for i := 0; i < 1<<12; i++ {
			x, err := r.Next()
			if err != nil {
				break
			}
			got = append(got, x)
			b.WriteString(x.String())
		}
		r2 := NewExtrasReader(strings.NewReader(b.String()))
		for i, want := range got {
			x, err := r2.Next()
			if err != nil {
				t.Fatalf("re-read of %q: %v", b.String(), err)
			}
			if x.Path != want.Path || x.Target != want.Target || len(x.Xattrs) != len(want.Xattrs) {
				t.Fatalf("entry %d: %+v became %+v", i, want, x)
			}
			for j := range x.Xattrs {
				if x.Xattrs[j].Name != want.Xattrs[j].Name || !bytes.Equal(x.Xattrs[j].Value, want.Xattrs[j].Value) {
					t.Fatalf("entry %d xattr %d: %+v became %+v", i, j, want.Xattrs[j], x.Xattrs[j])
				}
			}
		}
	})
}
