// Package tui is the recovery's text UI: tview views that render the
// state of package model and turn keys into model calls. The model does
// the work; the views only draw and dispatch.
//
// Every model call that can block runs in its own goroutine; the model's
// change listener is the one place that crosses back into the UI
// goroutine (app.QueueUpdateDraw), and redraws are coalesced so a fast
// progress stream cannot flood the event queue.
package tui

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gdamore/tcell/v2"
	"github.com/rivo/tview"

	"github.com/pibackup/pibackup/internal/i18n"
	"github.com/pibackup/pibackup/internal/size"
	"github.com/pibackup/pibackup/internal/source"
	"github.com/pibackup/pibackup/internal/tui/model"
)

// Deps are what the UI needs.
type Deps struct {
	Screen  tcell.Screen // tcell.NewTerminfoScreenFromTty in production, a SimulationScreen in tests
	Model   *model.Model
	Disks   source.DiskLister // local partitions offered as sources
	Log     *Ring             // shown in the log pane; may be nil
	Version string
	// Network describes the network for the header ("eth0 10.0.2.15/24");
	// may be nil.
	Network func() string
	// Shell runs an interactive shell on the console; the UI is
	// suspended meanwhile. nil hides the menu entry.
	Shell func() error
	// OnReady is called once, in its own goroutine, after the first
	// frame is drawn.
	OnReady func()
	// TestKey, when set, runs on F12: the recovery's test-only crash
	// trigger (armed by a kernel command line word); nil in production.
	TestKey func()
	// Lang is the language of the screens ("" is English).
	Lang i18n.Lang
}

// UI is the running application.
type UI struct {
	d       Deps
	m       *model.Model
	p       *i18n.Printer
	app     *tview.Application
	pages   *tview.Pages
	header  *tview.TextView
	status  *tview.TextView
	running *tview.TextView
	logView *tview.TextView

	ctx        context.Context
	shown      model.Screen
	built      bool
	pending    atomic.Bool
	ready      atomic.Bool
	partitions []source.Partition
	sourceKey  string // the partitions the source page lists (partitionsKey)
	filesKey   string // the folder and marks the files page shows
	filesView  *tview.List
}

// New builds the UI on d.Screen. Call Run to start it. (A test may
// resize a SimulationScreen between New and Run: New initialises the
// screen, which resets its size.)
func New(d Deps) *UI {
	u := &UI{d: d, m: d.Model, p: i18n.New(d.Lang), app: tview.NewApplication(), ctx: context.Background()}
	u.app.SetScreen(d.Screen)
	u.header = tview.NewTextView().SetDynamicColors(true)
	u.status = tview.NewTextView().SetDynamicColors(true).SetWrap(true)
	u.pages = tview.NewPages()
	u.running = tview.NewTextView().SetDynamicColors(true)
	u.logView = tview.NewTextView().SetScrollable(true)
	u.logView.SetBorder(true).SetTitle(" " + u.p.Sprintf(i18n.UILogTitle) + " ")
	root := tview.NewFlex().SetDirection(tview.FlexRow).
		AddItem(u.header, 1, 0, false).
		AddItem(u.pages, 0, 1, true).
		AddItem(u.status, 3, 0, false)
	u.app.SetRoot(root, true)
	u.app.SetInputCapture(u.globalKeys)
	u.app.SetAfterDrawFunc(func(tcell.Screen) {
		if d.OnReady != nil && u.ready.CompareAndSwap(false, true) {
			go func() {
				d.OnReady()
				u.app.Sync() // repaint over whatever OnReady printed
			}()
		}
	})
	u.m.OnChange(u.changed)
	u.render()
	return u
}

// App is the tview application (tests stop it).
func (u *UI) App() *tview.Application { return u.app }

// Run runs the UI until ctx is done or Stop is called.
func (u *UI) Run(ctx context.Context) error {
	u.ctx = ctx
	if u.d.Disks != nil {
		go u.watchDisks(ctx, diskPoll)
	}
	stop := context.AfterFunc(ctx, u.app.Stop)
	defer stop()
	return u.app.Run()
}

