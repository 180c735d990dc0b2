package model

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/pibackup/pibackup/internal/i18n"
	"github.com/pibackup/pibackup/internal/progress"
	"github.com/pibackup/pibackup/internal/source"
)

// FileEntry is one row of the Files screen.
type FileEntry struct {
	Name    string
	Dir     bool
	Symlink bool
	Size    int64
}

// Tree is a set's root filesystem opened for the files flow.
type Tree interface {
	// ReadDir lists dir, an absolute path in the set's root ("/etc"),
	// folders first, then by name.
	ReadDir(dir string) ([]FileEntry, error)
	// Copy copies paths (absolute in the set's root) into dest, a local
	// folder, each under its full path (dest/etc/fstab), with as much of
	// its metadata as dest's filesystem keeps.
	Copy(ctx context.Context, paths []string, dest string, rep progress.Reporter) (Copied, error)
	Close() error
}

// CompareEntries orders a folder's entries as Tree.ReadDir returns
// them: folders first, then by name.
func CompareEntries(a, b FileEntry) int {
	if a.Dir != b.Dir {
		if a.Dir {
			return -1
		}
		return 1
	}
	return strings.Compare(a.Name, b.Name)
}

// Copied is what Tree.Copy did.
type Copied struct {
	Bytes int64
	// Skipped counts what dest's filesystem cannot hold and was left
	// out (symlinks and device nodes on FAT); the result says so.
	Skipped int
}

// Browser opens a set's files; the adapter in package main serves them
// from the set itself (no restore needed), tests use a folder.
type Browser interface {
	// Browse opens r.Set. Reading its list of files may take a while
	// (a compressed archive is read through); rep hears of it.
	Browse(ctx context.Context, r Request, rep progress.Reporter) (Tree, error)
}

// DestMounter mounts partition p writable and returns the folder where
// the files go and how to unmount it.
type DestMounter func(ctx context.Context, p source.Partition) (dir string, unmount func() error, err error)

// Errors of the files flow.
var (
	ErrNothingMarked = i18n.Err(i18n.UIErrNothingMarked)
	ErrNoDest        = i18n.Err(i18n.UIErrNoDest)
)

// destFS are the file systems files may be copied onto.
var destFS = map[string]bool{"vfat": true, "exfat": true, "ext4": true, "ext3": true, "ext2": true, "btrfs": true, "xfs": true}

// HasFiles reports whether the files flow is available.
func (m *Model) HasFiles() bool { return m.deps.Browser != nil }

// browse opens the set for the files flow and shows its root. Busy is set.
func (m *Model) browse(ctx context.Context, r Request, si SetInfo) error {
	if m.deps.Browser == nil {
		return m.end(errors.New("BUG: no file browser"), nil)
	}
	// Reading a compressed archive's list takes a while on a Pi: Back
	// (Esc) cancels it meanwhile.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	m.update(func() { m.cancel = cancel })
	rep := &busyPercent{m: m, set: si.Set.String(), pct: -1}
	t, err := m.deps.Browser.Browse(ctx, r, rep)
	rep.stop()
	m.update(func() { m.cancel = nil })
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			err = fmt.Errorf("%w: %w", ErrCancelled, err)
		}
		return m.end(fmt.Errorf("open %s: %w", si.Set, err), nil)
	}
	entries, err := t.ReadDir("/")
	if err != nil {
		t.Close()
		return m.end(fmt.Errorf("%s: /: %w", si.Set, err), nil)
	}
	return m.end(nil, func() {
		m.tree = t
		m.st.Set = &si
		m.st.Dir, m.st.Entries, m.st.Marked = "/", entries, nil
		m.goTo(Files)
	})
}

// busyPercent shows a set's listing progress in the busy message:
// "reading the files of SET: 42%".
type busyPercent struct {
	m           *Model
	set         string
	total, done atomic.Int64
	mu          sync.Mutex
	pct         int64 // shown last
	stopped     bool
}

// Phase implements progress.Reporter.
func (b *busyPercent) Phase(_ string, total int64) {
	b.total.Store(total)
	b.done.Store(0)
	b.show()
}

// Add implements progress.Reporter.
func (b *busyPercent) Add(n int64) {
	b.done.Add(n)
	b.show()
}

// show updates the message when the percentage changed, so the screen
// is redrawn at most a hundred times.
func (b *busyPercent) show() {
	t := b.total.Load()
	if t <= 0 {
		return
	}
	pct := min(100, b.done.Load()*100/t)
	b.mu.Lock()
	defer b.mu.Unlock()
	if pct != b.pct && !b.stopped {
		b.pct = pct
		b.m.update(func() { b.m.st.Busy = i18n.M(i18n.UIBusyListing, b.set, pct) })
	}
}

// stop ends the updates before the busy message is cleared: a
// decompressor's read-ahead may still count bytes after Browse returned.
func (b *busyPercent) stop() {
	b.mu.Lock()
	b.stopped = true
	b.mu.Unlock()
}

// OpenEntry shows the folder of row i of the Files screen; a file's row
// toggles its mark instead.
func (m *Model) OpenEntry(i int) error {
	m.mu.Lock()
	ok := m.st.Screen == Files && i >= 0 && i < len(m.st.Entries)
	var e FileEntry
	var dir string
	if ok {
		e, dir = m.st.Entries[i], m.st.Dir
	}
	m.mu.Unlock()
	if !ok {
		return ErrWrongScreen
	}
	if !e.Dir {
		return m.ToggleMark(i)
	}
	return m.list(path.Join(dir, e.Name))
}

