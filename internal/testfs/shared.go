package testfs

import (
	"os"
	"sync"
	"testing"
)

// SharedDisk is one Pi-like disk image for all the tests of a test
// binary, built the first time a test asks for it (building takes a few
// seconds). Tests only read it. The package's TestMain calls Remove.
type SharedDisk struct {
	Prefix string      // of the temporary folder that holds it
	Opts   DiskOptions // as BuildPiDisk takes them

	once sync.Once
	dir  string
	disk *PiDisk
	err  error
}

// Get returns the disk, building it on the first call.
func (s *SharedDisk) Get(t testing.TB) *PiDisk {
	t.Helper()
	Require(t, "pidisk")
	s.once.Do(func() {
		s.dir, s.err = os.MkdirTemp("", s.Prefix)
		if s.err == nil {
			s.disk, s.err = BuildPiDisk(s.dir, s.Opts)
		}
	})
	if s.err != nil {
		t.Fatalf("build fixture: %v", s.err)
	}
	return s.disk
}

// Dir is the folder that holds the disk ("" before Get); other files
// shared by the binary's tests may go there too.
func (s *SharedDisk) Dir() string { return s.dir }

// Remove deletes the folder, if Get made one.
func (s *SharedDisk) Remove() {
	if s.dir != "" {
		os.RemoveAll(s.dir)
	}
}
