//go:build !race

package qemutests

import (
	"fmt"
	"image/color"
	"io"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/charmbracelet/x/vt"
)

// screen is what a person at the recovery's terminal sees: the bytes the
// UI writes (on the serial console or into an SSH session) rendered by a
// terminal emulator. Tests read it the way that person does, waiting for
// text to appear and looking at which row is highlighted, and never wait
// a fixed time.
//
// The emulator is github.com/charmbracelet/x/vt: a maintained, tagged
// (v0.1.0) xterm-compatible emulator with full SGR colour parsing, the
// charsets (SO/SI, ESC ( / ESC ), which TERM=linux's terminfo uses) and
// UTF-8 graphemes, so tview's box drawing and list highlight come out
// cell by cell.
type screen struct {
	name string
	// diag is printed after the screen when a wait fails (the tail of the
	// serial log); may be nil.
	diag func() string
	// closed is closed when no more output can come (QEMU exited, the
	// SSH session ended): a wait then fails at once.
	closed <-chan struct{}

	cols, rows int

	mu        sync.Mutex
	em        *vt.Emulator
	inErr     error         // the first error sending keys to the UI
	changed   chan struct{} // closed and replaced by every Write
	tail      []byte        // the last bytes written, to find frame ends across writes
	framed    bool          // the output so far ends at a frame boundary
	lastWrite time.Time
}

// frameEnd matches output that ends at a frame boundary. tcell writes
// each frame with one write that begins by hiding the cursor and ends by
// hiding it again or placing and showing it (tScreen.draw): with
// TERM=linux that is \e[?25l\e[?1c or \e[?25h\e[?0c, with xterm \e[?25l or
// \e[?12l\e[?25h, and a cursor shape may follow. Bytes arrive in pieces
// (the UART, SSH packets), so between frame ends the emulator may hold
// half a frame; the screen is only read at a frame end, where it holds a
// whole one. (Right after the hide-cursor that starts a frame it still
// holds the previous whole frame.)
var frameEnd = regexp.MustCompile(`\x1b\[\?25[lh](?:\x1b\[\?\d+c|\x1b\[\d* q)*$`)

// quiet is how long output must pause for the screen to be read although
// it does not end at a frame boundary (the kernel or the recovery wrote a
// line onto the console after a frame). A fallback, not the rule.
const quiet = 2 * time.Second

// newScreen makes a cols×rows terminal whose keyboard writes to input
// (the serial console's input, the SSH session's stdin).
func newScreen(t *testing.T, name string, cols, rows int, input io.Writer) *screen {
	s := &screen{name: name, cols: cols, rows: rows, em: vt.NewEmulator(cols, rows),
		changed: make(chan struct{}), lastWrite: time.Now()}
	// What the emulator sends to the program: the keys pressed (press),
	// encoded for the modes the UI set, and answers to terminal queries
	// (tcell asks none). It hands them out through a pipe that must be
	// read, or SendKey blocks with the lock held; a slow input must not
	// hold up the screen, so a queue sits in between.
	queue := make(chan []byte, 256)
	go func() {
		defer close(queue)
		for {
			b := make([]byte, 256)
			n, err := s.em.Read(b)
			if n > 0 {
				queue <- b[:n]
			}
			if err != nil {
				return
			}
		}
	}()
	go func() {
		for b := range queue {
			if _, err := input.Write(b); err != nil {
				s.mu.Lock()
				if s.inErr == nil {
					s.inErr = err
				}
				s.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.em.Close()
	})
	return s
}

// Write feeds terminal output (what the UI draws) to the emulator.
func (s *screen) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.em.Write(p)
	s.tail = append(s.tail, p...)
	if len(s.tail) > 64 {
		s.tail = s.tail[len(s.tail)-64:]
	}
	s.framed = frameEnd.Match(s.tail)
	s.lastWrite = time.Now()
	close(s.changed)
	s.changed = make(chan struct{})
	return n, err
}

// view is the screen at one moment.
type view struct {
	rows []string // one per row, trailing blanks cut
	// highlighted has the text of the cells with text on a light
	// background (the selected item of a tview list), one entry per row
	// that has some.
	highlighted []string
	// framed: the output ends at a frame boundary, so the emulator holds
	// a whole frame.
	framed bool
	// settled: framed, or output has paused.
	settled bool
	// settle is when an unsettled view settles by the quiet rule.
	settle time.Time
	// changed closes at the next write.
	changed <-chan struct{}
}

func (v view) text() string { return strings.Join(v.rows, "\n") }

