package treelist

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzParseLine parses arbitrary listing lines, as verify reads the
// listing stored in an rsync set. It must not panic; a line it accepts
// must format back to a line that parses to the same entry, and the
// escaped path never holds a separator.
func FuzzParseLine(f *testing.F) {
	f.Add("d 0755 0 0 1700000000123456789 0 - - - - .")
	f.Add("f 0644 0 0 1700000000123456789 12 " + strings.Repeat("ab", 32) + " - - - etc/hostname")
	f.Add(`l 0777 1000 1000 -5 13 - - - - home/pi/l\x20nk`)
	f.Add("c 0644 0 0 1 0 - 1:3 - - dev/null")
	f.Add(`f 4755 0 0 1 0 - - - etc/a etc/b\x5c`)
	f.Add(`f 0644 0 0 1 0 - - - - a\x`)
	f.Fuzz(func(t *testing.T, line string) {
		e, err := ParseLine(line)
		if err != nil {
			return
		}
		s := e.String()
		if strings.ContainsAny(s, "\n\r") {
			t.Fatalf("String() of %+v holds a line break: %q", e, s)
		}
		e2, err := ParseLine(s)
		if err != nil {
			t.Fatalf("ParseLine(%q) accepted; its String() %q does not parse: %v", line, s, err)
		}
		if e2 != e {
			t.Fatalf("round trip of %q: %+v became %+v", line, e, e2)
		}
	})
}

// FuzzReader reads a whole listing (header, lines) as verify does, and
// compares it with itself: Diff of a listing with itself is empty.
func FuzzReader(f *testing.F) {
	f.Add(Header + "\nd 0755 0 0 1 0 - - - - .\nf 0644 0 0 1 2 - - - - a\n")
	f.Add(Header + "\nd 0755 0 0 1 0 - - - - .\n\n")
	f.Add("no header\n")
	f.Fuzz(func(t *testing.T, listing string) {
		r := NewReader(strings.NewReader(listing))
		for i := 0; i < 1<<16; i++ {
			if _, err := r.Next(); err != nil {
				break
			}
		}
		d, err := Diff(strings.NewReader(listing), bytes.NewReader([]byte(listing)))
		if err == nil && d != "" {
			t.Fatalf("Diff of a listing with itself = %q", d)
		}
	})
}
