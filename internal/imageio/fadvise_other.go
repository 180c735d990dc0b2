//go:build !linux

package imageio

// adviser does nothing where posix_fadvise is not available.
type adviser struct{}

func newAdviser(any) adviser    { return adviser{} }
func (adviser) done(_, _ int64) {}
func (adviser) close()          {}