// changed is the model listener: one pending redraw at a time.
func (u *UI) changed() {
	if u.pending.CompareAndSwap(false, true) {
		go u.app.QueueUpdateDraw(func() {
			u.pending.Store(false)
			u.render()
		})
	}
}

// do runs a model call off the UI goroutine. Errors are in the model's
// state; the few the model does not record are shown here.
func (u *UI) do(f func() error) {
	go func() {
		if err := f(); errors.Is(err, model.ErrBusy) || errors.Is(err, model.ErrWrongScreen) || errors.Is(err, model.ErrRunning) {
			u.m.SetError(err)
		}
	}()
}

func (u *UI) globalKeys(ev *tcell.EventKey) *tcell.EventKey {
	switch ev.Key() {
	case tcell.KeyCtrlC:
		return nil // never quit: the recovery powers off instead
	case tcell.KeyF2:
		u.toggleLog()
		return nil
	case tcell.KeyF12:
		if u.d.TestKey != nil {
			u.d.TestKey()
			return nil
		}
	case tcell.KeyEscape:
		if st := u.m.State(); st.Screen == model.Files && !st.AtRoot() {
			u.do(u.m.Up)
			return nil
		}
		if name, _ := u.pages.GetFrontPage(); name == "log" {
			u.toggleLog()
			return nil
		}
		if name, _ := u.pages.GetFrontPage(); name == "sourceform" {
			u.pages.RemovePage("sourceform")
			u.built = false
			u.render()
			return nil
		}
		u.do(u.m.Back)
		return nil
	}
	return ev
}

func (u *UI) toggleLog() {
	if u.pages.HasPage("log") {
		u.pages.RemovePage("log")
		u.built = false
		u.render()
		return
	}
	text := u.p.Sprintf(i18n.UINoLog)
	if u.d.Log != nil {
		text = u.d.Log.String()
	}
	u.logView.SetText(text).ScrollToEnd()
	u.pages.AddPage("log", u.logView, true, true)
	u.app.SetFocus(u.logView)
}

// render shows the model's state. UI goroutine only.
func (u *UI) render() {
	st := u.m.State()
	net := ""
	if u.d.Network != nil {
		net = u.d.Network()
	}
	u.header.SetText(fmt.Sprintf("[::b]pibackup recovery %s[::-]   %s   [gray]%s[-]", tview.Escape(u.d.Version), tview.Escape(net), u.p.Sprintf(i18n.UIHeaderKeys)))
	u.renderStatus(st)
	if !u.built || st.Screen != u.shown || (st.Screen == model.Files && filesKey(st) != u.filesKey) {
		if name, _ := u.pages.GetFrontPage(); name == "log" && u.built {
			return // keep the log open; the screen updates when it closes
		}
		u.build(st)
		u.shown, u.built = st.Screen, true
	}
	if st.Screen == model.Running || st.Screen == model.Result {
		u.running.SetText(runningText(u.p, st))
	}
}

func (u *UI) renderStatus(st model.State) {
	var b strings.Builder
	switch {
	case !st.Busy.IsZero():
		fmt.Fprintf(&b, "[yellow]… %s[-]\n", tview.Escape(u.p.Msg(st.Busy)))
	case st.Err != nil:
		fmt.Fprintf(&b, "[red::b]%s[-::-] [red]%s[-]\n", u.p.Sprintf(i18n.UIError), tview.Escape(u.p.Translate(st.Err)))
	default:
		b.WriteString("\n")
	}
	b.WriteString("[gray]" + u.p.Sprintf(hints[st.Screen]) + "[-]")
	u.status.SetText(b.String())
}

