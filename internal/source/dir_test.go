package source_test

import (
	"testing"

	"github.com/pibackup/pibackup/internal/source"
	"github.com/pibackup/pibackup/internal/source/sourcetest"
)

func TestDirConformance(t *testing.T) {
	sourcetest.Run(t, func(t *testing.T, dir string) source.Source {
		d, err := source.OpenDir(dir, "")
		if err != nil {
			t.Fatal(err)
		}
		return d
	})
}
