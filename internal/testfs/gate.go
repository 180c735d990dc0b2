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

// Gate serves a disk image read-only through FUSE so that a test can hold
// the reader still at a point it chooses. Fault tests need a backup that
// is known to be in the middle of writing its payload when the signal
// arrives; with a small fixture a backup finishes in a fraction of a
// second, so watching its output and hoping to be quick enough fails on a
// fast idle machine. A held read is an event instead: once a read is held,
// the backup cannot finish until the test releases it.
//
// Every process reads through the gate, the loop devices a backup attaches
// to the image included (the loop driver reads the FUSE file like any
// other).
type Gate struct {
	// Path is the gated copy of the image; give it to the program in
	// place of the image.
	Path string

	src  *os.File
	size int64

	mu      sync.Mutex
	hold    func() bool   // when it returns true, the next read is held
	held    chan struct{} // closed when a read is held
	release chan struct{} // closed to let held reads go on
	reads   int64         // reads served, for failure messages
}

// NewGate serves image read-only at a new mount point and unmounts it at
// the end of the test. Reads pass until Hold arms the gate.
func NewGate(t *testing.T, image string) *Gate {
	t.Helper()
	Require(t, "fuse")
	src, err := os.Open(image)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	fi, err := src.Stat()
	if err != nil {
		t.Fatal(err)
	}
	mnt := t.TempDir()
	g := &Gate{Path: filepath.Join(mnt, filepath.Base(image)), src: src, size: fi.Size()}
	root := &fs.Inode{}
	server, err := fs.Mount(mnt, root, &fs.Options{
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
			f := root.NewPersistentInode(ctx, &gateFile{g: g}, fs.StableAttr{Mode: syscall.S_IFREG, Ino: 2})
			root.AddChild(filepath.Base(image), f, true)
		},
	})
	if err != nil {
		t.Fatalf("mount the FUSE gate over %s: %v", image, err)
	}
	t.Cleanup(func() {
		g.Release()
		// A loop device still attached to the gated file keeps the mount
		// busy; lazy unmount lets the test end and the kernel finish
		// once the last user is gone.
		if err := server.Unmount(); err != nil {
			syscall.Unmount(mnt, syscall.MNT_DETACH)
		}
	})
	return g
}

// Hold arms the gate: from now on each read first asks cond, and the
// first read for which it returns true is held (with every read after it)
// until Release. cond runs on the FUSE server's goroutines.
func (g *Gate) Hold(cond func() bool) {
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

// wait holds the calling read while the gate says so.
func (g *Gate) wait(ctx context.Context) {
	g.mu.Lock()
	g.reads++
	hold, held, release := g.hold, g.held, g.release
	if hold != nil {
		select {
		case <-held:
		default:
			if !hold() {
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
	g *Gate
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
	out.Size = uint64(f.g.size)
	out.Blocks = (uint64(f.g.size) + 511) / 512
	return 0
}

func (f *gateFile) Read(ctx context.Context, fh fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	f.g.wait(ctx)
	n, err := f.g.src.ReadAt(dest, off)
	if n == 0 && err != nil && off < f.g.size {
		return nil, fs.ToErrno(fmt.Errorf("gate read at %d: %w", off, err))
	}
	return fuse.ReadResultData(dest[:n]), 0
}
