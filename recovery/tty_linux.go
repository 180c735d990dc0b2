package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/gdamore/tcell/v2"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// consoleTty is tcell's devTty (tty_unix.go, v2.8.1) with two changes.
//
// Each Start opens the device afresh and uses that file for everything,
// termios included. tcell's own keeps using the file it opened first for
// termios. But when the UI's shell ends, the kernel hangs the console up:
// the shell is a session leader whose controlling tty is the console, and
// for a tty that is not a pty its exit calls tty_vhangup_session
// (disassociate_ctty, drivers/tty/tty_jobctrl.c). Every file then open on
// the console fails from then on, so tcell's Resume after the shell
// failed ("device is not a terminal") and the menu read no more keys.
//
// And it opens with O_NOCTTY: the recovery never takes the console as its
// controlling tty, so no key (Ctrl-C, Ctrl-\) and no hangup signals it.
type consoleTty struct {
	dev string

	mu    sync.Mutex
	f     *os.File // nil while stopped
	saved *term.State
	sig   chan os.Signal
	cb    func()
	stopQ chan struct{}
	wg    sync.WaitGroup
}

var _ tcell.Tty = (*consoleTty)(nil)

// newConsoleTty checks that dev is a terminal; Start opens it.
func newConsoleTty(dev string) (*consoleTty, error) {
	f, err := openTty(dev)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := control(f, func(fd int) error {
		if !term.IsTerminal(fd) {
			return fmt.Errorf("%s: not a terminal", dev)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	return &consoleTty{dev: dev, sig: make(chan os.Signal, 1)}, nil
}

func openTty(dev string) (*os.File, error) {
	f, err := os.OpenFile(dev, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, fmt.Errorf("open console: %w", err)
	}
	return f, nil
}

// control runs fn on f's descriptor without f.Fd(), which would switch f
// to blocking mode and so break the read deadline Drain and Stop use to
// end tcell's pending Read.
func control(f *os.File, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("console %s: %w", f.Name(), err)
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return fmt.Errorf("console %s: %w", f.Name(), err)
	}
	return ferr
}

// file is the open device, os.ErrClosed while stopped.
func (t *consoleTty) file() (*os.File, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.f == nil {
		return nil, os.ErrClosed
	}
	return t.f, nil
}

func (t *consoleTty) Read(b []byte) (int, error) {
	f, err := t.file()
	if err != nil {
		return 0, err
	}
	return f.Read(b)
}

func (t *consoleTty) Write(b []byte) (int, error) {
	f, err := t.file()
	if err != nil {
		return 0, err
	}
	return f.Write(b)
}

func (t *consoleTty) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.f == nil {
		return nil
	}
	err := t.f.Close()
	t.f = nil
	return err
}

func (t *consoleTty) Start() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.f != nil {
		t.f.Close()
	}
	f, err := openTty(t.dev)
	if err != nil {
		return err
	}
	if err := control(f, func(fd int) error {
		saved, err := term.MakeRaw(fd) // also sets VMIN and VTIME
		t.saved = saved
		return err
	}); err != nil {
		f.Close()
		return fmt.Errorf("console %s raw mode: %w", t.dev, err)
	}
	t.f = f
	t.stopQ = make(chan struct{})
	t.wg.Add(1)
	go func(stopQ chan struct{}) {
		defer t.wg.Done()
		for {
			select {
			case <-t.sig:
				t.mu.Lock()
				cb := t.cb
				t.mu.Unlock()
				if cb != nil {
					cb()
				}
			case <-stopQ:
				return
			}
		}
	}(t.stopQ)
	signal.Notify(t.sig, syscall.SIGWINCH)
	return nil
}

// Drain ends a pending Read (tcell's input loop) and lets later reads
// return at once.
func (t *consoleTty) Drain() error {
	f, err := t.file()
	if err != nil {
		return nil
	}
	_ = f.SetReadDeadline(time.Now())
	return control(f, func(fd int) error {
		tio, err := unix.IoctlGetTermios(fd, unix.TCGETS)
		if err != nil {
			return err
		}
		tio.Cc[unix.VMIN], tio.Cc[unix.VTIME] = 0, 0
		return unix.IoctlSetTermios(fd, unix.TCSETS, tio)
	})
}

func (t *consoleTty) Stop() error {
	t.mu.Lock()
	f := t.f
	if f == nil || t.stopQ == nil {
		t.mu.Unlock()
		return errors.New("console not started")
	}
	err := control(f, func(fd int) error { return term.Restore(fd, t.saved) })
	_ = f.SetReadDeadline(time.Now())
	signal.Stop(t.sig)
	close(t.stopQ)
	t.stopQ = nil
	t.mu.Unlock()
	t.wg.Wait()
	// Closed: the next Start opens the device again (see consoleTty).
	t.mu.Lock()
	t.f.Close()
	t.f = nil
	t.mu.Unlock()
	return err
}

func (t *consoleTty) WindowSize() (tcell.WindowSize, error) {
	t.mu.Lock()
	f := t.f
	t.mu.Unlock()
	if f == nil { // tcell asks before the first Start
		var err error
		if f, err = openTty(t.dev); err != nil {
			return tcell.WindowSize{}, err
		}
		defer f.Close()
	}
	var ws *unix.Winsize
	if err := control(f, func(fd int) error {
		var err error
		ws, err = unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ)
		return err
	}); err != nil {
		return tcell.WindowSize{}, err
	}
	w, h := int(ws.Col), int(ws.Row)
	if w == 0 {
		w, _ = strconv.Atoi(os.Getenv("COLUMNS"))
	}
	if w == 0 {
		w = 80
	}
	if h == 0 {
		h, _ = strconv.Atoi(os.Getenv("LINES"))
	}
	if h == 0 {
		h = 25
	}
	return tcell.WindowSize{Width: w, Height: h, PixelWidth: int(ws.Xpixel), PixelHeight: int(ws.Ypixel)}, nil
}

func (t *consoleTty) NotifyResize(cb func()) {
	t.mu.Lock()
	t.cb = cb
	t.mu.Unlock()
}
