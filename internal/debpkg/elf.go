package debpkg

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Closure is what a set of dynamically linked programs needs at run time.
type Closure struct {
	// Interp is the program interpreter (the dynamic loader) as the programs
	// name it, e.g. "/lib/ld-linux-aarch64.so.1".
	Interp string
	// Libs maps a soname (e.g. "libc.so.6") to its file under root, with
	// symlinks resolved. The loader itself is included under its base name.
	Libs map[string]string
}

// SonamesSorted returns the sonames of c.Libs in order.
func (c *Closure) SonamesSorted() []string { return sortedKeys(c.Libs) }

// Resolve finds the shared libraries that bins (paths relative to root)
// need, transitively, by reading DT_NEEDED like the loader does. Libraries
// are searched in the multiarch directories of arch under root. A library
// that is not found is an error: a missing package in the pinned list must
// fail the build, not the restore.
func Resolve(root string, arch Arch, bins []string) (*Closure, error) {
	c := &Closure{Libs: map[string]string{}}
	searchDirs := []string{
		filepath.Join(root, "lib", arch.Triplet),
		filepath.Join(root, "usr", "lib", arch.Triplet),
		filepath.Join(root, "lib"),
		filepath.Join(root, "usr", "lib"),
	}
	var queue []string
	for _, b := range bins {
		p := filepath.Join(root, b)
		interp, err := interpreter(p)
		if err != nil {
			return nil, err
		}
		switch {
		case interp == "":
			return nil, fmt.Errorf("%s: no program interpreter (static binaries need no closure; is this the right file?)", b)
		case c.Interp == "":
			c.Interp = interp
		case c.Interp != interp:
			return nil, fmt.Errorf("%s: interpreter %s, others use %s", b, interp, c.Interp)
		}
		queue = append(queue, p)
	}
	if c.Interp != "" {
		real, err := realFile(root, c.Interp)
		if err != nil {
			return nil, fmt.Errorf("dynamic loader: %w", err)
		}
		c.Libs[path.Base(c.Interp)] = real
	}
	inside := filepath.Clean(root)
	if inside != string(filepath.Separator) {
		inside += string(filepath.Separator)
	}
	seen := map[string]bool{}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if seen[p] {
			continue
		}
		seen[p] = true
		needed, err := neededLibs(p)
		if err != nil {
			return nil, err
		}
		for _, soname := range needed {
			if _, ok := c.Libs[soname]; ok {
				continue
			}
			found := ""
			for _, d := range searchDirs {
				cand := filepath.Join(d, soname)
				if _, err := os.Stat(cand); err == nil {
					found = cand
					break
				}
			}
			if found == "" {
				return nil, fmt.Errorf("%s needs %s, which none of the downloaded packages has (add its package to the list)", rel(root, p), soname)
			}
			real, err := filepath.EvalSymlinks(found)
			if err != nil {
				return nil, fmt.Errorf("resolve %s: %w", found, err)
			}
			if !strings.HasPrefix(real, inside) {
				return nil, fmt.Errorf("%s resolves outside the package tree: %s", soname, real)
			}
			c.Libs[soname] = real
			queue = append(queue, real)
		}
	}
	return c, nil
}

// realFile resolves an absolute in-target path (such as the loader path,
// which is a symlink in Debian's libc6) inside root.
func realFile(root, target string) (string, error) {
	p := filepath.Join(root, target)
	for range 10 {
		fi, err := os.Lstat(p)
		if err != nil {
			return "", fmt.Errorf("resolve %s: %w", target, err)
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			return p, nil
		}
		link, err := os.Readlink(p)
		if err != nil {
			return "", fmt.Errorf("resolve %s: %w", target, err)
		}
		if path.IsAbs(link) {
			p = filepath.Join(root, link)
		} else {
			p = filepath.Join(filepath.Dir(p), link)
		}
	}
	return "", fmt.Errorf("resolve %s: too many symlinks", target)
}

func interpreter(p string) (string, error) {
	f, err := elf.Open(p)
	if err != nil {
		return "", fmt.Errorf("read ELF: %w", err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type != elf.PT_INTERP {
			continue
		}
		b := make([]byte, prog.Filesz)
		if _, err := prog.ReadAt(b, 0); err != nil {
			return "", fmt.Errorf("read interpreter of %s: %w", p, err)
		}
		return strings.TrimRight(string(b), "\x00"), nil
	}
	return "", nil
}

func neededLibs(p string) ([]string, error) {
	f, err := elf.Open(p)
	if err != nil {
		return nil, fmt.Errorf("read ELF: %w", err)
	}
	defer f.Close()
	libs, err := f.ImportedLibraries()
	if err != nil && !errors.Is(err, elf.ErrNoSymbols) {
		return nil, fmt.Errorf("read DT_NEEDED of %s: %w", p, err)
	}
	return libs, nil
}

func rel(root, p string) string {
	if r, err := filepath.Rel(root, p); err == nil {
		return r
	}
	return p
}
