package backup

import (
	"fmt"
	"path"
	"strings"

	"github.com/pibackup/pibackup/internal/blockdev"
)

// DefaultExcludes are raspiBackup's default excludes (reference §1.4) in
// our exclude syntax. They apply to the root filesystem only: they name
// kernel filesystems and scratch space of a running system, which a
// restore recreates empty.
var DefaultExcludes = blockdev.LiveExcludes()

// Our exclude syntax is rsync's, the same for every backup type so that a
// user learns one rule:
//
//   - a pattern starting with "/" is anchored at the root of the filesystem
//     being backed up ("/var/cache/*"); any other pattern matches at any
//     depth ("*.tmp", "node_modules", "cache/x");
//   - "*" matches within one path component, "**" across components, "?"
//     one character, "[...]" a class;
//   - an excluded directory is left out with everything below it;
//   - a trailing "/" (directories only) is honoured by rsync; for tar it is
//     dropped, so the pattern also matches a file of that name.

// CheckExclude rejects patterns the tools would misread.
func CheckExclude(p string) error {
	switch {
	case strings.TrimSpace(p) == "" || p == "/":
		return fmt.Errorf("exclude %q: empty pattern", p)
	case strings.ContainsAny(p, "\n\x00"):
		return fmt.Errorf("exclude %q: newline or NUL in pattern", p)
	case strings.HasPrefix(p, "--exclude="):
		return fmt.Errorf("exclude %q: give the path pattern only, e.g. %q (raspiBackup's -u takes tool arguments, we take patterns)", p, strings.TrimPrefix(p, "--exclude="))
	case strings.HasPrefix(p, "-") || strings.HasPrefix(p, "+ "):
		return fmt.Errorf("exclude %q: a pattern may not start with %q", p, p[:1])
	}
	if _, err := path.Match(strings.ReplaceAll(p, "**", "*"), ""); err != nil {
		return fmt.Errorf("exclude %q: %w", p, err)
	}
	return nil
}

// TarExcludeArgs translates exclude patterns into GNU tar options for an
// archive created with `-C ROOT .`, whose member names start with "./".
// GNU tar's matching options are positional, so each pattern carries its
// own: anchored patterns get "./" prepended, "*" stays within a component
// (--no-wildcards-match-slash) unless the pattern uses "**".
func TarExcludeArgs(patterns []string) []string {
	var args []string
	for _, p := range patterns {
		p = strings.TrimSuffix(p, "/")
		anchored := strings.HasPrefix(p, "/")
		if anchored {
			p = "." + p
			args = append(args, "--anchored")
		} else {
			args = append(args, "--no-anchored")
		}
		if strings.Contains(p, "**") {
			p = strings.ReplaceAll(p, "**", "*")
			args = append(args, "--wildcards-match-slash")
		} else {
			args = append(args, "--no-wildcards-match-slash")
		}
		args = append(args, "--exclude="+p)
	}
	return args
}

// RsyncExcludeArgs translates exclude patterns for rsync, whose syntax ours
// is: patterns pass unchanged, anchored at the transfer root.
func RsyncExcludeArgs(patterns []string) []string {
	args := make([]string, 0, len(patterns))
	for _, p := range patterns {
		args = append(args, "--exclude="+p)
	}
	return args
}

// TarArgs is GNU tar's argv (without the program name) to archive the
// filesystem mounted at root to stdout. Member names are "./path", as in
// raspiBackup's archives, so either restores with the same tar command.
//
// --xattrs-include='*' because GNU tar stores only user.* by default; the
// capabilities (security.capability) and trusted.* are what break a Pi
// (ping, sudo) when lost. --acls keeps system.posix_acl_*. --sparse keeps
// holes. --format=posix is the only format that holds xattrs, long names
// and nanosecond times.
func TarArgs(root string, excludes []string) []string {
	args := []string{
		"--create", "--one-file-system", "--numeric-owner",
		"--xattrs", "--xattrs-include=*", "--acls", "--sparse", "--format=posix",
		// A mount point below root is expected, not a problem.
		"--warning=no-xdev",
		// Sockets cannot be archived; tar says so and carries on.
		"--warning=no-file-ignored",
		"-C", root,
	}
	args = append(args, TarExcludeArgs(excludes)...)
	return append(args, "-f", "-", ".")
}

// RsyncArgs is rsync's argv (without the program name) to copy the tree at
// root into dest, hardlinking unchanged files against linkDest ("" for
// none). Trailing slashes matter to rsync and are added here.
//
// -aHAX is raspiBackup's -aHAx plus -X: rsync copies xattrs (capabilities)
// only with -X, and raspiBackup's own -A without -X loses them.
//
// With progress, rsync reports the bytes copied so far (--info=progress2).
// Its incremental recursion stays on: the percentage it prints is then
// of the files found so far, but only the byte count is used, and
// --no-inc-recursive would make rsync scan the whole tree before copying
// the first file and hold the whole file list in memory.
func RsyncArgs(root, dest, linkDest string, excludes []string, progress bool) []string {
	args := []string{"-aHAX", "--numeric-ids", "--one-file-system", "--delete", "--force", "--sparse"}
	if progress {
		args = append(args, "--info=progress2")
	}
	if linkDest != "" {
		args = append(args, "--link-dest="+linkDest)
	}
	args = append(args, RsyncExcludeArgs(excludes)...)
	return append(args, strings.TrimSuffix(root, "/")+"/", strings.TrimSuffix(dest, "/")+"/")
}

// Match reports whether rel (relative to the filesystem root,
// "/"-separated, no leading "/") is excluded by pattern in our syntax. It
// is the Go rendering of the rule above, used where no tool does the
// matching (FAT partitions read in-process, tree listings).
func Match(pattern, rel string) bool {
	pattern = strings.TrimSuffix(pattern, "/")
	if strings.HasPrefix(pattern, "/") {
		return globMatch(strings.TrimPrefix(pattern, "/"), rel)
	}
	// Unanchored: match against every tail of rel that starts at a
	// component boundary.
	for s := rel; ; {
		if globMatch(pattern, s) {
			return true
		}
		i := strings.IndexByte(s, '/')
		if i < 0 {
			return false
		}
		s = s[i+1:]
	}
}

// globMatch matches name against pattern where "**" may span "/".
func globMatch(pattern, name string) bool {
	if !strings.Contains(pattern, "**") {
		ok, _ := path.Match(pattern, name)
		return ok
	}
	before, after, _ := strings.Cut(pattern, "**")
	for i := 0; i <= len(name); i++ {
		if ok, _ := path.Match(before, name[:i]); !ok {
			continue
		}
		for j := i; j <= len(name); j++ { // "**" takes name[i:j]
			if globMatch(after, name[j:]) {
				return true
			}
		}
	}
	return false
}

// excluder returns a func reporting whether rel is excluded by any of
// patterns.
func excluder(patterns []string) func(rel string) bool {
	return func(rel string) bool {
		for _, p := range patterns {
			if Match(p, rel) {
				return true
			}
		}
		return false
	}
}
