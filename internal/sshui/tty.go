package sshui

import (
	"io"
	"sync"

	"github.com/gdamore/tcell/v2"
	"github.com/gdamore/tcell/v2/terminfo"
)

// Limits on the terminal size a client may ask for: tcell allocates
// width×height cells.
const (
	maxCols = 500
	maxRows = 300
)

// chanTTY is a tcell.Tty over an SSH session channel. The client's
// terminal is already raw (it asked for a pty), so Start and Stop have no
// modes to change; the size comes from pty-req and window-change.
//
// Read must be interruptible (tcell calls Drain and then waits for its
// input loop), and an ssh.Channel read is not, so one goroutine reads the
// channel and Read waits on it or on Drain.
//
// At the end of the input (the client left) Read does not return the
// error, which would make tview stop itself; it calls hangup, which
// cancels the UI's context, and waits for the Drain of that stop. So a UI
// is only ever stopped one way: tview's Application.Stop racing the end
// of its own Run is a data race inside tview.
type chanTTY struct {
	w io.Writer

	in     chan []byte   // chunks read from the channel; closed at the end
	hangup func()        // called when the input has ended; set before use
	done   chan struct{} // closed by Close: the reader gives up
	once   sync.Once

	pending []byte // of the last chunk, what Read has not handed out; tcell's input loop only

	mu       sync.Mutex
	size     tcell.WindowSize
	onResize func()
	drain    chan struct{} // closed by Drain, replaced by Start
	drained  bool
}

var _ tcell.Tty = (*chanTTY)(nil)

func newChanTTY(rw io.ReadWriter, cols, rows int) *chanTTY {
	t := &chanTTY{w: rw, in: make(chan []byte), done: make(chan struct{}), drain: make(chan struct{})}
	t.size = clampSize(cols, rows)
	go t.pump(rw)
	return t
}

func (t *chanTTY) pump(r io.Reader) {
	for {
		buf := make([]byte, 256)
		n, err := r.Read(buf)
		if n > 0 {
			select {
			case t.in <- buf[:n]:
			case <-t.done:
				return
			}
		}
		if err != nil {
			close(t.in)
			return
		}
	}
}

// Start makes Read block again after a Drain.
func (t *chanTTY) Start() error {
	t.mu.Lock()
	if t.drained {
		t.drain = make(chan struct{})
		t.drained = false
	}
	t.mu.Unlock()
	return nil
}

// Stop does nothing: the client's terminal modes are the client's.
func (t *chanTTY) Stop() error { return nil }

// Drain wakes a blocked Read, which returns (0, nil) until Start.
func (t *chanTTY) Drain() error {
	t.mu.Lock()
	if !t.drained {
		close(t.drain)
		t.drained = true
	}
	t.mu.Unlock()
	return nil
}

func (t *chanTTY) Read(p []byte) (int, error) {
	if len(t.pending) > 0 {
		n := copy(p, t.pending)
		t.pending = t.pending[n:]
		return n, nil
	}
	t.mu.Lock()
	drain := t.drain
	t.mu.Unlock()
	select {
	case b, ok := <-t.in:
		if !ok {
			if t.hangup != nil {
				t.hangup()
			}
			<-drain
			return 0, nil
		}
		n := copy(p, b)
		t.pending = b[n:]
		return n, nil
	case <-drain:
		return 0, nil
	}
}

func (t *chanTTY) Write(p []byte) (int, error) { return t.w.Write(p) }

// Close stops the reader. The channel itself belongs to the session,
// which still has to send the exit status.
func (t *chanTTY) Close() error {
	t.once.Do(func() { close(t.done) })
	return nil
}

func (t *chanTTY) NotifyResize(cb func()) {
	t.mu.Lock()
	t.onResize = cb
	t.mu.Unlock()
}

func (t *chanTTY) WindowSize() (tcell.WindowSize, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.size, nil
}

// resize is window-change.
func (t *chanTTY) resize(cols, rows int) {
	t.mu.Lock()
	t.size = clampSize(cols, rows)
	cb := t.onResize
	t.mu.Unlock()
	if cb != nil {
		cb()
	}
}

func clampSize(cols, rows int) tcell.WindowSize {
	if cols <= 0 || rows <= 0 {
		cols, rows = 80, 24 // a client that does not know its size
	}
	return tcell.WindowSize{Width: min(cols, maxCols), Height: min(rows, maxRows)}
}

// lookupTerminfo finds the client's $TERM in tcell's built-in database.
// An unknown terminal gets xterm-256color, which nearly every terminal
// emulator understands. (tcell.LookupTerminfo would run infocmp, which
// the recovery image does not have.)
func lookupTerminfo(term string) *terminfo.Terminfo {
	for _, name := range []string{term, "xterm-256color", "xterm"} {
		if ti, err := terminfo.LookupTerminfo(name); err == nil {
			return ti
		}
	}
	return nil // tcell then tries $TERM of the process
}
