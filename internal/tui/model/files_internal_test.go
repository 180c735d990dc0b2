package model

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/pibackup/pibackup/internal/i18n"
	"github.com/pibackup/pibackup/internal/progress"
)

// TestBusyPercent: a set's listing progress shows in the busy message
// as a percentage, and nothing a late reader counts after Browse
// returned changes it (it would leave the model busy for ever).
func TestBusyPercent(t *testing.T) {
	m := New(Deps{})
	en := i18n.New(i18n.English)
	b := &busyPercent{m: m, set: "pi-tgz-backup", pct: -1}
	b.Phase("list", 200)
	b.Add(84)
	if got, want := en.Msg(m.State().Busy), "reading the list of files of pi-tgz-backup: 42% (Esc cancels)"; got != want {
		t.Errorf("busy %q, want %q", got, want)
	}
	b.stop()
	m.update(func() { m.st.Busy = i18n.Msg{} })
	b.Add(100)
	if busy := m.State().Busy; !busy.IsZero() {
		t.Errorf("busy %q after stop, want none", en.Msg(busy))
	}
}

// blockingBrowser's Browse says it started, then waits for its context.
type blockingBrowser struct{ started chan struct{} }

func (b blockingBrowser) Browse(ctx context.Context, _ Request, rep progress.Reporter) (Tree, error) {
	rep.Phase("list", 100)
	close(b.started)
	<-ctx.Done()
	return nil, fmt.Errorf("list: %w", ctx.Err())
}

// TestBrowseCancel: Back (Esc) while a set's list is read cancels the
// reading; the model is idle again, says it was cancelled, and stays
// on its screen.
func TestBrowseCancel(t *testing.T) {
	br := blockingBrowser{started: make(chan struct{})}
	m := New(Deps{Browser: br})
	if err := m.begin(i18n.M(i18n.UIBusyStart), Home); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- m.browse(context.Background(), Request{Task: TaskFiles}, SetInfo{}) }()
	<-br.started
	if err := m.Back(); err != nil {
		t.Fatalf("Back while listing: %v", err)
	}
	if err := <-done; !errors.Is(err, ErrCancelled) || !errors.Is(err, context.Canceled) {
		t.Errorf("browse after Back: %v, want ErrCancelled", err)
	}
	st := m.State()
	if !st.Busy.IsZero() || st.Screen != Home || st.CanCancel {
		t.Errorf("after the cancel: busy %v, screen %v, can cancel %v; want idle on Home", st.Busy, st.Screen, st.CanCancel)
	}
	if err := m.Back(); err != nil {
		t.Errorf("Back on Home afterwards: %v", err)
	}
}
