package procstatus

import (
	"os"
	"strconv"
	"testing"
)

// TestPeakRSS: touching 64 MiB raises this process's peak by at least
// that much; a process that does not exist is an error, not 0.
func TestPeakRSS(t *testing.T) {
	before, err := PeakRSS("self")
	if err != nil || before <= 0 {
		t.Fatalf("PeakRSS(self) = %d, %v", before, err)
	}
	b := make([]byte, 64<<20)
	for i := range b {
		b[i] = 1
	}
	after, err := PeakRSS(strconv.Itoa(os.Getpid()))
	if err != nil || after-before < 60<<20 {
		t.Errorf("after touching 64 MiB: %d → %d (%v)", before, after, err)
	}
	_ = b[len(b)-1]
	if _, err := PeakRSS("999999999"); err == nil {
		t.Error("PeakRSS of a process that does not exist: no error")
	}
}
