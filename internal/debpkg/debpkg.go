// Package debpkg downloads Debian binary packages for a foreign architecture
// into a cache directory and unpacks them, without root and without touching
// the host's apt state, so the initramfs can carry real e2fsprogs, tar and
// rsync binaries for the target.
//
// It drives the host's apt-get and dpkg-deb: apt already knows the mirrors,
// verifies the Release signatures and resolves versions, which we would
// otherwise have to reimplement.
package debpkg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// Arch maps a GOARCH to the Debian architecture and the multiarch triplet
// used in library paths.
type Arch struct {
	Debian  string // "arm64"
	Triplet string // "aarch64-linux-gnu"
}

// ArchFor returns the Debian names for goarch.
func ArchFor(goarch string) (Arch, error) {
	switch goarch {
	case "arm64":
		return Arch{Debian: "arm64", Triplet: "aarch64-linux-gnu"}, nil
	case "amd64":
		return Arch{Debian: "amd64", Triplet: "x86_64-linux-gnu"}, nil
	}
	return Arch{}, fmt.Errorf("no Debian architecture for GOARCH %q", goarch)
}

// Cache holds downloaded packages under Dir/<debian arch>/.
type Cache struct {
	Dir string
	Log *slog.Logger
}

// Fetch returns the paths of the .deb files for pkgs, downloading them when
// any is missing from the cache. The versions are whatever the host's apt
// sources (Debian bookworm + security) currently serve; the names are pinned
// by the caller. Set refresh to download again even if all are cached.
func (c *Cache) Fetch(ctx context.Context, arch Arch, pkgs []string, refresh bool) ([]string, error) {
	base := filepath.Join(c.Dir, arch.Debian)
	debDir := filepath.Join(base, "debs")
	if !refresh {
		if debs, err := findDebs(debDir, arch, pkgs); err == nil {
			return debs, nil
		}
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return nil, fmt.Errorf("apt-get is needed to download %s packages (or fill %s by hand): %w", arch.Debian, debDir, err)
	}
	lists := filepath.Join(base, "lists")
	for _, d := range []string{filepath.Join(lists, "partial"), filepath.Join(base, "apt", "archives", "partial")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("create apt cache: %w", err)
		}
	}
	// Our own lists and cache directories keep the host's apt state (and its
	// architecture list) untouched and let a normal user run this.
	opts := []string{
		"-oAPT::Architecture=" + arch.Debian,
		"-oAPT::Architectures=" + arch.Debian,
		"-oDir::State::Lists=" + lists,
		"-oDir::Cache=" + filepath.Join(base, "apt"),
	}
	c.Log.Info("apt-get update", "arch", arch.Debian, "cache", base)
	if err := run(ctx, base, "apt-get", append(append([]string{}, opts...), "update")...); err != nil {
		return nil, err
	}
	// Download into a fresh directory and swap it in, so that an old version
	// of a package never sits next to the new one.
	tmp, err := os.MkdirTemp(base, "debs-new-")
	if err != nil {
		return nil, fmt.Errorf("create download dir: %w", err)
	}
	defer os.RemoveAll(tmp)
	c.Log.Info("apt-get download", "arch", arch.Debian, "packages", pkgs)
	if err := run(ctx, tmp, "apt-get", append(append(opts, "download"), pkgs...)...); err != nil {
		return nil, err
	}
	if _, err := findDebs(tmp, arch, pkgs); err != nil {
		return nil, fmt.Errorf("after apt-get download: %w", err)
	}
	old := debDir + ".old"
	os.RemoveAll(old)
	if err := os.Rename(debDir, old); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("replace cached packages: %w", err)
	}
	if err := os.Rename(tmp, debDir); err != nil {
		return nil, fmt.Errorf("replace cached packages: %w", err)
	}
	os.RemoveAll(old)
	return findDebs(debDir, arch, pkgs)
}

// findDebs finds exactly one .deb per package in dir.
func findDebs(dir string, arch Arch, pkgs []string) ([]string, error) {
	var debs, missing []string
	for _, p := range pkgs {
		var found []string
		for _, a := range []string{arch.Debian, "all"} {
			m, err := filepath.Glob(filepath.Join(dir, p+"_*_"+a+".deb"))
			if err != nil {
				return nil, fmt.Errorf("find %s: %w", p, err)
			}
			found = append(found, m...)
		}
		switch len(found) {
		case 0:
			missing = append(missing, p)
		case 1:
			debs = append(debs, found[0])
		default:
			return nil, fmt.Errorf("package %s: several versions in %s: %s", p, dir, strings.Join(found, " "))
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("packages not in %s: %s", dir, strings.Join(missing, " "))
	}
	return debs, nil
}

// Extract unpacks debs into dir with dpkg-deb -x (no root needed: it does not
// run maintainer scripts or chown).
func Extract(ctx context.Context, debs []string, dir string) error {
	for _, d := range debs {
		if err := run(ctx, dir, "dpkg-deb", "-x", d, dir); err != nil {
			return err
		}
	}
	return nil
}

// Version returns "name version" as dpkg-deb reads it from the control file.
func Version(ctx context.Context, deb string) (string, error) {
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, "dpkg-deb", "-f", deb, "Package", "Version")
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("dpkg-deb -f %s: %w", deb, err)
	}
	fields := map[string]string{}
	for _, l := range strings.Split(out.String(), "\n") {
		if k, v, ok := strings.Cut(l, ": "); ok {
			fields[k] = v
		}
	}
	return fields["Package"] + " " + fields["Version"], nil
}

// Sizes returns the total size in bytes of files.
func Sizes(files []string) (int64, error) {
	var n int64
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			return 0, fmt.Errorf("stat package: %w", err)
		}
		n += fi.Size()
	}
	return n, nil
}

func run(ctx context.Context, dir, name string, args ...string) error {
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, tail(out.String(), 2000))
	}
	return nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
