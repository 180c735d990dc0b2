package model

import (
	"testing"

	"github.com/pibackup/pibackup/internal/i18n"
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
	if got, want := en.Msg(m.State().Busy), "reading the list of files of pi-tgz-backup: 42%"; got != want {
		t.Errorf("busy %q, want %q", got, want)
	}
	b.stop()
	m.update(func() { m.st.Busy = i18n.Msg{} })
	b.Add(100)
	if busy := m.State().Busy; !busy.IsZero() {
		t.Errorf("busy %q after stop, want none", en.Msg(busy))
	}
}
