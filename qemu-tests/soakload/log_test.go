package main

import (
	"bytes"
	"testing"
)

func TestVerifyLog(t *testing.T) {
	var clean []byte
	for i := int64(1); i <= 3; i++ {
		clean = append(clean, logLine(i, "abcdef")...)
	}
	bad := bytes.Clone(clean)
	bad[len(logLine(1, "abcdef"))+3] ^= 1 // a bit flipped in line 2
	for _, c := range []struct {
		name  string
		log   []byte
		lines int64
		ok    bool
	}{
		{"clean", clean, 3, true},
		{"torn last line", append(bytes.Clone(clean), "4 abc"...), 3, true},
		{"zeros after a crash", append(bytes.Clone(clean), make([]byte, 4096)...), 3, true},
		{"bad line in the middle", bad, 1, false},
		{"out of order", append(bytes.Clone(clean), logLine(5, "abcdef")...), 3, false},
		{"empty", nil, 0, true},
	} {
		lines, _, err := verifyLog(c.log)
		if lines != c.lines || (err == nil) != c.ok {
			t.Errorf("%s: %d lines, err %v; want %d lines, ok %v", c.name, lines, err, c.lines, c.ok)
		}
	}
}
