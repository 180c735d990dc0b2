package tui_test

import (
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/gdamore/tcell/v2"
	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// -screenshots DIR writes the README's screenshots (make screenshots).
var screenshotDir = flag.String("screenshots", "", "write PNG screenshots of the UI into this folder")

// TestScreenshots walks a restore on the simulation screen and renders
// the screens a user sees as PNG images, cell by cell with their colours.
// Without -screenshots they go to a temporary folder and the test only
// checks that each screen rendered with text and colour in it.
func TestScreenshots(t *testing.T) {
	dir := *screenshotDir
	if dir == "" {
		dir = t.TempDir()
	}
	w := newWorld(t)
	h := start(t, w, nil)
	shot := func(name, want string) {
		t.Helper()
		h.wait(want)
		img := h.render()
		if err := checkRendered(img); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		f, err := os.Create(filepath.Join(dir, name+".png"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := png.Encode(f, img); err != nil {
			t.Fatal(err)
		}
	}
	shot("recovery-home", "Restore a backup")
	h.rune('r')
	h.wait("Network or other location")
	h.rune('n')
	h.wait("Location")
	h.typeText("dir:" + w.BackupDir)
	h.key(tcell.KeyEnter)
	h.wait("Backups in")
	h.down(1)
	shot("recovery-sets", "Backups in")
	h.key(tcell.KeyEnter)
	h.wait("Restore " + w.NewestSet + " onto")
	h.down(2)
	h.key(tcell.KeyEnter)
	shot("recovery-plan", "Nothing has been written yet")
	h.key(tcell.KeyEnter)
	h.wait("Type sdb to ERASE")
	h.typeText("sdb")
	h.key(tcell.KeyEnter)
	shot("recovery-done", "Restore complete")
}

// Cell size of basicfont's 7×13 face, drawn at twice the size so the
// text reads well on a web page.
const (
	cellW, cellH = 7, 13
	scale        = 2
)

// render draws the simulation screen: each cell's background, then its
// rune in its foreground colour, bold as a second pass one pixel right.
func (h *harness) render() *image.RGBA {
	var cells []tcell.SimCell
	var cols, rows int
	h.ui.App().QueueUpdate(func() {
		var c []tcell.SimCell
		c, cols, rows = h.screen.GetContents()
		cells = make([]tcell.SimCell, len(c))
		for i := range c {
			cells[i] = c[i]
			cells[i].Runes = append([]rune(nil), c[i].Runes...)
		}
	})
	small := image.NewRGBA(image.Rect(0, 0, cols*cellW, rows*cellH))
	d := font.Drawer{Dst: small, Face: basicfont.Face7x13}
	for i, c := range cells {
		x, y := (i%cols)*cellW, (i/cols)*cellH
		fg, bg, attr := c.Style.Decompose()
		fgc, bgc := rgb(fg, color.RGBA{0xd0, 0xd0, 0xd0, 0xff}), rgb(bg, color.RGBA{0x10, 0x10, 0x10, 0xff})
		if attr&tcell.AttrReverse != 0 {
			fgc, bgc = bgc, fgc
		}
		draw.Draw(small, image.Rect(x, y, x+cellW, y+cellH), image.NewUniform(bgc), image.Point{}, draw.Src)
		if len(c.Runes) == 0 || c.Runes[0] == ' ' {
			continue
		}
		if drawBox(small, x, y, c.Runes[0], fgc) {
			continue
		}
		r := c.Runes[0]
		switch r {
		case '↑':
			r = '^'
		case '↓':
			r = 'v'
		case '…':
			r = '~'
		}
		c.Runes[0] = r
		d.Src = image.NewUniform(fgc)
		d.Dot = fixed.P(x, y+basicfont.Face7x13.Ascent)
		d.DrawString(string(c.Runes[0]))
		if attr&tcell.AttrBold != 0 {
			d.Dot = fixed.P(x+1, y+basicfont.Face7x13.Ascent)
			d.DrawString(string(c.Runes[0]))
		}
	}
	big := image.NewRGBA(image.Rect(0, 0, small.Bounds().Dx()*scale, small.Bounds().Dy()*scale))
	for y := range big.Bounds().Dy() {
		for x := range big.Bounds().Dx() {
			big.SetRGBA(x, y, small.RGBAAt(x/scale, y/scale))
		}
	}
	return big
}

// rgb is c as a colour, def for the terminal's default.
func rgb(c tcell.Color, def color.RGBA) color.RGBA {
	if c == tcell.ColorDefault {
		return def
	}
	r, g, b := c.RGB()
	if r < 0 {
		return def
	}
	return color.RGBA{uint8(r), uint8(g), uint8(b), 0xff}
}

// checkRendered fails an image with fewer than 3 colours (text on a
// background and at least one highlight) or almost no ink.
func checkRendered(img *image.RGBA) error {
	colours := map[color.RGBA]int{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			colours[img.RGBAAt(x, y)]++
		}
	}
	if len(colours) < 3 {
		return fmt.Errorf("only %d colours on the screen", len(colours))
	}
	return nil
}

// boxArms says which of a box-drawing rune's arms (left, right, up, down)
// exist and whether it is a double line; basicfont has no such glyphs.
var boxArms = map[rune]struct {
	l, r, u, d, double bool
}{
	'─': {l: true, r: true}, '│': {u: true, d: true},
	'┌': {r: true, d: true}, '┐': {l: true, d: true}, '└': {r: true, u: true}, '┘': {l: true, u: true},
	'├': {r: true, u: true, d: true}, '┤': {l: true, u: true, d: true},
	'┬': {l: true, r: true, d: true}, '┴': {l: true, r: true, u: true}, '┼': {l: true, r: true, u: true, d: true},
	'═': {l: true, r: true, double: true}, '║': {u: true, d: true, double: true},
	'╔': {r: true, d: true, double: true}, '╗': {l: true, d: true, double: true},
	'╚': {r: true, u: true, double: true}, '╝': {l: true, u: true, double: true},
}

// drawBox draws r as lines through the cell's centre if it is a
// box-drawing rune, and reports whether it was one.
func drawBox(img *image.RGBA, x, y int, r rune, c color.RGBA) bool {
	a, ok := boxArms[r]
	if !ok {
		return false
	}
	cx, cy := x+cellW/2, y+cellH/2
	offs := []int{0}
	if a.double {
		offs = []int{-1, 1}
	}
	for _, o := range offs {
		if a.l {
			hline(img, x, cx+o*boolInt(a.d != a.u), cy+o, c)
		}
		if a.r {
			hline(img, cx-o*boolInt(a.d != a.u), x+cellW-1, cy+o, c)
		}
		if a.u {
			vline(img, cx+o, y, cy-o*boolInt(a.l != a.r), c)
		}
		if a.d {
			vline(img, cx+o, cy+o*boolInt(a.l != a.r), y+cellH-1, c)
		}
	}
	return true
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func hline(img *image.RGBA, x0, x1, y int, c color.RGBA) {
	if x0 > x1 {
		x0, x1 = x1, x0
	}
	for x := x0; x <= x1; x++ {
		img.SetRGBA(x, y, c)
	}
}

func vline(img *image.RGBA, x, y0, y1 int, c color.RGBA) {
	if y0 > y1 {
		y0, y1 = y1, y0
	}
	for y := y0; y <= y1; y++ {
		img.SetRGBA(x, y, c)
	}
}
