//go:build !linux

package source

import "fmt"

const mountReadOnly = 1

type sysMounter struct{}

func (sysMounter) Mount(source, target, fstype string, flags uintptr, data string) error {
	return fmt.Errorf("mount %s: %w (mounting needs Linux)", source, ErrUnsupported)
}

func (sysMounter) Unmount(target string) error {
	return fmt.Errorf("unmount %s: %w (mounting needs Linux)", target, ErrUnsupported)
}
