package backup

import (
	"os"
	"testing"
)

// TestDevNum reads the device numbers a source disk is looked up by from
// device files whose numbers Linux fixes (devices.txt): /dev/null is 1:3,
// /dev/loop-control 10:237.
func TestDevNum(t *testing.T) {
	for _, tt := range []struct {
		path         string
		major, minor int
	}{{"/dev/null", 1, 3}, {"/dev/loop-control", 10, 237}} {
		fi, err := os.Stat(tt.path)
		if err != nil {
			t.Fatal(err)
		}
		if major, minor := devNum(fi); major != tt.major || minor != tt.minor {
			t.Errorf("devNum(%s) = %d:%d, want %d:%d", tt.path, major, minor, tt.major, tt.minor)
		}
	}
}
