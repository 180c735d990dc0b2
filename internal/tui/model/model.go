// Package model is the state machine of the recovery UI: which screen is
// shown, what the user picked, what went wrong. It does no drawing and
// does not import tview; the views in package tui render its State and
// turn keys into calls of its methods.
//
// The flows:
//
//	restore: Home → Source → [HostKey] → Sets → Target → Plan → Confirm → Running → Result
//	verify:  Home → Source → [HostKey] → Sets → Running → Result
//	clone:   Home → CloneFrom → Target → Plan → Confirm → Running → Result
//	files:   Home → Source → [HostKey] → Sets → Files → FileDest → Running → Result
//
// Back returns to the previous screen from every screen but Running.
// Nothing is written to a disk before Confirm.
//
// Methods may block (they connect to servers, list folders, run the
// engine) and are safe for concurrent use: the view calls them from
// goroutines and re-renders when a listener fires. An action started
// while another runs fails with ErrBusy.
package model

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/i18n"
	"github.com/pibackup/pibackup/internal/payload"
	"github.com/pibackup/pibackup/internal/progress"
	"github.com/pibackup/pibackup/internal/source"
)

// Screen is one step of a flow.
type Screen int

// The screens.
const (
	Home Screen = iota
	Source
	HostKey
	Sets
	CloneFrom
	Target
	Plan
	Confirm
	Running
	Result
	Files
	FileDest
	Key // the set is encrypted: a passphrase or identity is asked for
)

var screenNames = [...]string{"home", "source", "host key", "sets", "clone from", "target", "plan", "confirm", "running", "result", "files", "file destination", "key"}

func (s Screen) String() string {
	if int(s) < len(screenNames) {
		return screenNames[s]
	}
	return fmt.Sprintf("screen(%d)", int(s))
}

// Task is what the user chose on the home screen.
type Task int

// The tasks.
const (
	TaskRestore Task = iota
	TaskVerify
	TaskClone
	TaskFiles // get files back: browse a set, copy some files out
)

func (t Task) String() string {
	return [...]string{"restore", "verify", "clone", "files"}[t]
}

// Opener opens a source; *source.Opener implements it.
type Opener interface {
	Open(ctx context.Context, sp source.Spec) (source.Source, error)
}

// Request is what the engine is asked to do.
type Request struct {
	Task   Task
	Source source.Source // restore, verify
	Set    backupset.Set // restore, verify
	From   source.Disk   // clone
	Target source.Disk   // restore, clone
	// Key is what the user typed on the Key screen for an encrypted set:
	// a passphrase, an AGE-SECRET-KEY-1 line or the path of an identity
	// file; "" for none.
	Key string
}

// PlanText is the engine's dry run: what it would do, as text.
type PlanText interface{ String() string }

// Outcome is what a finished job reports.
type Outcome struct {
	Bytes      int64
	Duration   time.Duration
	Verified   bool
	Incomplete bool   // the target was partly written and is not usable
	Where      string // files: the folder the files were copied into
	Skipped    int    // files: entries the destination cannot hold, left out
}

// Engine plans and runs restores, clones and verifies. The adapter in
// package main wires in internal/restore and internal/verify; tests use
// a fake.
type Engine interface {
	// Plan checks the request and says what would be done. It writes
	// nothing. For TaskVerify it may return a nil PlanText.
	Plan(ctx context.Context, r Request) (PlanText, error)
	// Run carries out a plan returned by Plan.
	Run(ctx context.Context, p PlanText, r Request, rep progress.Reporter) (Outcome, error)
}

// Power reboots or powers off the machine.
type Power func(reboot bool) error

// Deps are what the model needs from the outside.
type Deps struct {
	Opener Opener
	Disks  source.DiskLister
	Engine Engine
	// BootDisk is the disk the recovery booted from ("/dev/mmcblk0"); it
	// is never a target.
	BootDisk string
	// KnownHosts are host keys pinned before the UI starts (from
	// recovery.conf), by host:port.
	KnownHosts map[string]string
	Power      Power
	Log        *slog.Logger
	Now        func() time.Time // nil: time.Now
	// Browser opens sets for the files flow; nil hides that task.
	Browser Browser
	// MountDest mounts a partition writable for the files flow.
	MountDest DestMounter
}