var hints = map[model.Screen]i18n.ID{
	model.Home:      i18n.UIHintHome,
	model.Source:    i18n.UIHintSource,
	model.HostKey:   i18n.UIHintHostKey,
	model.Sets:      i18n.UIHintSets,
	model.CloneFrom: i18n.UIHintCloneFrom,
	model.Target:    i18n.UIHintTarget,
	model.Plan:      i18n.UIHintPlan,
	model.Confirm:   i18n.UIHintConfirm,
	model.Running:   i18n.UIHintRunning,
	model.Result:    i18n.UIHintResult,
	model.Files:     i18n.UIHintFiles,
	model.FileDest:  i18n.UIHintFileDest,
	model.Key:       i18n.UIHintKey,
}

// build replaces the page for the state's screen.
func (u *UI) build(st model.State) {
	var p tview.Primitive
	switch st.Screen {
	case model.Home:
		p = u.homePage()
	case model.Source:
		p = u.sourcePage()
	case model.HostKey:
		p = u.hostKeyPage(st)
	case model.Sets:
		p = u.setsPage(st)
	case model.CloneFrom, model.Target:
		p = u.disksPage(st)
	case model.Plan:
		p = u.planPage(st)
	case model.Confirm:
		p = u.confirmPage(st)
	case model.Running:
		p = u.runningPage()
	case model.Result:
		p = u.resultPage(st)
	case model.Files:
		p = u.filesPage(st)
	case model.FileDest:
		p = u.fileDestPage(st)
	case model.Key:
		p = u.keyPage()
	}
	for _, name := range []string{"screen", "sourceform"} {
		u.pages.RemovePage(name)
	}
	u.pages.AddPage("screen", p, true, true)
	u.app.SetFocus(p)
}

func titled(p *tview.Box, title string) { p.SetBorder(true).SetTitle(" " + title + " ") }

func (u *UI) homePage() tview.Primitive {
	l := tview.NewList()
	p := u.p
	titled(l.Box, p.Sprintf(i18n.UIHomeTitle))
	l.AddItem(p.Sprintf(i18n.UIRestore), p.Sprintf(i18n.UIRestoreHelp), 'r', func() { u.do(func() error { return u.m.Start(model.TaskRestore) }) })
	l.AddItem(p.Sprintf(i18n.UIVerify), p.Sprintf(i18n.UIVerifyHelp), 'v', func() { u.do(func() error { return u.m.Start(model.TaskVerify) }) })
	l.AddItem(p.Sprintf(i18n.UIClone), p.Sprintf(i18n.UICloneHelp), 'c', func() { u.do(func() error { return u.m.Start(model.TaskClone) }) })
	if u.m.HasFiles() {
		l.AddItem(p.Sprintf(i18n.UIFiles), p.Sprintf(i18n.UIFilesHelp), 'f', func() { u.do(func() error { return u.m.Start(model.TaskFiles) }) })
	}
	l.AddItem(p.Sprintf(i18n.UIShowLog), p.Sprintf(i18n.UIShowLogHelp), 'l', u.toggleLog)
	if u.d.Shell != nil {
		l.AddItem(p.Sprintf(i18n.UIShell), p.Sprintf(i18n.UIShellHelp), 's', u.shell)
	}
	l.AddItem(p.Sprintf(i18n.UIReboot), "", 'b', func() { u.do(func() error { return u.m.Reboot(true) }) })
	l.AddItem(p.Sprintf(i18n.UIPowerOff), "", 'p', func() { u.do(func() error { return u.m.Reboot(false) }) })
	return l
}

func (u *UI) shell() {
	var err error
	u.app.Suspend(func() { err = u.d.Shell() })
	if err != nil {
		u.m.SetError(fmt.Errorf("shell: %w", err))
	}
}

// usable are the file systems a local backup partition may have.
var usable = map[string]bool{"vfat": true, "exfat": true, "ext4": true, "ext3": true, "ext2": true}

