package sshui_test

import (
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// vt is the smallest terminal that can show what tcell draws: cursor
// addressing (CUP), clear, CR/LF/BS and text. Everything else (colours,
// modes, charsets, OSC) is read and dropped. It is the client's screen
// in the tests.
type vt struct {
	mu     sync.Mutex
	cells  [][]rune
	x, y   int
	rest   []byte // an unfinished escape sequence or rune
	nbytes int
}

func newVT(cols, rows int) *vt {
	v := &vt{}
	v.resize(cols, rows)
	return v
}

func (v *vt) resize(cols, rows int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	cells := make([][]rune, rows)
	for y := range cells {
		cells[y] = []rune(strings.Repeat(" ", cols))
		if y < len(v.cells) {
			copy(cells[y], v.cells[y])
		}
	}
	v.cells = cells
}

func (v *vt) Write(p []byte) (int, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.nbytes += len(p)
	b := append(v.rest, p...)
	for len(b) > 0 {
		n := v.step(b)
		if n == 0 {
			break // need more bytes
		}
		b = b[n:]
	}
	v.rest = append([]byte(nil), b...)
	return len(p), nil
}

// step consumes one control, escape sequence or rune from b and returns
// its length, or 0 when b ends inside it.
func (v *vt) step(b []byte) int {
	switch c := b[0]; {
	case c == '\r':
		v.x = 0
	case c == '\n':
		v.y = min(v.y+1, len(v.cells)-1)
	case c == '\b':
		v.x = max(v.x-1, 0)
	case c == 0x1b:
		return v.escape(b)
	case c < 0x20 || c == 0x7f:
	default:
		if !utf8.FullRune(b) {
			return 0
		}
		r, n := utf8.DecodeRune(b)
		if v.y < len(v.cells) && v.x < len(v.cells[v.y]) {
			v.cells[v.y][v.x] = r
		}
		v.x++
		return n
	}
	return 1
}

func (v *vt) escape(b []byte) int {
	if len(b) < 2 {
		return 0
	}
	switch b[1] {
	case '[':
		for i := 2; i < len(b); i++ {
			if b[i] >= 0x40 && b[i] <= 0x7e {
				v.csi(string(b[2:i]), b[i])
				return i + 1
			}
		}
		return 0
	case ']': // OSC, ended by BEL or ESC \
		for i := 2; i < len(b); i++ {
			if b[i] == 7 {
				return i + 1
			}
			if b[i] == 0x1b && i+1 < len(b) && b[i+1] == '\\' {
				return i + 2
			}
		}
		return 0
	case '(', ')', '*', '+', '#', '%':
		if len(b) < 3 {
			return 0
		}
		return 3
	}
	return 2
}

func (v *vt) csi(params string, final byte) {
	if strings.HasPrefix(params, "?") || strings.HasPrefix(params, ">") {
		return
	}
	var ps []int
	for _, f := range strings.Split(params, ";") {
		n, _ := strconv.Atoi(f)
		ps = append(ps, n)
	}
	arg := func(i, def int) int {
		if i < len(ps) && ps[i] != 0 {
			return ps[i]
		}
		return def
	}
	switch final {
	case 'H', 'f':
		v.y, v.x = arg(0, 1)-1, arg(1, 1)-1
	case 'J':
		if arg(0, 0) == 2 {
			for y := range v.cells {
				for x := range v.cells[y] {
					v.cells[y][x] = ' '
				}
			}
		}
	case 'K':
		if v.y < len(v.cells) {
			for x := v.x; x < len(v.cells[v.y]); x++ {
				v.cells[v.y][x] = ' '
			}
		}
	case 'A':
		v.y = max(v.y-arg(0, 1), 0)
	case 'B':
		v.y = min(v.y+arg(0, 1), len(v.cells)-1)
	case 'C':
		v.x += arg(0, 1)
	case 'D':
		v.x = max(v.x-arg(0, 1), 0)
	case 'G':
		v.x = arg(0, 1) - 1
	case 'd':
		v.y = arg(0, 1) - 1
	}
}

// text is the screen as rows, trailing blanks dropped.
func (v *vt) text() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	var rows []string
	for _, r := range v.cells {
		rows = append(rows, strings.TrimRight(string(r), " "))
	}
	return strings.Join(rows, "\n")
}

// wait polls the screen until it shows want, or fails with the screen.
func (v *vt) wait(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if strings.Contains(v.text(), want) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("screen never showed %q; screen:\n%s", want, v.text())
}
