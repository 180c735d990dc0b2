//go:build !linux

package imageio

import "os"

// adviser does nothing where posix_fadvise is not available.
type adviser struct{}

func newAdviser(any) adviser    { return adviser{} }
func (adviser) done(_, _ int64) {}
func (adviser) close()          {}

// NoReadahead does nothing where posix_fadvise is not available.
func NoReadahead(*os.File) {}