func (u *UI) sourcePage() tview.Primitive {
	l := tview.NewList()
	titled(l.Box, u.p.Sprintf(i18n.UISourceTitle))
	u.partitions, u.sourceKey = nil, ""
	if u.d.Disks != nil {
		disks, err := u.d.Disks.Disks()
		if err != nil {
			l.AddItem(u.p.Sprintf(i18n.UICannotListDisks, err), "", 0, nil)
		}
		var models []string
		u.partitions, models = usableParts(disks)
		u.sourceKey = partitionsKey(u.partitions)
		for i, p := range u.partitions {
			main := fmt.Sprintf("%s  %s  %s  %s", p.Path, p.FSType, size.Format(p.Size), p.Label)
			l.AddItem(main, models[i], 0, func() {
				sp := source.Spec{Kind: source.KindUSB, Device: p.Path, Path: "."}
				u.do(func() error { return u.m.Connect(u.ctx, sp) })
			})
		}
	}
	l.AddItem(u.p.Sprintf(i18n.UIOtherLocation), "nfs://, smb://, sftp://, usb:LABEL/path, dir:/path", 'n', u.showSourceForm)
	return l
}

// usableParts are the partitions of disks that may hold backups, with the
// model of the disk each is on.
func usableParts(disks []source.Disk) (parts []source.Partition, models []string) {
	for _, d := range disks {
		for _, p := range d.Partitions {
			if usable[p.FSType] {
				parts = append(parts, p)
				models = append(models, d.Model)
			}
		}
	}
	return parts, models
}

// partitionsKey tells two listings of partitions apart.
func partitionsKey(parts []source.Partition) string {
	var b strings.Builder
	for _, p := range parts {
		fmt.Fprintf(&b, "%s %s %d %s\n", p.Path, p.FSType, p.Size, p.Label)
	}
	return b.String()
}

// diskPoll is how often the source page looks for disks plugged in (or
// pulled) while it is shown.
const diskPoll = 2 * time.Second

// watchDisks rebuilds the source page when the usable partitions change:
// a USB disk plugged in after the page was drawn (or found by the kernel
// a moment after boot) must appear without the user going back and forth.
// It lists disks off the UI goroutine and queues a redraw only on change.
func (u *UI) watchDisks(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	last := ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		disks, err := u.d.Disks.Disks()
		if err != nil {
			continue
		}
		parts, _ := usableParts(disks)
		key := partitionsKey(parts)
		if key == last {
			continue
		}
		last = key
		u.app.QueueUpdateDraw(func() {
			front, _ := u.pages.GetFrontPage()
			if u.built && u.shown == model.Source && front == "screen" && key != u.sourceKey {
				u.built = false
				u.render()
			}
		})
	}
}

func (u *UI) showSourceForm() {
	loc := tview.NewInputField().SetLabel(u.p.Sprintf(i18n.UILocation) + " ").SetFieldWidth(70).
		SetPlaceholder("sftp://user@host/path  nfs://host/export  smb://host/share/path  s3://key@bucket/prefix")
	pw := tview.NewInputField().SetLabel(u.p.Sprintf(i18n.UIPassword) + " ").SetFieldWidth(30).SetMaskCharacter('*')
	help := tview.NewTextView().SetText(u.p.Sprintf(i18n.UIFormKeys) + "\n" +
		"sftp://user@host[:port]/path   nfs://host/export[?vers=3]   smb://[user@]host/share/path\n" +
		"usb:LABEL/path   dir:/path   https://host/path/HOST/SET/\n" + u.p.Sprintf(i18n.UIFormS3))
	form := tview.NewFlex().SetDirection(tview.FlexRow).
		AddItem(loc, 1, 0, true).AddItem(pw, 1, 0, false).AddItem(tview.NewBox(), 1, 0, false).AddItem(help, 0, 1, false)
	titled(form.Box, u.p.Sprintf(i18n.UILocation))
	connect := func() {
		sp, err := source.ParseURL(strings.TrimSpace(loc.GetText()))
		if err != nil {
			u.m.SetError(err)
			return
		}
		sp.Password = pw.GetText()
		u.do(func() error { return u.m.Connect(u.ctx, sp) })
	}
	needsPassword := func() bool {
		t := loc.GetText()
		return strings.HasPrefix(t, "sftp:") || strings.HasPrefix(t, "smb:") || strings.HasPrefix(t, "s3:")
	}
	loc.SetDoneFunc(func(k tcell.Key) {
		switch {
		case k == tcell.KeyTab || k == tcell.KeyBacktab || (k == tcell.KeyEnter && needsPassword() && pw.GetText() == ""):
			u.app.SetFocus(pw)
		case k == tcell.KeyEnter:
			connect()
		}
	})
	pw.SetDoneFunc(func(k tcell.Key) {
		switch k {
		case tcell.KeyTab, tcell.KeyBacktab:
			u.app.SetFocus(loc)
		case tcell.KeyEnter:
			connect()
		}
	})
	u.pages.AddPage("sourceform", form, true, true)
	u.app.SetFocus(loc)
}