// Errors of the model's own rules.
var (
	ErrBusy        = i18n.Err(i18n.UIErrBusy)
	ErrWrongScreen = i18n.Err(i18n.UIErrWrongScreen)
	ErrNoSets      = i18n.Err(i18n.UIErrNoSets)
	ErrIneligible  = i18n.Err(i18n.UIErrIneligible)
	ErrConfirm     = i18n.Err(i18n.UIErrConfirm)
	ErrRunning     = i18n.Err(i18n.UIErrRunning)
	ErrCancelled   = i18n.Err(i18n.UIErrCancelled)
)

// SetInfo is one row of the Sets screen.
type SetInfo struct {
	backupset.Set
	Size      int64 // payload bytes; -1 unknown
	Note      string
	Available bool // false for sets in progress
}

// DiskChoice is one row of the Target and CloneFrom screens.
type DiskChoice struct {
	source.Disk
	Why string // "" when eligible, else why not
}

// Eligible reports whether the disk may be picked.
func (d DiskChoice) Eligible() bool { return d.Why == "" }

// State is a copy of everything the view shows.
type State struct {
	Screen  Screen
	Task    Task
	Busy    i18n.Msg // what is running now, zero when idle
	Err     error    // the last error, shown on the current screen
	Source  string   // the opened source
	HostKey *source.HostKeyError
	Sets    []SetInfo
	Set     *SetInfo
	Disks   []DiskChoice
	From    *source.Disk
	Target  *source.Disk
	Plan    string
	// ConfirmWord is what the user must type on the Confirm screen.
	ConfirmWord string
	Progress    ProgressState
	Outcome     Outcome
	RunErr      error // the job's error, on the Result screen
	CanCancel   bool

	// The files flow: the folder shown (absolute in the set's root
	// filesystem), its entries, the marked paths (sorted) and the
	// partitions the files may be copied to.
	Dir     string
	Entries []FileEntry
	Marked  []string
	Dests   []source.Partition
}

// Model is the UI state machine. Create it with New.
type Model struct {
	deps Deps
	log  *slog.Logger

	mu        sync.Mutex
	st        State
	history   []Screen
	spec      source.Spec // pending spec (host key confirmation)
	src       source.Source
	known     map[string]string
	plan      PlanText
	key       string // typed on the Key screen; kept until home
	keyDisk   int    // the target index the Key screen plans for
	cancel    context.CancelFunc
	listeners []func()
	prog      *Progress
	tree      Tree // the set opened by the files flow
}

// New returns a model on the Home screen.
func New(d Deps) *Model {
	if d.Now == nil {
		d.Now = time.Now
	}
	log := d.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Model{deps: d, log: log, known: map[string]string{}}
	for k, v := range d.KnownHosts {
		m.known[k] = v
	}
	m.prog = newProgress(d.Now, m.notify)
	return m
}

// OnChange registers f to be called after every change of state. f is
// called without the model's lock held, possibly from any goroutine.
func (m *Model) OnChange(f func()) {
	m.mu.Lock()
	m.listeners = append(m.listeners, f)
	m.mu.Unlock()
}

func (m *Model) notify() {
	m.mu.Lock()
	ls := append([]func(){}, m.listeners...)
	m.mu.Unlock()
	for _, f := range ls {
		f()
	}
}

// State returns a copy of the current state.
func (m *Model) State() State {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.st
	s.Sets = append([]SetInfo(nil), s.Sets...)
	s.Disks = append([]DiskChoice(nil), s.Disks...)
	s.Entries = append([]FileEntry(nil), s.Entries...)
	s.Marked = append([]string(nil), s.Marked...)
	s.Dests = append([]source.Partition(nil), s.Dests...)
	s.Progress = m.prog.State()
	return s
}

// update runs f under the lock and then notifies listeners.
func (m *Model) update(f func()) {
	m.mu.Lock()
	f()
	m.mu.Unlock()
	m.notify()
}

// begin checks that the model is idle and on one of screens, and marks it
// busy with what. The caller must call end.
func (m *Model) begin(what i18n.Msg, screens ...Screen) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.st.Busy.IsZero() {
		return ErrBusy
	}
	ok := false
	for _, s := range screens {
		ok = ok || m.st.Screen == s
	}
	if !ok {
		return fmt.Errorf("%s on screen %s: %w", i18n.New(i18n.English).Msg(what), m.st.Screen, ErrWrongScreen)
	}
	m.st.Busy, m.st.Err = what, nil
	go m.notify()
	return nil
}

