package main

import "testing"

func TestHasWord(t *testing.T) {
	for _, tc := range []struct {
		cmdline string
		want    bool
	}{
		{"console=ttyAMA0 " + testPanicFlag + " quiet", true},
		{testPanicFlag, true},
		{"console=ttyAMA0 pibackup.test_panic=sigusr1", false},
		{"console=ttyAMA0 x" + testPanicFlag, false},
		{`recovery.conf_note="` + testPanicFlag + `"`, false},
		{"", false},
	} {
		if got := hasWord(tc.cmdline, testPanicFlag); got != tc.want {
			t.Errorf("hasWord(%q) = %v; want %v", tc.cmdline, got, tc.want)
		}
	}
}
