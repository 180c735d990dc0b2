package tui_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/gdamore/tcell/v2"

	"github.com/pibackup/pibackup/internal/i18n"
	"github.com/pibackup/pibackup/internal/tui/model"
	"github.com/pibackup/pibackup/internal/tui/tuitest"
)

// walkScreens drives a restore through every screen a user meets (home,
// log, source, location form, sets, target, plan, a wrong confirmation,
// running, cancel, failure, success) in lang, waiting for each screen by
// its text in that language, and returns the screens' text.
func walkScreens(t *testing.T, lang i18n.Lang) []string {
	t.Helper()
	p := i18n.New(lang)
	tx := func(id i18n.ID, args ...any) string { return p.Sprintf(id, args...) }
	w := newWorld(t)
	w.Engine.Hold = make(chan struct{})
	h := startLang(t, w, nil, 110, 32, lang)
	var screens []string
	see := func(want string) {
		t.Helper()
		h.wait(want)
		screens = append(screens, h.text())
	}
	see(tx(i18n.UIRestore))
	see(tx(i18n.UIHintHome))
	h.key(tcell.KeyF2)
	see(tx(i18n.UILogTitle))
	h.key(tcell.KeyEscape)
	see(tx(i18n.UIRestore))
	h.rune('r')
	see(tx(i18n.UIOtherLocation))
	h.rune('n')
	see(tx(i18n.UIFormKeys))
	empty := t.TempDir()
	w.Opener.Dirs["dir:"+empty] = empty
	h.typeText("dir:" + empty)
	h.key(tcell.KeyEnter)
	see(tx(i18n.UIErrNoSets)[:20])
	h.key(tcell.KeyEscape)
	see(tx(i18n.UIOtherLocation))
	h.rune('n')
	see(tx(i18n.UIFormKeys))
	h.typeText(tuitest.SFTPURL)
	h.key(tcell.KeyEnter) // to the password field
	h.typeText(tuitest.SFTPPassword)
	h.key(tcell.KeyEnter)
	see(tx(i18n.UIHostKeyTitle))
	h.key(tcell.KeyTab) // Reject → Accept
	h.key(tcell.KeyEnter)
	see(tx(i18n.UISetsTitle, ""))
	h.down(1)
	h.key(tcell.KeyEnter)
	see(tx(i18n.UIRestoreOnto, w.NewestSet))
	h.down(2)
	h.key(tcell.KeyEnter)
	see(tx(i18n.UINothingWritten))
	h.key(tcell.KeyEnter)
	see(tx(i18n.UIAllLost))
	h.typeText("sda")
	h.key(tcell.KeyEnter)
	see(tx(i18n.UIErrConfirm))
	h.key(tcell.KeyEscape)
	see(tx(i18n.UINothingWritten))
	h.key(tcell.KeyEnter)
	see(tx(i18n.UIAllLost))
	h.typeText("sdb")
	h.key(tcell.KeyEnter)
	see(tx(i18n.UIStarting))
	h.key(tcell.KeyEscape) // refused while running
	see(tx(i18n.UIErrRunning))
	h.rune('c')
	see(tx(i18n.UICancelJob))
	h.key(tcell.KeyTab)
	h.key(tcell.KeyEnter)
	see(tx(i18n.UIFailed, tx(i18n.UITaskRestore)))
	see(tx(i18n.UIErrCancelled))
	close(w.Engine.Hold) // the next run writes at once
	h.key(tcell.KeyEscape)
	see(tx(i18n.UIRestore))
	h.rune('r')
	h.wait(tx(i18n.UIOtherLocation))
	h.rune('n')
	see(tx(i18n.UIFormKeys))
	h.typeText("dir:" + w.BackupDir)
	h.key(tcell.KeyEnter)
	see(tx(i18n.UISetsTitle, ""))
	h.down(1)
	h.key(tcell.KeyEnter)
	h.wait(tx(i18n.UIRestoreOnto, w.NewestSet))
	w.Engine.SetKey("k") // the set is encrypted: the Key screen asks
	h.down(2)
	h.key(tcell.KeyEnter)
	see(tx(i18n.UIKeyTitle))
	h.typeText("k")
	h.key(tcell.KeyEnter)
	h.wait(tx(i18n.UINothingWritten))
	h.key(tcell.KeyEnter)
	h.wait(tx(i18n.UIAllLost))
	h.typeText("sdb")
	h.key(tcell.KeyEnter)
	see(tx(i18n.UIComplete, tx(i18n.UITaskRestore)))
	see(tx(i18n.UIVerified))
	see(tx(i18n.UIBackToMenu))
	h.rune('m')
	h.wait(tx(i18n.UIRestore))
	h.rune('c')
	see(tx(i18n.UIDiskToCopy))
	h.key(tcell.KeyEscape)
	h.wait(tx(i18n.UIFiles))
	h.rune('f')
	h.wait(tx(i18n.UIOtherLocation))
	h.rune('n')
	h.wait(tx(i18n.UIFormKeys))
	h.typeText("dir:" + w.BackupDir)
	h.key(tcell.KeyEnter)
	h.wait(tx(i18n.UISetsTitle, ""))
	h.down(1)
	h.key(tcell.KeyEnter)
	see(tx(i18n.UIFilesTitle, "/", w.NewestSet))
	see(tx(i18n.UIHintFiles))
	h.rune('c')
	see(tx(i18n.UIErrNothingMarked))
	h.rune(' ')
	see(tx(i18n.UIMarkedCount, 1))
	h.rune('c')
	see(tx(i18n.UIFileDestTitle, 1))
	see(tx(i18n.UIHintFileDest))
	h.key(tcell.KeyEnter)
	see(tx(i18n.UIComplete, tx(i18n.UITaskFiles)))
	see(tx(i18n.UICopiedTo, "/dev/sda1"))
	return screens
}