// end clears busy, records err and, when err is nil, runs f (a state
// change) under the lock.
func (m *Model) end(err error, f func()) error {
	var screen Screen
	m.update(func() {
		m.st.Busy = i18n.Msg{}
		m.st.Err = err
		if err == nil && f != nil {
			f()
		}
		screen = m.st.Screen
	})
	if err != nil {
		m.log.Warn("ui step failed", "screen", screen.String(), "err", err)
	}
	return err
}

// goTo moves to s, remembering the current screen for Back. Lock held.
func (m *Model) goTo(s Screen) {
	m.history = append(m.history, m.st.Screen)
	m.st.Screen = s
	m.st.Err = nil
}

// Start begins a task from the Home screen.
func (m *Model) Start(t Task) error {
	if err := m.begin(i18n.M(i18n.UIBusyStart), Home); err != nil {
		return err
	}
	if t == TaskClone {
		disks, err := m.deps.Disks.Disks()
		if err != nil {
			return m.end(fmt.Errorf("list disks: %w", err), nil)
		}
		return m.end(nil, func() {
			m.st.Task = t
			m.st.Disks = m.choices(disks, "")
			m.goTo(CloneFrom)
		})
	}
	return m.end(nil, func() {
		m.st.Task = t
		m.goTo(Source)
	})
}

// Connect opens the source sp and lists its sets. An SFTP server whose
// host key is not known yet leads to the HostKey screen; nothing secret
// has been sent at that point.
func (m *Model) Connect(ctx context.Context, sp source.Spec) error {
	if err := m.begin(i18n.M(i18n.UIBusyConnectingTo, sp.String()), Source); err != nil {
		return err
	}
	if sp.Kind == source.KindSFTP && sp.KnownHost == "" {
		m.mu.Lock()
		sp.KnownHost = m.known[sp.Addr()]
		m.mu.Unlock()
	}
	src, err := m.deps.Opener.Open(ctx, sp)
	var hk *source.HostKeyError
	if errors.As(err, &hk) {
		return m.end(nil, func() {
			m.spec = sp
			m.st.HostKey = hk
			m.goTo(HostKey)
		})
	}
	if err != nil {
		return m.end(err, nil)
	}
	return m.opened(src)
}

// opened lists the sets of src and moves to Sets. Busy is set.
func (m *Model) opened(src source.Source) error {
	sets, err := FindSets(src.FS())
	if err == nil && len(sets) == 0 {
		err = fmt.Errorf("%s: %w", src, ErrNoSets)
	}
	if err != nil {
		src.Close()
		return m.end(err, nil)
	}
	return m.end(nil, func() {
		m.src = src
		m.st.Source = src.String()
		m.st.Sets = sets
		m.goTo(Sets)
	})
}

// AcceptHostKey pins the shown host key for this session and connects.
func (m *Model) AcceptHostKey(ctx context.Context) error {
	if err := m.begin(i18n.M(i18n.UIBusyConnecting), HostKey); err != nil {
		return err
	}
	m.mu.Lock()
	sp := m.spec
	hk := m.st.HostKey
	m.known[hk.Addr] = hk.Fingerprint
	m.mu.Unlock()
	sp.KnownHost = hk.Fingerprint
	m.log.Info("host key accepted", "addr", hk.Addr, "fingerprint", hk.Fingerprint)
	src, err := m.deps.Opener.Open(ctx, sp)
	if err != nil {
		// Back to the Source screen, so the user can fix the password;
		// the key stays pinned for the session.
		m.update(func() {
			m.st.Screen, m.history = Source, m.history[:len(m.history)-1]
			m.st.HostKey, m.spec = nil, source.Spec{}
		})
		return m.end(err, nil)
	}
	m.mu.Lock()
	m.spec = source.Spec{}
	m.mu.Unlock()
	return m.opened(src)
}

// FindSets lists the sets in fsys: at its root (a backup folder, a host
// folder or a set folder) or, failing that, one folder down (a USB disk
// with the backups in /backups). Sets come newest first.
func FindSets(fsys fs.FS) ([]SetInfo, error) {
	l, err := backupset.List(fsys, ".")
	if err != nil {
		return nil, err
	}
	sets := l.Sets
	if len(sets) == 0 {
		entries, err := fs.ReadDir(fsys, ".")
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			if sub, err := backupset.List(fsys, e.Name()); err == nil {
				sets = append(sets, sub.Sets...)
			}
		}
		backupset.Sort(sets)
	}
	out := make([]SetInfo, 0, len(sets))
	for _, s := range sets {
		out = append(out, describeSet(fsys, s))
	}
	return out, nil
}

