package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/pibackup/pibackup/internal/source"
	"github.com/pibackup/pibackup/internal/store"
	"github.com/pibackup/pibackup/internal/store/storetest"
)

// tryOpen opens the store u and closes it again.
func tryOpen(u string, o store.Options) error {
	st, err := store.Open(context.Background(), u, o)
	if err == nil {
		st.Close()
	}
	return err
}

// runRemote runs the conformance suite on st, a store on a server
// whose URL is u and whose folder is dir on this machine.
func runRemote(t *testing.T, st store.Store, u, dir string) {
	if st.Local() != "" || !st.CanRename() {
		t.Fatalf("a store on a server: Local %q CanRename %v", st.Local(), st.CanRename())
	}
	if st.String() != u {
		t.Errorf("String() = %q, want %q", st.String(), u)
	}
	storetest.Run(t, st)
	// What the store wrote is on the server's disk, under the folder.
	if b, err := os.ReadFile(filepath.Join(dir, "conformance/h/s3/b")); err != nil || string(b) != "b" {
		t.Fatalf("on the server: %q %v", b, err)
	}
	if err := st.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// serverStopped stops the server of st (whose folder is dir on this
// machine) in the middle of an upload: a Write or the Close must fail
// with source.ErrConnectionLost, and Abort must return.
func serverStopped(t *testing.T, st store.Store, dir string, stop func(testing.TB)) {
	f, err := st.Create(context.Background(), "h/tmp/s/big.img")
	if err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte("pibackup"), 1<<17) // 1 MiB
	for range 8 {
		if _, err := f.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	stop(t)
	// Stores buffer or pipeline a few MiB: a dead server fails a later
	// Write or the Close, never neither.
	const chunks = 64
	for range chunks {
		if _, err = f.Write(chunk); err != nil {
			break
		}
	}
	if err == nil {
		err = f.Close()
	}
	if !errors.Is(err, source.ErrConnectionLost) {
		t.Fatalf("after the server stopped: %v; want ErrConnectionLost", err)
	}
	t.Log(err)
	f.Abort() // cannot reach the server; must not hang or panic
	// A partial file may remain on the server (the engine writes under
	// tmp/ and the next run removes it), never the whole one.
	if fi, err := os.Stat(filepath.Join(dir, "h/tmp/s/big.img")); err == nil && fi.Size() >= (8+chunks)<<20 {
		t.Fatalf("the server holds all %d bytes", fi.Size())
	}
}

// benchWrite uploads 256 MiB files in the odd-sized writes a compressor
// makes and reports MB/s.
func benchWrite(b *testing.B, st store.Store) {
	chunk := bytes.Repeat([]byte{1, 2, 3, 5, 8, 13, 21}, 32<<10/7)
	const size = 256 << 20
	b.SetBytes(size)
	for i := range b.N {
		f, err := st.Create(context.Background(), fmt.Sprintf("f%d", i))
		if err != nil {
			b.Fatal(err)
		}
		for n := 0; n < size; {
			m := min(len(chunk), size-n)
			if _, err := f.Write(chunk[:m]); err != nil {
				b.Fatal(err)
			}
			n += m
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
