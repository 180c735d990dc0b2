package tui_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gdamore/tcell/v2"

	"github.com/pibackup/pibackup/internal/i18n"
	"github.com/pibackup/pibackup/internal/progress"
	"github.com/pibackup/pibackup/internal/source"
	"github.com/pibackup/pibackup/internal/tui"
	"github.com/pibackup/pibackup/internal/tui/model"
	"github.com/pibackup/pibackup/internal/tui/tuitest"
)

// harness runs the real tview application on a SimulationScreen.
type harness struct {
	t      *testing.T
	screen tcell.SimulationScreen
	ui     *tui.UI
	m      *model.Model
	w      *tuitest.World
	ready  chan struct{}
	shells atomic.Int32
}

func start(t *testing.T, w *tuitest.World, deps func(*model.Deps)) *harness {
	t.Helper()
	return startSized(t, w, deps, 110, 32)
}

// startSized is start on a cols×rows screen.
func startSized(t *testing.T, w *tuitest.World, deps func(*model.Deps), cols, rows int) *harness {
	t.Helper()
	return startLang(t, w, deps, cols, rows, i18n.English)
}

// startLang is startSized with the screens in lang.
func startLang(t *testing.T, w *tuitest.World, deps func(*model.Deps), cols, rows int, lang i18n.Lang) *harness {
	t.Helper()
	d := w.Deps()
	ring := tui.NewRing(100)
	d.Log = slog.New(ring.Handler(slog.LevelInfo))
	if deps != nil {
		deps(&d)
	}
	h := &harness{t: t, screen: tcell.NewSimulationScreen("UTF-8"), m: model.New(d), w: w, ready: make(chan struct{})}
	ui := tui.New(tui.Deps{
		Screen: h.screen, Model: h.m, Disks: w.Disks, Log: ring, Version: "v-test",
		Network: func() string { return "eth0 10.0.2.15/24" },
		Shell:   func() error { h.shells.Add(1); return nil },
		OnReady: func() { close(h.ready) },
		Lang:    lang,
	})
	h.ui = ui
	h.screen.SetSize(cols, rows) // after New: SetScreen's Init resets the size
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ui.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("UI did not stop")
		}
	})
	return h
}

