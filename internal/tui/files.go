package tui

import (
	"fmt"
	"strings"

	"github.com/gdamore/tcell/v2"
	"github.com/rivo/tview"

	"github.com/pibackup/pibackup/internal/i18n"
	"github.com/pibackup/pibackup/internal/size"
	"github.com/pibackup/pibackup/internal/tui/model"
)

// filesKey tells two states of the files page apart: another folder or
// other marks rebuild it.
func filesKey(st model.State) string {
	return st.Dir + "\x00" + strings.Join(st.Marked, "\x00") + fmt.Sprint(len(st.Entries))
}

// filesPage lists the folder shown: Enter opens a folder (or marks a
// file), Space marks, c copies what is marked.
func (u *UI) filesPage(st model.State) tview.Primitive {
	keep := 0
	if old, ok := u.filesList(); ok && strings.HasPrefix(u.filesKey, st.Dir+"\x00") {
		keep = old.GetCurrentItem() // a mark toggled: stay on the row
	}
	u.filesKey = filesKey(st)
	l := tview.NewList().ShowSecondaryText(false)
	title := u.p.Sprintf(i18n.UIFilesTitle, st.Dir, st.Set.String())
	if n := len(st.Marked); n > 0 {
		title += " · " + u.p.Sprintf(i18n.UIMarkedCount, n)
	}
	titled(l.Box, title)
	for i, e := range st.Entries {
		mark := "[ ]"
		if st.IsMarked(e.Name) {
			mark = "[x]"
		}
		name, sz := e.Name, size.Format(e.Size)
		switch {
		case e.Dir:
			name, sz = name+"/", ""
		case e.Symlink:
			name, sz = name+"@", ""
		}
		l.AddItem(tview.Escape(fmt.Sprintf("%s %-50s %10s", mark, name, sz)), "", 0, func() {
			u.do(func() error { return u.m.OpenEntry(i) })
		})
	}
	l.SetInputCapture(func(ev *tcell.EventKey) *tcell.EventKey {
		if ev.Key() != tcell.KeyRune {
			return ev
		}
		switch ev.Rune() {
		case ' ':
			i := l.GetCurrentItem()
			u.do(func() error { return u.m.ToggleMark(i) })
			return nil
		case 'c':
			u.do(u.m.ChooseDest)
			return nil
		}
		return ev
	})
	if keep < l.GetItemCount() {
		l.SetCurrentItem(keep)
	}
	u.filesView = l
	return l
}

// filesList is the list of the files page currently shown.
func (u *UI) filesList() (*tview.List, bool) {
	return u.filesView, u.filesView != nil && u.shown == model.Files
}

func (u *UI) fileDestPage(st model.State) tview.Primitive {
	l := tview.NewList()
	titled(l.Box, u.p.Sprintf(i18n.UIFileDestTitle, len(st.Marked)))
	for i, p := range st.Dests {
		main := fmt.Sprintf("%s  %s  %s  %s", p.Path, p.FSType, size.Format(p.Size), p.Label)
		l.AddItem(tview.Escape(main), "", 0, func() {
			u.do(func() error { return u.m.CopyTo(u.ctx, i) })
		})
	}
	return l
}
