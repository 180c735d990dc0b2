// Package progress is the interface between the engines (backup, restore,
// verify) and whatever shows their progress: the backupctl bar, the
// recovery UI, or nothing. Engines own the reporting; printers only render.
package progress

import (
	"io"
	"sync/atomic"
	"time"
)

// Reporter receives progress from an engine. Implementations must be safe
// for use from several goroutines.
type Reporter interface {
	// Phase starts a named phase ("boot partition", "root filesystem",
	// "verify"); total is the number of bytes expected, 0 when unknown.
	Phase(name string, total int64)
	// Add reports n more bytes done in the current phase.
	Add(n int64)
}

// Nop discards progress.
type Nop struct{}

// Phase implements Reporter.
func (Nop) Phase(string, int64) {}

// Add implements Reporter.
func (Nop) Add(int64) {}

// OrNop returns r, or Nop when r is nil, so engines never check for nil.
func OrNop(r Reporter) Reporter {
	if r == nil {
		return Nop{}
	}
	return r
}

// Reader counts what is read through it.
type Reader struct {
	R   io.Reader
	Rep Reporter
}

func (r Reader) Read(p []byte) (int, error) {
	n, err := r.R.Read(p)
	if n > 0 {
		r.Rep.Add(int64(n))
	}
	return n, err
}

// Writer counts what is written through it.
type Writer struct {
	W   io.Writer
	Rep Reporter
}

func (w Writer) Write(p []byte) (int, error) {
	n, err := w.W.Write(p)
	if n > 0 {
		w.Rep.Add(int64(n))
	}
	return n, err
}

// Counter is a Reporter that only counts; printers poll it.
type Counter struct {
	name  atomic.Pointer[string]
	total atomic.Int64
	done  atomic.Int64
	all   atomic.Int64
}

// Phase implements Reporter.
func (c *Counter) Phase(name string, total int64) {
	c.name.Store(&name)
	c.total.Store(total)
	c.done.Store(0)
}

// Add implements Reporter.
func (c *Counter) Add(n int64) {
	c.done.Add(n)
	c.all.Add(n)
}

// Snapshot returns the current phase, its bytes done and total, and the
// bytes done over all phases.
func (c *Counter) Snapshot() (phase string, done, total, all int64) {
	if p := c.name.Load(); p != nil {
		phase = *p
	}
	return phase, c.done.Load(), c.total.Load(), c.all.Load()
}

// Poll calls draw every interval, from one goroutine, until stop is
// called; stop returns once draw is done for good. The printers that
// show a Counter (backupctl's bar, the recovery's unattended progress
// lines) share this loop and only format what Snapshot says.
func Poll(every time.Duration, draw func(now time.Time)) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				draw(now)
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}