func (u *UI) hostKeyPage(st model.State) tview.Primitive {
	hk := st.HostKey
	text := tview.NewTextView().SetText(u.p.Sprintf(i18n.UIHostKeyText, hk.Addr, hk.KeyType, hk.Fingerprint))
	buttons := tview.NewForm().
		AddButton(u.p.Sprintf(i18n.UIReject), func() { u.do(u.m.Back) }).
		AddButton(u.p.Sprintf(i18n.UIAccept), func() { u.do(func() error { return u.m.AcceptHostKey(u.ctx) }) })
	flex := tview.NewFlex().SetDirection(tview.FlexRow).AddItem(text, 8, 0, false).AddItem(buttons, 3, 0, true)
	titled(flex.Box, u.p.Sprintf(i18n.UIHostKeyTitle))
	return flex
}

func (u *UI) setsPage(st model.State) tview.Primitive {
	l := tview.NewList().ShowSecondaryText(false)
	titled(l.Box, u.p.Sprintf(i18n.UISetsTitle, st.Source))
	for i, s := range st.Sets {
		sz := "?"
		if s.Size >= 0 {
			sz = size.Format(s.Size)
		}
		man := u.p.Sprintf(i18n.UINoManifest)
		if s.HasManifest {
			man = u.p.Sprintf(i18n.UIManifest)
		}
		text := fmt.Sprintf("%s  %-10s %-6s %9s  %-11s %s", s.Name.Time.Format("2006-01-02 15:04"), s.Name.Host, s.Name.Type, sz, man, s.Note)
		if !s.Available {
			text = "[gray]" + tview.Escape(text) + "[-]"
		}
		l.AddItem(text, "", 0, func() { u.do(func() error { return u.m.SelectSet(u.ctx, i) }) })
	}
	return l
}

func (u *UI) disksPage(st model.State) tview.Primitive {
	l := tview.NewList()
	title := u.p.Sprintf(i18n.UIDiskToOverwrite)
	if st.Screen == model.CloneFrom {
		title = u.p.Sprintf(i18n.UIDiskToCopy)
	} else if st.Set != nil {
		title = u.p.Sprintf(i18n.UIRestoreOnto, st.Set.String())
	} else if st.From != nil {
		title = u.p.Sprintf(i18n.UICloneOnto, st.From.Path)
	}
	titled(l.Box, title)
	for i, d := range st.Disks {
		var parts []string
		for _, p := range d.Partitions {
			parts = append(parts, strings.TrimSpace(fmt.Sprintf("%s %s %s", p.Name, p.FSType, p.Label)))
		}
		second := strings.Join(parts, ", ")
		main := tview.Escape(d.Describe())
		if !d.Eligible() {
			main = "[gray]" + main + "  " + tview.Escape(u.p.Sprintf(i18n.UINotAllowed, d.Why)) + "[-]"
		}
		l.AddItem(main, second, 0, func() {
			if st.Screen == model.CloneFrom {
				u.do(func() error { return u.m.SelectFrom(i) })
				return
			}
			u.do(func() error { return u.m.SelectTarget(u.ctx, i) })
		})
	}
	return l
}

