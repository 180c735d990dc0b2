//go:build !linux

package main

import "errors"

// readUsage has no source of figures outside Linux.
func readUsage() (runUsage, error) {
	return runUsage{}, errors.New("usage: only measured on Linux")
}
