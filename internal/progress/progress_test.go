package progress

import (
	"sync/atomic"
	"testing"
	"time"
)

// TestPoll: draw runs again and again until stop, and never after stop
// has returned (a printer that wrote after it would scribble over what
// its caller prints next).
func TestPoll(t *testing.T) {
	drew := make(chan struct{}, 1)
	var stopped atomic.Bool
	var late atomic.Int32
	stop := Poll(time.Millisecond, func(time.Time) {
		if stopped.Load() {
			late.Add(1)
		}
		select {
		case drew <- struct{}{}:
		default:
		}
	})
	for range 3 { // three draws, each waited for
		<-drew
	}
	stop()
	stopped.Store(true)
	select {
	case <-drew: // one that ended before stop returned may have queued
	default:
	}
	if n := late.Load(); n != 0 {
		t.Errorf("draw ran %d times after stop returned", n)
	}
}