// fragments are the runs of English words in a message's English text
// (between format verbs and line breaks) that are long enough to be a
// sentence's part rather than a name shared by both languages.
var fragmentSplit = regexp.MustCompile(`%[-+# 0-9.]*[a-zA-Z%]|\n`)

func fragments(id i18n.ID) []string {
	en, _ := i18n.Format(id, i18n.English)
	de, _ := i18n.Format(id, i18n.German)
	var out []string
	for _, f := range fragmentSplit.Split(en, -1) {
		f = strings.TrimSpace(f)
		if len(f) >= 6 && strings.Contains(f, " ") || len(f) >= 8 {
			if !strings.Contains(de, f) { // a path or a command both languages show
				out = append(out, f)
			}
		}
	}
	return out
}

// TestGermanScreens walks every screen with recovery.lang=de and finds
// no English sentence of the catalogue on any of them. The same walk in
// English must show those sentences (else the check proves nothing).
func TestGermanScreens(t *testing.T) {
	english := strings.Join(walkScreens(t, i18n.English), "\n")
	german := strings.Join(walkScreens(t, i18n.German), "\n")
	shown := 0
	for _, id := range i18n.RecoveryIDs() {
		for _, f := range fragments(id) {
			if !strings.Contains(english, f) && !strings.Contains(flatten(english), f) {
				continue // a message this walk does not reach
			}
			shown++
			if strings.Contains(german, f) || strings.Contains(flatten(german), f) {
				t.Errorf("%s: English %q on a German screen", id, f)
			}
		}
	}
	if shown < 40 {
		t.Errorf("the English walk showed only %d catalogue sentences; the walk misses screens", shown)
	}
	// Screens built outside the catalogue would show here as English
	// words on a German screen. (The plan's own text comes from the
	// engine, a fake one here, and is not checked.)
	for _, word := range []string{"Error:", "choose", "select", "Restore a", "complete", "Working", "Result", "FAILED"} {
		if strings.Contains(german, word) {
			t.Errorf("German screens contain %q", word)
		}
	}
	if t.Failed() {
		t.Logf("German screens:\n%s", german)
	}
}

// TestTranslateKeepsDetails: a model error wrapped with a path shows the
// path and the translated sentence.
func TestTranslateKeepsDetails(t *testing.T) {
	err := model.ErrNoSets
	got := i18n.New(i18n.German).Translate(wrap("dir:/x", err))
	if !strings.HasPrefix(got, "dir:/x: hier wurden keine") {
		t.Errorf("Translate = %q", got)
	}
}

type wrapped struct {
	prefix string
	err    error
}

func (w wrapped) Error() string { return w.prefix + ": " + w.err.Error() }
func (w wrapped) Unwrap() error { return w.err }

func wrap(prefix string, err error) error { return wrapped{prefix, err} }