// text is the screen as rows of text. SimulationScreen.GetContents hands
// out its live buffer, so it is copied on the UI goroutine, where tview
// draws.
func (h *harness) text() string {
	var cells []tcell.SimCell
	var w int
	h.ui.App().QueueUpdate(func() {
		var c []tcell.SimCell
		c, w, _ = h.screen.GetContents()
		cells = make([]tcell.SimCell, len(c))
		for i := range c {
			cells[i] = c[i]
			cells[i].Runes = append([]rune(nil), c[i].Runes...)
		}
	})
	var b strings.Builder
	for i, c := range cells {
		if len(c.Runes) > 0 {
			b.WriteRune(c.Runes[0])
		} else {
			b.WriteByte(' ')
		}
		if (i+1)%w == 0 {
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// flatten joins the rows the way word wrapping split them: trailing
// blanks dropped, one space between rows.
func flatten(text string) string {
	var rows []string
	for _, r := range strings.Split(text, "\n") {
		rows = append(rows, strings.TrimRight(r, " "))
	}
	return strings.Join(rows, " ")
}

// wait polls the screen until it shows want, or fails after a deadline
// with the screen's rows.
func (h *harness) wait(want string) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if t := h.text(); strings.Contains(t, want) || strings.Contains(flatten(t), want) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	h.t.Fatalf("screen never showed %q; screen:\n%s", want, h.text())
}

func (h *harness) key(k tcell.Key) { h.screen.InjectKey(k, 0, tcell.ModNone) }
func (h *harness) rune(r rune)     { h.screen.InjectKey(tcell.KeyRune, r, tcell.ModNone) }
func (h *harness) down(n int) {
	for range n {
		h.key(tcell.KeyDown)
	}
}
func (h *harness) typeText(s string) {
	for _, r := range s {
		h.rune(r)
	}
}

func newWorld(t *testing.T) *tuitest.World {
	w, err := tuitest.NewWorld(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// toPlan drives home → source form → sets → target sdb → plan.
func (h *harness) toPlan(location string) {
	h.t.Helper()
	h.wait("Restore a backup")
	h.rune('r')
	h.wait("Network or other location")
	h.rune('n')
	h.wait("Location")
	h.typeText(location)
	h.key(tcell.KeyEnter)
	h.wait("Backups in")
	h.down(1) // the newest complete set; the newest is in progress
	h.key(tcell.KeyEnter)
	h.wait("Restore " + h.w.NewestSet + " onto")
	h.down(2) // mmcblk0, sda, sdb
	h.key(tcell.KeyEnter)
	h.wait("Nothing has been written yet")
}

func TestRestoreFromLocalFolder(t *testing.T) {
	w := newWorld(t)
	h := start(t, w, nil)
	select {
	case <-h.ready:
	case <-time.After(5 * time.Second):
		t.Fatal("OnReady not called")
	}
	h.wait("pibackup recovery v-test")
	h.wait("eth0 10.0.2.15/24")
	h.toPlan("dir:" + w.BackupDir)
	h.key(tcell.KeyEnter)
	h.wait("Type sdb to ERASE")
	h.typeText("sdb")
	h.key(tcell.KeyEnter)
	h.wait("Restore complete")
	h.wait("verified against the manifest")
	got, err := w.TargetContent(int(w.Target.Size))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(got, w.Payload) {
		t.Errorf("target image does not hold the set's payload")
	}
	h.rune('p')
	deadline := time.Now().Add(5 * time.Second)
	for len(w.Powered()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if p := w.Powered(); len(p) != 1 || p[0] {
		t.Errorf("Powered() = %v; want one power-off", p)
	}
}

// longPlan is a plan with many more lines than an 80×24 terminal has,
// like the real engine's plan for a disk with a few partitions.
type longPlan struct{ model.PlanText }

func (p longPlan) String() string {
	return p.PlanText.String() + strings.Repeat("a line of the plan\n", 40) + "THE LAST LINE\n"
}

type longPlanEngine struct{ model.Engine }

func (e longPlanEngine) Plan(ctx context.Context, r model.Request) (model.PlanText, error) {
	p, err := e.Engine.Plan(ctx, r)
	if err != nil {
		return nil, err
	}
	return longPlan{p}, nil
}

func (e longPlanEngine) Run(ctx context.Context, p model.PlanText, r model.Request, rep progress.Reporter) (model.Outcome, error) {
	return e.Engine.Run(ctx, p.(longPlan).PlanText, r, rep)
}

// TestLongPlanOn80x24: on the size of a serial console or an SSH client
// a long plan scrolls, and the line saying nothing has been written yet
// stays in view.
func TestLongPlanOn80x24(t *testing.T) {
	w := newWorld(t)
	h := startSized(t, w, func(d *model.Deps) { d.Engine = longPlanEngine{d.Engine} }, 80, 24)
	h.toPlan("dir:" + w.BackupDir)
	if strings.Contains(h.text(), "THE LAST LINE") {
		t.Fatalf("the plan fits on the screen; the test wants one that does not:\n%s", h.text())
	}
	h.key(tcell.KeyEnd)
	h.wait("THE LAST LINE")
	h.wait("Nothing has been written yet")
	h.key(tcell.KeyEnter)
	h.wait("Type sdb to ERASE")
	h.typeText("sdb")
	h.key(tcell.KeyEnter)
	h.wait("Restore complete")
}

func TestProgressAndCancel(t *testing.T) {
	w := newWorld(t)
	w.Engine.Hold = make(chan struct{})
	h := start(t, w, nil)
	h.toPlan("dir:" + w.BackupDir)
	h.key(tcell.KeyEnter)
	h.wait("Type sdb")
	h.typeText("sdb")
	h.key(tcell.KeyEnter)
	h.wait("starting…")
	h.wait("c cancel")
	h.key(tcell.KeyEscape) // refused while running
	h.wait("a job is running")
	h.rune('c')
	h.wait("Cancel the job")
	h.key(tcell.KeyTab)
	h.key(tcell.KeyEnter)
	h.wait("Restore FAILED")
	h.wait("cancelled by the user")
	h.key(tcell.KeyEscape)
	h.wait("Restore a backup")
}

func TestDiskPulledMidRestore(t *testing.T) {
	w := newWorld(t)
	w.Engine.FailAfter = 300 << 10
	h := start(t, w, nil)
	h.toPlan("dir:" + w.BackupDir)
	h.key(tcell.KeyEnter)
	h.wait("Type sdb")
	h.typeText("sdb")
	h.key(tcell.KeyEnter)
	h.wait("Restore FAILED")
	h.wait("disk removed")
	h.wait("Back to the menu")
	h.key(tcell.KeyEnter)
	h.wait("Restore a backup")
}

func TestWrongConfirmationThenBack(t *testing.T) {
	w := newWorld(t)
	h := start(t, w, nil)
	h.toPlan("dir:" + w.BackupDir)
	h.key(tcell.KeyEnter)
	h.wait("Type sdb")
	h.typeText("sda")
	h.key(tcell.KeyEnter)
	h.wait("does not match the disk")
	h.key(tcell.KeyEscape)
	h.wait("Nothing has been written yet")
	h.key(tcell.KeyEscape)
	h.wait("Restore " + w.NewestSet + " onto")
	if w.Engine.Runs != 0 {
		t.Errorf("engine ran")
	}
}

func TestTargetErrors(t *testing.T) {
	w := newWorld(t)
	h := start(t, w, nil)
	h.wait("Restore a backup")
	h.rune('r')
	h.wait("Network or other location")
	h.rune('n')
	h.wait("Location")
	h.typeText("dir:" + w.BackupDir)
	h.key(tcell.KeyEnter)
	h.wait("Backups in")
	h.wait("in progress, not restorable")
	h.key(tcell.KeyEnter) // the set in progress
	h.wait("Error: pi@debian12-tar-backup-20260304-120000: in progress")
	h.down(1)
	h.key(tcell.KeyEnter)
	h.wait("(not allowed: the recovery runs from it)")
	h.wait("(not allowed: it holds the backup)")
	h.key(tcell.KeyEnter) // mmcblk0
	h.wait("the recovery runs from it: this disk cannot be used")
	h.down(1)
	h.key(tcell.KeyEnter) // sda
	h.wait("it holds the backup: this disk cannot be used")
	h.down(2)
	h.key(tcell.KeyEnter) // sdc, 4 KiB
	h.wait("target disk too small")
	h.key(tcell.KeyEscape)
	h.wait("Backups in")
}

func TestCorruptSet(t *testing.T) {
	w := newWorld(t)
	h := start(t, w, nil)
	h.wait("Restore a backup")
	h.rune('r')
	h.wait("Network or other location")
	h.rune('n')
	h.wait("Location")
	h.typeText("dir:" + w.CorruptDir)
	h.key(tcell.KeyEnter)
	h.wait("Backups in")
	h.key(tcell.KeyEnter)
	h.wait("Restore " + w.NewestSet + " onto")
	h.down(2)
	h.key(tcell.KeyEnter)
	h.wait("corrupt set")
	h.key(tcell.KeyEscape)
	h.wait("Backups in")
}

func TestUnreachableAndBadLocation(t *testing.T) {
	w := newWorld(t)
	h := start(t, w, nil)
	h.wait("Restore a backup")
	h.rune('r')
	h.wait("Network or other location")
	h.rune('n')
	h.wait("Location")
	h.typeText("ftp://x/y")
	h.key(tcell.KeyEnter)
	h.wait(`unknown scheme "ftp"`)
	for range len("ftp://x/y") {
		h.key(tcell.KeyBackspace2)
	}
	h.typeText("nfs://nas.invalid/export")
	h.key(tcell.KeyEnter)
	h.wait("server unreachable")
	h.key(tcell.KeyEscape) // closes the form
	h.wait("Network or other location")
	h.key(tcell.KeyEscape)
	h.wait("Restore a backup")
}

func TestSFTPHostKeyAndWrongPassword(t *testing.T) {
	w := newWorld(t)
	h := start(t, w, nil)
	h.wait("Restore a backup")
	h.rune('r')
	h.wait("Network or other location")
	h.rune('n')
	h.wait("Location")
	h.typeText(tuitest.SFTPURL)
	h.key(tcell.KeyEnter) // to the password field
	h.typeText("wrong")
	h.key(tcell.KeyEnter)
	h.wait(tuitest.SFTPHostKey)
	h.wait("Accept this key")
	h.key(tcell.KeyTab) // Reject → Accept
	h.key(tcell.KeyEnter)
	h.wait("authentication failed")
	h.wait("Network or other location")
	h.rune('n')
	h.wait("Location")
	h.typeText(tuitest.SFTPURL)
	h.key(tcell.KeyEnter)
	h.typeText(tuitest.SFTPPassword)
	h.key(tcell.KeyEnter)
	// The key was pinned for the session: no second question.
	h.wait("Backups in " + tuitest.SFTPURL)
	if strings.Contains(h.text(), "secret") {
		t.Errorf("the password is on the screen")
	}
}

func TestLogPaneAndShell(t *testing.T) {
	w := newWorld(t)
	h := start(t, w, nil)
	h.wait("Restore a backup")
	h.rune('r')
	h.wait("Network or other location")
	h.rune('n')
	h.wait("Location")
	h.typeText("dir:/nonexistent")
	h.key(tcell.KeyEnter)
	h.wait("server unreachable")
	h.key(tcell.KeyF2)
	h.wait("Log (Esc: close)")
	h.wait("ui step failed")
	h.key(tcell.KeyEscape)
	h.wait("Network or other location")
	h.key(tcell.KeyEscape)
	h.wait("Shell (experts)")
	h.key(tcell.KeyCtrlC) // must not quit
	h.rune('s')
	deadline := time.Now().Add(5 * time.Second)
	for h.shells.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	h.wait("Restore a backup")
}

func TestVerifyAndClone(t *testing.T) {
	w := newWorld(t)
	h := start(t, w, nil)
	h.wait("Verify a backup")
	h.rune('v')
	h.wait("Network or other location")
	h.rune('n')
	h.wait("Location")
	h.typeText("dir:" + w.BackupDir)
	h.key(tcell.KeyEnter)
	h.wait("Backups in")
	h.down(1)
	h.key(tcell.KeyEnter)
	h.wait("Verify complete")
	h.key(tcell.KeyEscape)
	h.wait("Clone a disk")
	h.rune('c')
	h.wait("Disk to copy")
	h.down(3) // sdc
	h.key(tcell.KeyEnter)
	h.wait("Clone " + w.Small.Path + " onto")
	h.down(2) // sdb
	h.key(tcell.KeyEnter)
	h.wait("Nothing has been written yet")
	h.key(tcell.KeyEnter)
	h.wait("Type sdb")
	h.typeText("sdb")
	h.key(tcell.KeyEnter)
	h.wait("Clone complete")
}

// TestUSBDiskPluggedInLater: a backup disk that appears while "Where are
// the backups?" is shown (plugged in, or found by the kernel a moment
// after boot) is listed without leaving the page, and can be chosen.
func TestUSBDiskPluggedInLater(t *testing.T) {
	w := newWorld(t)
	all := w.Disks.List
	w.Disks.Set([]source.Disk{w.Boot, w.Target, w.Small})
	h := start(t, w, nil)
	h.wait("Restore a backup")
	h.rune('r')
	h.wait("Network or other location")
	if strings.Contains(h.text(), "BACKUP") {
		t.Fatalf("the backup disk is listed before it is plugged in:\n%s", h.text())
	}
	w.Disks.Set(all)
	h.wait("/dev/sda1  ext4")
	h.wait("BACKUP")
}