func (s *screen) snapshot() view {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := view{changed: s.changed, settle: s.lastWrite.Add(quiet)}
	v.framed = s.framed
	v.settled = s.framed || !time.Now().Before(v.settle)
	for y := range s.rows {
		var b, hl strings.Builder
		for x := range s.cols {
			c := s.em.CellAt(x, y)
			switch {
			case c == nil:
				b.WriteByte(' ')
			case c.Content == "" && c.Width == 0:
				// the right half of a wide character
			case c.Content == "":
				b.WriteByte(' ')
			default:
				b.WriteString(c.Content)
				if light(c.Style.Bg) {
					hl.WriteString(c.Content)
				}
			}
		}
		v.rows = append(v.rows, strings.TrimRight(b.String(), " "))
		if t := strings.TrimSpace(hl.String()); t != "" {
			v.highlighted = append(v.highlighted, t)
		}
	}
	return v
}

// light reports whether c is a light colour (the white or grey that
// tview's selected list item has; the default background is black or
// unset).
func light(c color.Color) bool {
	if c == nil {
		return false
	}
	r, g, b, _ := c.RGBA()
	return r+g+b > 3*0x8000
}

// Text is the whole screen as rows.
func (s *screen) Text() string { return s.snapshot().text() }

// waitFor waits until ok holds for a settled view of the screen, for at
// most timeout, and fails the test with the screen (and diag) when it
// does not. what says what was awaited.
func (s *screen) waitFor(t *testing.T, what string, timeout time.Duration, ok func(v view) bool) {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	settleTimer := time.NewTimer(time.Hour)
	defer settleTimer.Stop()
	for {
		v := s.snapshot()
		if v.settled && ok(v) {
			return
		}
		var settle <-chan time.Time
		if !v.settled {
			settleTimer.Reset(time.Until(v.settle))
			settle = settleTimer.C
		}
		select {
		case <-v.changed:
		case <-settle:
		case <-timer.C:
			t.Fatalf("%s did not show %s within %s\n%s", s.name, what, timeout, s.dump())
		case <-s.closed:
			// The last output may have arrived just before: look once
			// more.
			if v := s.snapshot(); ok(v) {
				return
			}
			t.Fatalf("%s closed before it showed %s\n%s", s.name, what, s.dump())
		}
	}
}

// wait waits for re to match the screen's text (rows joined by newlines)
// and returns the match and its groups.
func (s *screen) wait(t *testing.T, re *regexp.Regexp, timeout time.Duration) []string {
	t.Helper()
	var m []string
	s.waitFor(t, fmt.Sprintf("%q", re), timeout, func(v view) bool {
		m = re.FindStringSubmatch(v.text())
		return m != nil
	})
	return m
}

// dump is the screen in a frame, the highlighted text, then diag.
func (s *screen) dump() string {
	v := s.snapshot()
	var b strings.Builder
	fmt.Fprintf(&b, "--- %s (%d×%d, settled %v) ---\n", s.name, s.cols, s.rows, v.settled)
	for _, r := range v.rows {
		fmt.Fprintf(&b, "|%s%s|\n", r, strings.Repeat(" ", max(0, s.cols-utf8.RuneCountInString(r))))
	}
	fmt.Fprintf(&b, "highlighted: %q\n", v.highlighted)
	if s.diag != nil {
		b.WriteString(s.diag())
	}
	return b.String()
}

// Keys, as a person presses them: the emulator encodes them the way a
// terminal does in the modes the UI set (with TERM=xterm-256color tcell
// turns on application cursor keys, so Down is \eOB; with TERM=linux it
// is \e[B).
var (
	keyEnter = vt.KeyPressEvent{Code: vt.KeyEnter}
	keyTab   = vt.KeyPressEvent{Code: vt.KeyTab}
	keyDown  = vt.KeyPressEvent{Code: vt.KeyDown}
)

// press presses keys on the terminal's keyboard.
func (s *screen) press(t *testing.T, keys ...vt.KeyPressEvent) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		s.em.SendKey(k)
	}
	if s.inErr != nil {
		t.Fatalf("%s: type: %v", s.name, s.inErr)
	}
}

// typeLine types text, then presses Enter.
func (s *screen) typeLine(t *testing.T, text string) {
	t.Helper()
	s.mu.Lock()
	s.em.SendText(text)
	s.mu.Unlock()
	s.press(t, keyEnter)
}

// choose moves the highlight of the list on screen to the item whose
// text matches item, as a person does: look at the highlight, press next
// (the key that moves it one item down), look again. It does not press
// Enter.
func (s *screen) choose(t *testing.T, next vt.KeyPressEvent, item *regexp.Regexp, timeout time.Duration) {
	t.Helper()
	var cur string
	s.waitFor(t, "a highlighted list item", timeout, func(v view) bool {
		if len(v.highlighted) == 0 {
			return false
		}
		cur = v.highlighted[0]
		return true
	})
	seen := map[string]bool{}
	for !item.MatchString(cur) {
		if seen[cur] {
			t.Fatalf("%s: no list item matches %q (went round the list)\n%s", s.name, item, s.dump())
		}
		seen[cur] = true
		s.press(t, next)
		prev := cur
		// Only a whole frame: half of one may show half an item
		// highlighted, which is not where the highlight is.
		s.waitFor(t, fmt.Sprintf("the highlight move on from %q", prev), timeout, func(v view) bool {
			if !v.framed || len(v.highlighted) == 0 || v.highlighted[0] == prev {
				return false
			}
			cur = v.highlighted[0]
			return true
		})
	}
}

