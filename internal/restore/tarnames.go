package restore

import (
	"archive/tar"
	"errors"
	"fmt"
	"strings"
)

// TarMembers checks the names of a filesystem archive's members, one
// header after the other, so that everything the archive holds lies
// inside the filesystem it is extracted into. GNU tar, which does the
// extraction, defends the host itself (it strips leading "/", skips ".."
// names and delays symlinks), but it does so silently or with an exit
// status that hides which member was hostile, and it leaves a root
// filesystem that is not the one that was saved. backupctl and
// raspiBackup write members as "./path", so none of this is in a good
// set. The restore runs it on the side of the extraction (tarEnd) and
// verify on every tar payload, so both refuse a set with the same words.
type TarMembers struct {
	// nonDir records the paths the archive made something other than a
	// folder (symlinks above all): nothing may lie below them.
	nonDir map[string]byte
}

// Check checks one member header.
func (c *TarMembers) Check(h *tar.Header) error {
	if c.nonDir == nil {
		c.nonDir = map[string]byte{}
	}
	name, err := tarPath(h.Name)
	if err != nil {
		return fmt.Errorf("tar member %q: %w", h.Name, err)
	}
	if name == "." {
		return nil
	}
	if above, kind := c.below(name); above != "" {
		return fmt.Errorf("tar member %q lies below %q, which the archive made a %s: extracting it would follow or replace that", h.Name, above, kind)
	}
	if h.Typeflag == tar.TypeLink {
		target, err := tarPath(h.Linkname)
		if err != nil {
			return fmt.Errorf("tar member %q: hardlink target %q: %w", h.Name, h.Linkname, err)
		}
		if above, kind := c.below(target); above != "" {
			return fmt.Errorf("tar member %q: hardlink target %q lies below %q, which the archive made a %s", h.Name, h.Linkname, above, kind)
		}
	}
	if h.Typeflag == tar.TypeDir {
		if k, ok := c.nonDir[name]; ok {
			return fmt.Errorf("tar member %q is a folder where the archive already made a %s", h.Name, typeName(k))
		}
		return nil
	}
	c.nonDir[name] = h.Typeflag
	return nil
}

// below returns the nearest parent of name that the archive made a
// non-folder, and what it made.
func (c *TarMembers) below(name string) (string, string) {
	for i := strings.LastIndexByte(name, '/'); i > 0; i = strings.LastIndexByte(name[:i], '/') {
		if k, ok := c.nonDir[name[:i]]; ok {
			return name[:i], typeName(k)
		}
	}
	return "", ""
}

func typeName(k byte) string {
	switch k {
	case tar.TypeSymlink:
		return "symlink"
	case tar.TypeReg, tar.TypeRegA, tar.TypeLink:
		return "file"
	}
	return "special file"
}

// tarPath returns a member name as a clean relative path ("." for the
// root), or why it points outside the filesystem.
func tarPath(name string) (string, error) {
	if strings.HasPrefix(name, "/") {
		return "", errors.New("absolute path: an archive that names files by absolute paths is not a backup (its members are named ./path)")
	}
	var parts []string
	for _, p := range strings.Split(name, "/") {
		switch p {
		case "", ".":
		case "..":
			return "", errors.New(`".." component: it names a path outside the filesystem`)
		default:
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 {
		return ".", nil
	}
	return strings.Join(parts, "/"), nil
}
