// Package storetest is the conformance suite every store.Store passes:
// run it against a real server in each implementation's test.
package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/pibackup/pibackup/internal/store"
)

// Run checks st, an empty store, against the Store contract. It writes
// under the folder "conformance".
func Run(t *testing.T, st store.Store) {
	ctx := context.Background()
	data := make([]byte, 17<<20+12345) // spans several upload parts
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.Uint32())
	}

	write := func(t *testing.T, name string, b []byte) {
		t.Helper()
		f, err := st.Create(ctx, name)
		if err != nil {
			t.Fatalf("Create %s: %v", name, err)
		}
		// Odd chunk sizes, as compressors and tar write.
		for rest := b; len(rest) > 0; {
			n := min(len(rest), 1+r.IntN(3<<20))
			if _, err := f.Write(rest[:n]); err != nil {
				f.Abort()
				t.Fatalf("Write %s: %v", name, err)
			}
			rest = rest[n:]
		}
		if err := f.Close(); err != nil {
			t.Fatalf("Close %s: %v", name, err)
		}
	}

	t.Run("CreateRead", func(t *testing.T) {
		write(t, "conformance/h/s1/big.img", data)
		got, err := fs.ReadFile(st.FS(), "conformance/h/s1/big.img")
		if err != nil {
			t.Fatal(err)
		}
		if sha256.Sum256(got) != sha256.Sum256(data) {
			t.Fatalf("read back %d bytes, not what was written (%d bytes)", len(got), len(data))
		}
		fi, err := fs.Stat(st.FS(), "conformance/h/s1/big.img")
		if err != nil || fi.Size() != int64(len(data)) || fi.IsDir() {
			t.Fatalf("Stat: %v %v", fi, err)
		}
		f, err := st.FS().Open("conformance/h/s1/big.img")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		ra, ok := f.(io.ReaderAt)
		if !ok {
			t.Fatalf("%T is no io.ReaderAt", f)
		}
		for _, off := range []int64{0, 5<<20 - 7, int64(len(data)) - 100} {
			b := make([]byte, 100)
			if _, err := ra.ReadAt(b, off); err != nil && err != io.EOF {
				t.Fatalf("ReadAt %d: %v", off, err)
			}
			if !bytes.Equal(b, data[off:off+100]) {
				t.Fatalf("ReadAt %d: wrong bytes", off)
			}
		}
		if _, ok := f.(io.Seeker); !ok {
			t.Fatalf("%T is no io.Seeker", f)
		}
	})

	t.Run("EmptyAndSmall", func(t *testing.T) {
		write(t, "conformance/h/s1/empty", nil)
		write(t, "conformance/h/s1/small.json", []byte(`{"a":1}`))
		got, err := fs.ReadFile(st.FS(), "conformance/h/s1/empty")
		if err != nil || len(got) != 0 {
			t.Fatalf("empty file: %q %v", got, err)
		}
	})

	t.Run("ReadDir", func(t *testing.T) {
		es, err := fs.ReadDir(st.FS(), "conformance/h/s1")
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range es {
			names = append(names, e.Name())
		}
		if !slices.Equal(names, []string{"big.img", "empty", "small.json"}) {
			t.Fatalf("ReadDir: %v, want sorted big.img empty small.json", names)
		}
		es, err = fs.ReadDir(st.FS(), "conformance/h")
		if err != nil || len(es) != 1 || !es[0].IsDir() || es[0].Name() != "s1" {
			t.Fatalf("ReadDir conformance/h: %v %v", es, err)
		}
		if _, err := fs.ReadDir(st.FS(), "conformance/nothing"); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("ReadDir of a missing folder: %v, want fs.ErrNotExist", err)
		}
		if _, err := fs.Stat(st.FS(), "conformance/h/s1/nothing"); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Stat of a missing file: %v, want fs.ErrNotExist", err)
		}
	})

	t.Run("CreateExisting", func(t *testing.T) {
		f, err := st.Create(ctx, "conformance/h/s1/small.json")
		if err == nil {
			f.Write([]byte("x"))
			err = f.Close()
		}
		if !errors.Is(err, fs.ErrExist) {
			t.Fatalf("Create over an existing file: %v, want fs.ErrExist", err)
		}
		got, _ := fs.ReadFile(st.FS(), "conformance/h/s1/small.json")
		if string(got) != `{"a":1}` {
			t.Fatalf("existing file changed to %q", got)
		}
	})

	t.Run("Abort", func(t *testing.T) {
		f, err := st.Create(ctx, "conformance/h/s2/partial.img")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(data[:6<<20]); err != nil {
			t.Fatal(err)
		}
		if err := f.Abort(); err != nil {
			t.Fatal(err)
		}
		if _, err := fs.Stat(st.FS(), "conformance/h/s2/partial.img"); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("aborted file: Stat says %v, want fs.ErrNotExist", err)
		}
	})

	t.Run("BadNames", func(t *testing.T) {
		for _, n := range []string{"../x", "/abs", "a/../b", "", ".", "a//b"} {
			if f, err := st.Create(ctx, n); err == nil {
				f.Abort()
				t.Errorf("Create(%q) accepted", n)
			}
			if err := st.RemoveAll(ctx, n); err == nil {
				t.Errorf("RemoveAll(%q) accepted", n)
			}
		}
	})

	t.Run("Rename", func(t *testing.T) {
		write(t, "conformance/h/tmp/s3/a", []byte("a"))
		write(t, "conformance/h/tmp/s3/b", []byte("b"))
		err := st.Rename(ctx, "conformance/h/tmp/s3", "conformance/h/s3")
		if !st.CanRename() {
			if !errors.Is(err, store.ErrNoRename) {
				t.Fatalf("Rename on a store that cannot: %v, want ErrNoRename", err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if got, err := fs.ReadFile(st.FS(), "conformance/h/s3/b"); err != nil || string(got) != "b" {
			t.Fatalf("after rename: %q %v", got, err)
		}
		if _, err := fs.Stat(st.FS(), "conformance/h/tmp/s3"); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("old name still there: %v", err)
		}
		if err := st.Rename(ctx, "conformance/h/s3", "conformance/h/s1"); !errors.Is(err, fs.ErrExist) {
			t.Fatalf("rename onto an existing set: %v, want fs.ErrExist", err)
		}
	})

	t.Run("RemoveAll", func(t *testing.T) {
		if err := st.RemoveAll(ctx, "conformance/h/s1"); err != nil {
			t.Fatal(err)
		}
		if _, err := fs.Stat(st.FS(), "conformance/h/s1/big.img"); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("after RemoveAll: %v", err)
		}
		if err := st.RemoveAll(ctx, "conformance/h/never"); err != nil {
			t.Fatalf("RemoveAll of a missing name: %v", err)
		}
	})
}