func (u *UI) planPage(st model.State) tview.Primitive {
	// A plan is often longer than an 80×24 terminal (a serial console, an
	// SSH client's default size): it scrolls, and the line saying that
	// nothing has been written stays visible below it.
	t := tview.NewTextView().SetText(st.Plan)
	t.SetInputCapture(func(ev *tcell.EventKey) *tcell.EventKey {
		if ev.Key() == tcell.KeyEnter {
			u.do(u.m.Proceed)
			return nil
		}
		return ev
	})
	note := tview.NewTextView().SetText(u.p.Sprintf(i18n.UINothingWritten))
	flex := tview.NewFlex().SetDirection(tview.FlexRow).AddItem(t, 0, 1, true).AddItem(note, 1, 0, false)
	titled(flex.Box, u.p.Sprintf(i18n.UIPlanTitle))
	return flex
}

// keyPage asks for what opens an encrypted set: the passphrase, or an
// identity (typed as its AGE-SECRET-KEY-1 line, or the path of its file).
func (u *UI) keyPage() tview.Primitive {
	in := tview.NewInputField().SetLabel(u.p.Sprintf(i18n.UIKeyPrompt) + " ").SetFieldWidth(70).SetMaskCharacter('*')
	in.SetDoneFunc(func(k tcell.Key) {
		if k == tcell.KeyEnter {
			typed := in.GetText()
			u.do(func() error { return u.m.EnterKey(u.ctx, typed) })
		}
	})
	help := tview.NewTextView().SetText(u.p.Sprintf(i18n.UIKeyHelp))
	flex := tview.NewFlex().SetDirection(tview.FlexRow).AddItem(help, 3, 0, false).AddItem(in, 1, 0, true)
	titled(flex.Box, u.p.Sprintf(i18n.UIKeyTitle))
	return flex
}

func (u *UI) confirmPage(st model.State) tview.Primitive {
	d := st.Target
	in := tview.NewInputField().SetLabel(u.p.Sprintf(i18n.UITypeToErase, st.ConfirmWord, d.Name)).SetFieldWidth(16)
	in.SetDoneFunc(func(k tcell.Key) {
		if k == tcell.KeyEnter {
			typed := in.GetText()
			u.do(func() error { return u.m.Confirm(u.ctx, typed) })
		}
	})
	warn := tview.NewTextView().SetDynamicColors(true).SetText(fmt.Sprintf(
		"[red::b]%s[-::-]\n    %s\n", u.p.Sprintf(i18n.UIAllLost), tview.Escape(d.Describe())))
	flex := tview.NewFlex().SetDirection(tview.FlexRow).AddItem(warn, 3, 0, false).AddItem(in, 1, 0, true)
	titled(flex.Box, u.p.Sprintf(i18n.UIConfirmTitle))
	return flex
}

func (u *UI) runningPage() tview.Primitive {
	titled(u.running.Box, u.p.Sprintf(i18n.UIWorkingTitle))
	u.running.SetInputCapture(func(ev *tcell.EventKey) *tcell.EventKey {
		if ev.Key() == tcell.KeyRune && ev.Rune() == 'c' {
			u.confirmCancel()
			return nil
		}
		return ev
	})
	return u.running
}

func (u *UI) confirmCancel() {
	cancelJob := u.p.Sprintf(i18n.UICancelJob)
	m := tview.NewModal().SetText(u.p.Sprintf(i18n.UICancelQuestion)).
		AddButtons([]string{u.p.Sprintf(i18n.UIKeepGoing), cancelJob}).
		SetDoneFunc(func(_ int, label string) {
			u.pages.RemovePage("cancel")
			u.app.SetFocus(u.running)
			if label == cancelJob {
				u.do(u.m.Cancel)
			}
		})
	u.pages.AddPage("cancel", m, true, true)
	u.app.SetFocus(m)
}

