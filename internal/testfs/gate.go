package testfs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// Gate serves files read-only through FUSE so that a test can hold their
// readers still at a point it chooses. Fault tests need a backup or a
// restore that is known to be in the middle of its work when the signal
// arrives; with a small fixture a run finishes in a fraction of a second,
// so watching its output and hoping to be quick enough fails on a fast
// idle machine. A held read is an event instead: once a read is held, the
// run cannot finish until the test releases it.
//
// Every process reads through the gate, the loop devices a backup
// attaches to an image included (the loop driver reads the FUSE file like
// any other).
type Gate struct {
	// Dir is the mount point; each file is served under its base name.
	Dir string

	files map[string]*os.File

	mu      sync.Mutex
	hold    func(name string) bool // when it returns true, the read is held
	held    chan struct{}          // closed when a read is held
	release chan struct{}          // closed to let held reads go on
	reads   int64                  // reads served, for failure messages
}

// NewGate serves files read-only at the mount point dir (made if missing;
// a set folder can be served under its own name) and unmounts it at the
// end of the test. Reads pass until Hold arms the gate.
func NewGate(t *testing.T, dir string, files ...string) *Gate {
	t.Helper()
	Require(t, "fuse")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	g := &Gate{Dir: dir, files: map[string]*os.File{}}
	sizes := map[string]int64{}
	for _, p := range files {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		fi, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		g.files[filepath.Base(p)], sizes[filepath.Base(p)] = f, fi.Size()
	}
	root := &fs.Inode{}
	server, err := fs.Mount(dir, root, &fs.Options{
		MountOptions: fuse.MountOptions{
			// As root, mount(2) directly: no fusermount needed.
			DirectMountStrict: true,
			FsName:            "pibackup-gate",
			Name:              "gate",
			// Every reader is root, the kernel's loop worker included;
			// allow_other keeps that true for a reader in another user
			// namespace too.
			AllowOther: true,
			Options:    []string{"ro"},
		},
		OnAdd: func(ctx context.Context) {
			ino := uint64(2)
			for name, size := range sizes {
				f := root.NewPersistentInode(ctx, &gateFile{g: g, name: name, size: size}, fs.StableAttr{Mode: syscall.S_IFREG, Ino: ino})
				root.AddChild(name, f, true)
				ino++
			}
		},
	})
	if err != nil {
		t.Fatalf("mount the FUSE gate on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		g.Release()
		// A loop device still attached to a gated file keeps the mount
		// busy; lazy unmount lets the test end and the kernel finish
		// once the last user is gone.
		if err := server.Unmount(); err != nil {
			syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
	return g
}

// Path is where the gate serves the file that was at p.
func (g *Gate) Path(p string) string { return filepath.Join(g.Dir, filepath.Base(p)) }

// Hold arms the gate: from now on each read first asks cond with the
// name of the file read, and the first read for which it returns true is
// held (with every read after it) until Release. cond runs on the FUSE
// server's goroutines.
func (g *Gate) Hold(cond func(name string) bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.hold = cond
	g.held = make(chan struct{})
	g.release = make(chan struct{})
}

// WaitHeld waits until a read is held, or returns an error saying what
// was seen once done is closed (the reader ended: nothing can be held any
// more) or timeout passes. The timeout bounds a broken test only: a held
// read is the event, and it comes as soon as the condition holds.
func (g *Gate) WaitHeld(done <-chan struct{}, timeout time.Duration) error {
	g.mu.Lock()
	held := g.held
	g.mu.Unlock()
	var why string
	select {
	case <-held:
		return nil
	case <-done:
		why = "the program ended first"
	case <-time.After(timeout):
		why = fmt.Sprintf("none within %v", timeout)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return fmt.Errorf("no read of the source was held (%s; %d reads served): the condition never held while the program still read", why, g.reads)
}

// Release lets held reads go on and disarms the gate.
func (g *Gate) Release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.hold = nil
	if g.release != nil {
		select {
		case <-g.release:
		default:
			close(g.release)
		}
	}
}

// wait holds the calling read of the file name while the gate says so.
func (g *Gate) wait(ctx context.Context, name string) {
	g.mu.Lock()
	g.reads++
	hold, held, release := g.hold, g.held, g.release
	if hold != nil {
		select {
		case <-held:
		default:
			if !hold(name) {
				g.mu.Unlock()
				return
			}
			close(held)
		}
	}
	g.mu.Unlock()
	if hold == nil {
		return
	}
	select {
	case <-release:
	case <-ctx.Done(): // the reader was interrupted (killed)
	}
}

type gateFile struct {
	fs.Inode
	g    *Gate
	name string
	size int64
}

var (
	_ fs.NodeOpener    = (*gateFile)(nil)
	_ fs.NodeReader    = (*gateFile)(nil)
	_ fs.NodeGetattrer = (*gateFile)(nil)
)

func (f *gateFile) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if flags&(syscall.O_WRONLY|syscall.O_RDWR) != 0 {
		return nil, 0, syscall.EROFS
	}
	// Direct I/O: every read reaches the gate, none is answered from the
	// page cache of an earlier run.
	return nil, fuse.FOPEN_DIRECT_IO, 0
}

func (f *gateFile) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFREG | 0o444
	out.Size = uint64(f.size)
	out.Blocks = (uint64(f.size) + 511) / 512
	return 0
}

func (f *gateFile) Read(ctx context.Context, fh fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	f.g.wait(ctx, f.name)
	n, err := f.g.files[f.name].ReadAt(dest, off)
	if n == 0 && err != nil && off < f.size {
		return nil, fs.ToErrno(fmt.Errorf("gate read at %d: %w", off, err))
	}
	return fuse.ReadResultData(dest[:n]), 0
}