func describeSet(fsys fs.FS, s backupset.Set) SetInfo {
	si := SetInfo{Set: s, Size: -1, Available: !s.InProgress}
	if s.InProgress {
		si.Note = "in progress, not restorable"
		return si
	}
	if s.HasManifest {
		// ReadManifestIn tries the current name, then the legacy one.
		man, _, err := backupset.ReadManifestIn(fsys, s.Dir, s.Name.Host)
		if !errors.Is(err, fs.ErrNotExist) {
			if err == nil {
				si.Size = 0
				for _, file := range man.Files {
					si.Size += file.Size
				}
				for _, t := range man.Trees {
					si.Size += t.Bytes
				}
				return si
			}
			si.Note = "manifest unreadable"
		}
	}
	if len(s.Payload) > 0 {
		si.Size = 0
		for _, p := range s.Payload {
			fi, err := fs.Stat(fsys, path.Join(s.Dir, p))
			if err != nil {
				si.Note = "payload " + p + " unreadable"
				si.Size = -1
				break
			}
			si.Size += fi.Size()
		}
	}
	return si
}

// SelectSet picks a set. For restore it lists the disks and moves to
// Target; for verify it runs the verify.
func (m *Model) SelectSet(ctx context.Context, i int) error {
	if err := m.begin(i18n.M(i18n.UIBusyReadingDisks), Sets); err != nil {
		return err
	}
	m.mu.Lock()
	var si SetInfo
	n := len(m.st.Sets)
	ok := i >= 0 && i < n
	if ok {
		si = m.st.Sets[i]
	}
	task, src := m.st.Task, m.src
	m.mu.Unlock()
	if !ok {
		return m.end(fmt.Errorf("BUG: set %d of %d", i, n), nil)
	}
	if !si.Available {
		return m.end(fmt.Errorf("%s: %s", si.Set, si.Note), nil)
	}
	if task == TaskVerify {
		m.update(func() { m.st.Set = &si; m.st.Busy = i18n.Msg{} })
		return m.run(ctx, Request{Task: TaskVerify, Source: src, Set: si.Set}, nil)
	}
	if task == TaskFiles {
		return m.browse(ctx, Request{Task: TaskFiles, Source: src, Set: si.Set}, si)
	}
	disks, err := m.deps.Disks.Disks()
	if err != nil {
		return m.end(fmt.Errorf("list disks: %w", err), nil)
	}
	return m.end(nil, func() {
		m.st.Set = &si
		m.st.Disks = m.choices(disks, src.Device())
		m.goTo(Target)
	})
}

// choices marks which disks may be targets. Lock may be held.
func (m *Model) choices(disks []source.Disk, setDisk string) []DiskChoice {
	out := make([]DiskChoice, 0, len(disks))
	for _, d := range disks {
		out = append(out, DiskChoice{Disk: d, Why: Ineligible(d, m.deps.BootDisk, setDisk)})
	}
	return out
}

// Ineligible says why d must not be overwritten, or "" when it may be:
// it is the disk the recovery booted from (bootDisk), the disk holding the
// backup (setDisk), or write-protected.
func Ineligible(d source.Disk, bootDisk, setDisk string) string {
	switch {
	case bootDisk != "" && d.Path == bootDisk:
		return "the recovery runs from it"
	case setDisk != "" && d.Path == setDisk:
		return "it holds the backup"
	case d.ReadOnly:
		return "read-only (write-protect switch?)"
	}
	return ""
}

// SelectFrom picks the disk to clone from.
func (m *Model) SelectFrom(i int) error {
	if err := m.begin(i18n.M(i18n.UIBusyReadingDisks), CloneFrom); err != nil {
		return err
	}
	m.mu.Lock()
	n := len(m.st.Disks)
	ok := i >= 0 && i < n
	var from DiskChoice
	if ok {
		from = m.st.Disks[i]
	}
	m.mu.Unlock()
	if !ok {
		return m.end(fmt.Errorf("BUG: disk %d of %d", i, n), nil)
	}
	disks, err := m.deps.Disks.Disks()
	if err != nil {
		return m.end(fmt.Errorf("list disks: %w", err), nil)
	}
	return m.end(nil, func() {
		m.st.From = &from.Disk
		m.st.Disks = m.choices(disks, from.Path)
		for j := range m.st.Disks {
			if m.st.Disks[j].Path == from.Path {
				m.st.Disks[j].Why = "it is the disk to clone"
			}
		}
		m.goTo(Target)
	})
}