// Up shows the parent of the folder shown; at the root it does nothing.
func (m *Model) Up() error {
	m.mu.Lock()
	dir, screen := m.st.Dir, m.st.Screen
	m.mu.Unlock()
	if screen != Files {
		return ErrWrongScreen
	}
	if dir == "/" {
		return nil
	}
	return m.list(path.Dir(dir))
}

// AtRoot reports whether the Files screen shows the set's root (Esc
// then leaves the set rather than going up).
func (s State) AtRoot() bool { return s.Dir == "/" || s.Dir == "" }

func (m *Model) list(dir string) error {
	if err := m.begin(i18n.M(i18n.UIBusyReading, dir), Files); err != nil {
		return err
	}
	m.mu.Lock()
	t := m.tree
	m.mu.Unlock()
	entries, err := t.ReadDir(dir)
	if err != nil {
		return m.end(fmt.Errorf("%s: %w", dir, err), nil)
	}
	return m.end(nil, func() { m.st.Dir, m.st.Entries = dir, entries })
}

// ToggleMark marks or unmarks row i of the Files screen. A marked folder
// is copied with all it holds.
func (m *Model) ToggleMark(i int) error {
	m.mu.Lock()
	defer func() {
		m.mu.Unlock()
		m.notify()
	}()
	if m.st.Screen != Files || i < 0 || i >= len(m.st.Entries) {
		return ErrWrongScreen
	}
	p := path.Join(m.st.Dir, m.st.Entries[i].Name)
	if j, found := slices.BinarySearch(m.st.Marked, p); found {
		m.st.Marked = slices.Delete(m.st.Marked, j, j+1)
	} else {
		m.st.Marked = slices.Insert(m.st.Marked, j, p)
	}
	return nil
}

// IsMarked reports whether the entry name of the folder shown is marked.
func (s State) IsMarked(name string) bool {
	_, found := slices.BinarySearch(s.Marked, path.Join(s.Dir, name))
	return found
}

// ChooseDest moves to FileDest: the partitions the marked files may be
// copied to (USB disks, the restored card's root), never the recovery's
// own disk.
func (m *Model) ChooseDest() error {
	if err := m.begin(i18n.M(i18n.UIBusyReadingDisks), Files); err != nil {
		return err
	}
	m.mu.Lock()
	marked := len(m.st.Marked)
	m.mu.Unlock()
	if marked == 0 {
		return m.end(ErrNothingMarked, nil)
	}
	disks, err := m.deps.Disks.Disks()
	if err != nil {
		return m.end(fmt.Errorf("list disks: %w", err), nil)
	}
	var dests []source.Partition
	for _, d := range disks {
		if Ineligible(d, m.deps.BootDisk, "") != "" {
			continue
		}
		for _, p := range d.Partitions {
			if destFS[p.FSType] {
				dests = append(dests, p)
			}
		}
	}
	if len(dests) == 0 {
		return m.end(ErrNoDest, nil)
	}
	return m.end(nil, func() {
		m.st.Dests = dests
		m.goTo(FileDest)
	})
}

// CopyTo copies the marked paths onto partition i of FileDest, into the
// folder pibackup-files/<set>/ there. It returns when the copy is done;
// meanwhile the state is Running.
func (m *Model) CopyTo(ctx context.Context, i int) error {
	if err := m.begin(i18n.Msg{}, FileDest); err != nil {
		return err
	}
	m.mu.Lock()
	ok := i >= 0 && i < len(m.st.Dests)
	var p source.Partition
	if ok {
		p = m.st.Dests[i]
	}
	marked, t, set := append([]string(nil), m.st.Marked...), m.tree, m.st.Set.Set
	m.mu.Unlock()
	if !ok {
		return m.end(fmt.Errorf("BUG: partition %d", i), nil)
	}
	if m.deps.MountDest == nil {
		return m.end(errors.New("BUG: no MountDest"), nil)
	}
	m.update(func() { m.st.Busy = i18n.Msg{} })
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	m.enterRunning(cancel, func() { m.st.Target = &source.Disk{Name: p.Name, Path: p.Path} })
	m.log.Info("copy files", "set", set.String(), "paths", marked, "dest", p.Path)
	start := m.deps.Now()
	dir, unmount, err := m.deps.MountDest(ctx, p)
	if err != nil {
		err = fmt.Errorf("mount %s: %w", p.Path, err)
		m.finish(Outcome{}, err, start)
		return err
	}
	sub := path.Join("pibackup-files", set.String())
	c, err := t.Copy(ctx, marked, path.Join(dir, sub), m.prog)
	if uerr := unmount(); uerr != nil && err == nil {
		err = fmt.Errorf("unmount %s: %w", p.Path, uerr)
	}
	if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
		err = fmt.Errorf("%w: %w", ErrCancelled, err)
	}
	m.finish(Outcome{Bytes: c.Bytes, Where: p.Path + ":/" + sub, Skipped: c.Skipped}, err, start)
	return err
}

// closeTree closes the set opened by the files flow. Lock held.
func (m *Model) closeTree() {
	if m.tree != nil {
		if err := m.tree.Close(); err != nil {
			m.log.Warn("close set", "err", err)
		}
		m.tree = nil
	}
}