// UI deadlines: each step of the UI under TCG on 2 shared cores.
const (
	uiStepDeadline = 60 * time.Second // a key's effect on the screen, listing disks or sets, planning
	uiBootDeadline = 3 * time.Minute  // from QEMU's start to the first frame
)

// restoreThroughUI walks the recovery UI on s from the home screen
// through a whole restore of the newest set on the USB disk labelled
// usbLabel onto target ("vdb") and powers the machine off from the result
// screen. next is the key that moves a list's highlight down: on the
// serial console Tab, a single byte, where Down is an escape sequence
// that tcell could take for Esc (= Back) if the slow UART under TCG
// delivered it in pieces further apart than tcell's escape timeout.
func restoreThroughUI(t *testing.T, s *screen, next vt.KeyPressEvent, usbLabel, target string) {
	t.Helper()
	step := func(name string) { t.Logf("%s: %s", s.name, name) }

	step("home")
	s.wait(t, regexp.MustCompile(`Restore a backup`), uiBootDeadline)
	// The UI is laid out on the whole terminal: the box's top border is
	// as wide as the screen and the key hints are on the last but one row.
	s.waitFor(t, "the home screen laid out on the whole terminal", uiStepDeadline, func(v view) bool {
		n := len(v.rows)
		return utf8.RuneCountInString(v.rows[1]) == s.cols && strings.HasSuffix(v.rows[1], "╗") &&
			strings.Contains(v.rows[n-2], "Enter select")
	})
	s.choose(t, next, regexp.MustCompile(`Restore a backup`), uiStepDeadline)
	s.press(t, keyEnter)

	step("source: the USB disk " + usbLabel)
	s.wait(t, regexp.MustCompile(`Where are the backups\?(?s:.*)`+regexp.QuoteMeta(usbLabel)), uiStepDeadline)
	s.choose(t, next, regexp.MustCompile(`^/dev/\S+\s+ext4\s.*\s`+regexp.QuoteMeta(usbLabel)+`$`), uiStepDeadline)
	s.press(t, keyEnter)

	step("sets: the newest")
	s.wait(t, regexp.MustCompile(`Backups in `), uiStepDeadline)
	s.choose(t, next, regexp.MustCompile(`pi-under-test .*manifest`), uiStepDeadline)
	s.press(t, keyEnter)

	step("target: " + target)
	s.wait(t, regexp.MustCompile(`Restore \S+ onto(?s:.*)/dev/`+target+`\b`), uiStepDeadline)
	s.choose(t, next, regexp.MustCompile(`^/dev/`+target+`\b`), uiStepDeadline)
	s.press(t, keyEnter)

	step("plan")
	s.wait(t, regexp.MustCompile(`Nothing has been written yet\. Press Enter to continue\.`), uiStepDeadline)
	s.press(t, keyEnter)

	step("confirm")
	// Type what the screen asks for, as a person would.
	m := s.wait(t, regexp.MustCompile(`Type (\S+) to ERASE `+target), uiStepDeadline)
	s.typeLine(t, m[1])

	step("running")
	m = s.wait(t, regexp.MustCompile(`Restore complete|Restore FAILED`), restoreDeadline)
	if m[0] != "Restore complete" {
		t.Fatalf("the restore failed on screen\n%s", s.dump())
	}
	var result string
	s.waitFor(t, "verified against the manifest", uiStepDeadline, func(v view) bool {
		result = v.text()
		return strings.Contains(result, "verified against the manifest")
	})
	t.Logf("%s: result:\n%s", s.name, result)

	step("power off")
	s.choose(t, next, regexp.MustCompile(`Power off`), uiStepDeadline)
	s.press(t, keyEnter)
}

// plainTail is the last n bytes of a console log made readable for a
// failure report: control sequences cut, a cursor move to another row
// made a line break and one within the row a blank (tcell moves the
// cursor rather than write blanks), blank lines squeezed.
func plainTail(log string, n int) string {
	row := ""
	s := cursorMoves.ReplaceAllStringFunc(log, func(m string) string {
		r, _, _ := strings.Cut(strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(m, "\x1b["), "H"), "f"), ";")
		if r == row {
			return " "
		}
		row = r
		return "\n"
	})
	s = escapes.ReplaceAllString(s, "")
	s = blankLines.ReplaceAllString(s, "\n")
	return tailString(s, n)
}

var (
	cursorMoves = regexp.MustCompile(`\x1b\[[0-9;]*[Hf]`)
	escapes     = regexp.MustCompile(`\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[()][0-9A-Za-z]|[^\[\]])|[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f]`)
	blankLines  = regexp.MustCompile(`\n[ \t\r]*(\n[ \t\r]*)+`)
)