// SelectTarget picks the target disk and asks the engine for a plan.
// Nothing is written.
func (m *Model) SelectTarget(ctx context.Context, i int) error {
	return m.selectTarget(ctx, i, Target)
}

func (m *Model) selectTarget(ctx context.Context, i int, from Screen) error {
	if err := m.begin(i18n.M(i18n.UIBusyPlanning), from); err != nil {
		return err
	}
	m.mu.Lock()
	n := len(m.st.Disks)
	ok := i >= 0 && i < n
	var c DiskChoice
	if ok {
		c = m.st.Disks[i]
	}
	req := m.request()
	m.mu.Unlock()
	if !ok {
		return m.end(fmt.Errorf("BUG: disk %d of %d", i, n), nil)
	}
	if !c.Eligible() {
		return m.end(fmt.Errorf("%s: %s: %w", c.Path, c.Why, ErrIneligible), nil)
	}
	req.Target = c.Disk
	plan, err := m.deps.Engine.Plan(ctx, req)
	if errors.Is(err, payload.ErrNoKey) || errors.Is(err, payload.ErrWrongKey) {
		// Ask for the key, then plan again (EnterKey); the error says
		// which (none given, or one that opens nothing).
		err = fmt.Errorf("plan: %w", err)
		m.update(func() {
			m.st.Busy = i18n.Msg{}
			m.keyDisk = i
			if m.st.Screen != Key {
				m.st.Target = nil
				m.goTo(Key)
			}
			m.st.Err = err
		})
		m.log.Warn("the set is encrypted", "err", err)
		return err
	}
	if err != nil {
		return m.end(fmt.Errorf("plan: %w", err), nil)
	}
	return m.end(nil, func() {
		m.st.Target = &c.Disk
		m.plan = plan
		m.st.Plan = plan.String()
		m.st.ConfirmWord = c.Name
		m.goTo(Plan)
	})
}

// EnterKey takes the passphrase or identity typed for an encrypted set
// and plans the restore onto the chosen disk again; a key that opens
// nothing keeps the Key screen with the error.
func (m *Model) EnterKey(ctx context.Context, key string) error {
	m.mu.Lock()
	if m.st.Screen != Key {
		m.mu.Unlock()
		return ErrWrongScreen
	}
	m.key = strings.TrimSpace(key)
	i := m.keyDisk
	m.mu.Unlock()
	return m.selectTarget(ctx, i, Key)
}

// request builds the engine request from the picks. Lock held.
func (m *Model) request() Request {
	r := Request{Task: m.st.Task, Source: m.src, Key: m.key}
	if m.st.Set != nil {
		r.Set = m.st.Set.Set
	}
	if m.st.From != nil {
		r.From = *m.st.From
	}
	if m.st.Target != nil {
		r.Target = *m.st.Target
	}
	return r
}

// Proceed accepts the plan and moves to Confirm.
func (m *Model) Proceed() error {
	if err := m.begin(i18n.Msg{}, Plan); err != nil {
		return err
	}
	return m.end(nil, func() { m.goTo(Confirm) })
}

// ConfirmMatches reports whether typed names the target: its kernel
// name ("sda") or its path ("/dev/sda").
func ConfirmMatches(d source.Disk, typed string) bool {
	typed = strings.TrimSpace(typed)
	return typed != "" && (typed == d.Name || typed == d.Path)
}

// Confirm checks that typed names the target and runs the job. It
// returns when the job is done; meanwhile the state is Running.
func (m *Model) Confirm(ctx context.Context, typed string) error {
	if err := m.begin(i18n.Msg{}, Confirm); err != nil {
		return err
	}
	m.mu.Lock()
	target := *m.st.Target
	req, plan := m.request(), m.plan
	m.mu.Unlock()
	if !ConfirmMatches(target, typed) {
		return m.end(fmt.Errorf("type %q to overwrite %s: %w", target.Name, target.Path, ErrConfirm), nil)
	}
	m.update(func() { m.st.Busy = i18n.Msg{} })
	return m.run(ctx, req, plan)
}

// run moves to Running, runs the job and moves to Result.
func (m *Model) run(ctx context.Context, req Request, plan PlanText) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	m.enterRunning(cancel, nil)
	m.log.Info("job start", "task", req.Task.String(), "set", req.Set.String(), "target", req.Target.Path)
	start := m.deps.Now()
	if plan == nil {
		var err error
		plan, err = m.deps.Engine.Plan(ctx, req)
		if err != nil {
			m.finish(Outcome{}, fmt.Errorf("plan: %w", err), start)
			return err
		}
	}
	out, err := m.deps.Engine.Run(ctx, plan, req, m.prog)
	if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
		err = fmt.Errorf("%w: %w", ErrCancelled, err)
	}
	m.finish(out, err, start)
	return err
}