func (u *UI) resultPage(st model.State) tview.Primitive {
	l := tview.NewList().ShowSecondaryText(false)
	l.AddItem(u.p.Sprintf(i18n.UIBackToMenu), "", 'm', func() { u.do(u.m.Back) })
	l.AddItem(u.p.Sprintf(i18n.UIReboot), "", 'b', func() { u.do(func() error { return u.m.Reboot(true) }) })
	l.AddItem(u.p.Sprintf(i18n.UIPowerOff), "", 'p', func() { u.do(func() error { return u.m.Reboot(false) }) })
	u.running.SetInputCapture(nil)
	titled(u.running.Box, u.p.Sprintf(i18n.UIResultTitle))
	flex := tview.NewFlex().SetDirection(tview.FlexRow).
		AddItem(u.running, 0, 1, false).
		AddItem(l, 5, 0, true)
	return flex
}

// taskNames are the tasks as the Running and Result screens name them.
var taskNames = map[model.Task]i18n.ID{
	model.TaskRestore: i18n.UITaskRestore,
	model.TaskVerify:  i18n.UITaskVerify,
	model.TaskClone:   i18n.UITaskClone,
	model.TaskFiles:   i18n.UITaskFiles,
}

// runningText is the Running and Result text.
func runningText(p *i18n.Printer, st model.State) string {
	var b strings.Builder
	task := p.Sprintf(taskNames[st.Task])
	what := task
	if st.Set != nil {
		what += " " + st.Set.String()
	}
	if st.Target != nil {
		what = p.Sprintf(i18n.UIOnto, what, st.Target.Path)
	}
	fmt.Fprintf(&b, "%s\n\n", tview.Escape(what))
	if st.Screen == model.Running {
		pr := st.Progress
		if pr.Phase == "" {
			b.WriteString(p.Sprintf(i18n.UIStarting) + "\n")
			return b.String()
		}
		b.WriteString(tview.Escape(p.Sprintf(i18n.UIPhase, pr.Phase)) + "\n")
		if pct := pr.Percent(); pct >= 0 {
			b.WriteString(tview.Escape(p.Sprintf(i18n.UIDoneOf, size.Format(pr.Done), size.Format(pr.Total), pct)) + "\n")
			fmt.Fprintf(&b, "         %s\n", bar(pct, 50))
		} else {
			b.WriteString(p.Sprintf(i18n.UIDone, size.Format(pr.Done)) + "\n")
		}
		b.WriteString(p.Sprintf(i18n.UIRate, size.Format(int64(pr.Rate))) + "\n")
		if pr.ETA >= 0 {
			b.WriteString(p.Sprintf(i18n.UIETA, pr.ETA) + "\n")
		}
		b.WriteString(p.Sprintf(i18n.UITotal, size.Format(pr.All)) + "\n")
		return b.String()
	}
	o := st.Outcome
	rate := ""
	if s := o.Duration.Seconds(); s > 0 {
		rate = fmt.Sprintf(" (%s/s)", size.Format(int64(float64(o.Bytes)/s)))
	}
	if st.RunErr != nil {
		fmt.Fprintf(&b, "[red::b]%s[-::-]\n\n%s\n\n", p.Sprintf(i18n.UIFailed, task), tview.Escape(p.Translate(st.RunErr)))
		if o.Incomplete {
			b.WriteString(p.Sprintf(i18n.UIIncomplete) + "\n")
		}
		b.WriteString(p.Sprintf(i18n.UIWrittenBefore, size.Format(o.Bytes)) + "\n")
		return b.String()
	}
	fmt.Fprintf(&b, "[green::b]%s[-::-]\n\n%s\n", p.Sprintf(i18n.UIComplete, task),
		p.Sprintf(i18n.UIBytesIn, size.Format(o.Bytes), o.Duration.Round(time.Second/10), rate))
	if o.Verified {
		b.WriteString(p.Sprintf(i18n.UIVerified) + "\n")
	}
	if o.Where != "" {
		b.WriteString(tview.Escape(p.Sprintf(i18n.UICopiedTo, o.Where)) + "\n")
	}
	if o.Skipped > 0 {
		b.WriteString(p.Sprintf(i18n.UISkippedOnFAT, o.Skipped) + "\n")
	}
	return b.String()
}

func bar(pct float64, width int) string {
	n := int(pct / 100 * float64(width))
	n = max(0, min(n, width))
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "]"
}
