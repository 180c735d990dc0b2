package testfs

import "testing"

func TestParseQEMUVersion(t *testing.T) {
	for _, c := range []struct {
		out          string
		major, minor int
		ok           bool
	}{
		{"QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)\nCopyright (c) 2003-2025 Fabrice Bellard", 10, 0, true},
		{"QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\n", 7, 2, true},
		{"qemu-system-aarch64: error while loading shared libraries", 0, 0, false},
	} {
		major, minor, err := parseQEMUVersion(c.out)
		if (err == nil) != c.ok || major != c.major || minor != c.minor {
			t.Errorf("parseQEMUVersion(%q) = %d, %d, %v; want %d, %d, ok=%v", c.out, major, minor, err, c.major, c.minor, c.ok)
		}
	}
}