// enterRunning moves to Running for a job that cancel stops; also runs
// under the lock, if not nil.
func (m *Model) enterRunning(cancel context.CancelFunc, also func()) {
	m.prog.reset()
	m.update(func() {
		m.cancel = cancel
		m.st.CanCancel = true
		m.st.RunErr = nil
		m.st.Outcome = Outcome{}
		if also != nil {
			also()
		}
		m.goTo(Running)
	})
}

func (m *Model) finish(out Outcome, err error, start time.Time) {
	if out.Duration == 0 {
		out.Duration = m.deps.Now().Sub(start)
	}
	if err != nil {
		m.log.Error("job failed", "err", err, "bytes", out.Bytes)
	} else {
		m.log.Info("job done", "bytes", out.Bytes, "seconds", out.Duration.Seconds(), "verified", out.Verified)
	}
	m.update(func() {
		m.cancel = nil
		m.st.CanCancel = false
		m.st.Outcome = out
		m.st.RunErr = err
		m.st.Err = nil
		// Result replaces Running in the history: Back from Result
		// goes home, not into a finished job.
		m.st.Screen = Result
	})
}

// Cancel asks a running job to stop.
func (m *Model) Cancel() error {
	m.mu.Lock()
	c := m.cancel
	m.mu.Unlock()
	if c == nil {
		return ErrWrongScreen
	}
	m.log.Warn("job cancelled by the user")
	c()
	return nil
}

// Back returns to the previous screen. From Running it fails with
// ErrRunning; from Result it goes Home and closes the source.
func (m *Model) Back() error {
	m.mu.Lock()
	defer func() {
		m.mu.Unlock()
		m.notify()
	}()
	if !m.st.Busy.IsZero() {
		if m.cancel != nil {
			// Only a set's listing is cancellable while busy (a job
			// is Running, not busy).
			m.log.Warn("listing cancelled by the user")
			m.cancel()
			return nil
		}
		return ErrBusy
	}
	switch m.st.Screen {
	case Home:
		return nil
	case Running:
		return ErrRunning
	case Result:
		m.home()
		return nil
	}
	prev := Home
	if n := len(m.history); n > 0 {
		prev, m.history = m.history[n-1], m.history[:n-1]
	}
	leaving := m.st.Screen
	m.st.Screen, m.st.Err = prev, nil
	switch leaving {
	case Sets:
		m.closeSource()
		m.st.Sets, m.st.Source = nil, ""
	case HostKey:
		m.st.HostKey, m.spec = nil, source.Spec{}
	case Target:
		m.st.Set = nil
		if prev == CloneFrom {
			m.st.From = nil
		}
	case Plan:
		m.st.Target, m.plan, m.st.Plan = nil, nil, ""
	case Files:
		m.closeTree()
		m.st.Set, m.st.Dir, m.st.Entries, m.st.Marked = nil, "", nil, nil
	case FileDest:
		m.st.Dests = nil
	}
	if prev == Home {
		m.home()
	}
	return nil
}

// home resets everything but the pinned host keys. Lock held.
func (m *Model) home() {
	m.closeTree()
	m.closeSource()
	m.st = State{}
	m.history = nil
	m.spec = source.Spec{}
	m.plan = nil
	m.key = ""
	m.cancel = nil
}

func (m *Model) closeSource() {
	if m.src != nil {
		if err := m.src.Close(); err != nil {
			m.log.Warn("close source", "err", err)
		}
		m.src = nil
	}
}

// Reboot reboots (or powers off) through Deps.Power. Refused while a job
// runs.
func (m *Model) Reboot(reboot bool) error {
	m.mu.Lock()
	running := m.st.Screen == Running
	m.mu.Unlock()
	if running {
		return ErrRunning
	}
	m.mu.Lock()
	m.closeTree()
	m.closeSource()
	m.mu.Unlock()
	m.log.Info("power", "reboot", reboot)
	if m.deps.Power == nil {
		return errors.New("BUG: no power function")
	}
	return m.deps.Power(reboot)
}

// SetError shows err on the current screen (for view-side failures such
// as a bad address typed into a form).
func (m *Model) SetError(err error) {
	m.update(func() { m.st.Err = err })
}
