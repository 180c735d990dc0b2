package initramfs

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/pibackup/pibackup/internal/debpkg"
	"github.com/u-root/u-root/pkg/cpio"
)

// debianPackages is the pinned list of Debian (bookworm) packages whose
// binaries go into the initramfs: the programs, then every library package
// their DT_NEEDED closure needs. debpkg.Resolve fails the build when a library
// is missing, so a changed dependency shows up at build time.
func debianPackages() []string {
	return []string{
		// programs
		"e2fsprogs", "tar", "rsync",
		// libc and the loader
		"libc6",
		// e2fsprogs: libext2fs.so.2, libe2p.so.2, libcom_err.so.2, libblkid.so.1, libuuid.so.1
		"libext2fs2", "libcom-err2", "libblkid1", "libuuid1",
		// tar: libacl.so.1, libselinux.so.1 (which needs libpcre2-8.so.0)
		"libacl1", "libselinux1", "libpcre2-8-0",
		// rsync: libpopt.so.0, liblz4.so.1, libzstd.so.1, libxxhash.so.0, libcrypto.so.3, libz.so.1
		"libpopt0", "liblz4-1", "libzstd1", "libxxhash0", "libssl3", "zlib1g",
	}
}

// tool is one program taken from the packages.
type tool struct {
	src   string   // path in the extracted packages
	dst   string   // path in the initramfs
	links []string // symlinks in the same directory pointing at dst
}

// debianTools are the programs we copy. Debian bookworm installs e2fsprogs
// and tar under /sbin and /bin; they go to /usr/sbin and /usr/bin here, which
// are on u-root's PATH ahead of /bbin.
func debianTools() []tool {
	return []tool{
		{src: "sbin/mke2fs", dst: "usr/sbin/mke2fs", links: []string{"mkfs.ext2", "mkfs.ext3", "mkfs.ext4"}},
		{src: "sbin/e2fsck", dst: "usr/sbin/e2fsck", links: []string{"fsck.ext2", "fsck.ext3", "fsck.ext4"}},
		{src: "sbin/resize2fs", dst: "usr/sbin/resize2fs"},
		{src: "sbin/tune2fs", dst: "usr/sbin/tune2fs", links: []string{"e2label"}},
		{src: "sbin/dumpe2fs", dst: "usr/sbin/dumpe2fs"},
		{src: "bin/tar", dst: "usr/bin/tar"},
		{src: "usr/bin/rsync", dst: "usr/bin/rsync"},
	}
}

// debianFiles are data files the tools read.
func debianFiles() map[string]string {
	return map[string]string{
		// mke2fs has built-in defaults but warns without it; Debian's file
		// turns on the same ext4 features as the host's mkfs.ext4.
		"etc/mke2fs.conf": "etc/mke2fs.conf",
	}
}

// DebianInfo describes the Debian part of an initramfs.
type DebianInfo struct {
	Packages []string // "name version"
	DebBytes int64    // total size of the .deb files
	Libs     []string // sonames packed
}

// debianRecords downloads (or takes from the cache) the packages for goarch,
// unpacks them into a temporary directory and returns the cpio records for
// the tools, their libraries, the loader and the copyright files.
func debianRecords(ctx context.Context, cache *debpkg.Cache, goarch string, refresh bool) ([]cpio.Record, *DebianInfo, error) {
	arch, err := debpkg.ArchFor(goarch)
	if err != nil {
		return nil, nil, err
	}
	pkgs := debianPackages()
	debs, err := cache.Fetch(ctx, arch, pkgs, refresh)
	if err != nil {
		return nil, nil, fmt.Errorf("fetch Debian packages: %w", err)
	}
	info := &DebianInfo{}
	if info.DebBytes, err = debpkg.Sizes(debs); err != nil {
		return nil, nil, err
	}
	for _, d := range debs {
		v, err := debpkg.Version(ctx, d)
		if err != nil {
			return nil, nil, err
		}
		info.Packages = append(info.Packages, v)
	}
	root, err := os.MkdirTemp("", "pibackup-debs-")
	if err != nil {
		return nil, nil, fmt.Errorf("create extract dir: %w", err)
	}
	defer os.RemoveAll(root)
	if err := debpkg.Extract(ctx, debs, root); err != nil {
		return nil, nil, err
	}

	tools := debianTools()
	var bins []string
	for _, t := range tools {
		bins = append(bins, t.src)
	}
	clo, err := debpkg.Resolve(root, arch, bins)
	if err != nil {
		return nil, nil, err
	}
	info.Libs = clo.SonamesSorted()

	var recs []cpio.Record
	dirs := map[string]bool{}
	addDirs := func(p string) {
		var parents []string
		for d := path.Dir(p); d != "." && d != "/"; d = path.Dir(d) {
			parents = append(parents, d)
		}
		for i := len(parents) - 1; i >= 0; i-- {
			if !dirs[parents[i]] {
				dirs[parents[i]] = true
				recs = append(recs, cpio.Directory(parents[i], 0o755))
			}
		}
	}
	addFile := func(dst, src string, perm uint64) error {
		b, err := os.ReadFile(src)
		if err != nil {
			return fmt.Errorf("read %s: %w", src, err)
		}
		addDirs(dst)
		recs = append(recs, cpio.StaticRecord(b, cpio.Info{Name: dst, Mode: cpio.S_IFREG | perm}))
		return nil
	}
	for _, t := range tools {
		if err := addFile(t.dst, filepath.Join(root, t.src), 0o755); err != nil {
			return nil, nil, err
		}
		for _, l := range t.links {
			recs = append(recs, cpio.Symlink(path.Join(path.Dir(t.dst), l), path.Base(t.dst)))
		}
	}
	for dst, src := range debianFiles() {
		if err := addFile(dst, filepath.Join(root, src), 0o644); err != nil {
			return nil, nil, err
		}
	}
	// Every library goes under its soname as a plain file in the multiarch
	// directory that Debian's loader searches by default (no ld.so.cache needed).
	libDir := path.Join("lib", arch.Triplet)
	for _, soname := range clo.SonamesSorted() {
		if err := addFile(path.Join(libDir, soname), clo.Libs[soname], 0o755); err != nil {
			return nil, nil, err
		}
	}
	// The programs ask for the loader by absolute path (PT_INTERP), e.g.
	// /lib/ld-linux-aarch64.so.1 or /lib64/ld-linux-x86-64.so.2.
	interp := strings.TrimPrefix(clo.Interp, "/")
	target := path.Join(libDir, path.Base(interp))
	if interp != target {
		addDirs(interp)
		rel, err := filepath.Rel(path.Dir(interp), target)
		if err != nil {
			return nil, nil, fmt.Errorf("BUG: loader link: %w", err)
		}
		recs = append(recs, cpio.Symlink(interp, rel))
	}
	// Licences: the GPL programs and their libraries are redistributed, so
	// their copyright files travel with them.
	for _, p := range pkgs {
		src := filepath.Join(root, "usr/share/doc", p, "copyright")
		if _, err := os.Stat(src); err != nil {
			continue // e.g. a doc directory that is a symlink to another package's
		}
		if err := addFile(path.Join("usr/share/doc", p, "copyright"), src, 0o644); err != nil {
			return nil, nil, err
		}
	}
	// e2fsprogs refuse to change a file system when they cannot tell
	// whether it is mounted ("missing mtab file"); u-root has no /etc/mtab.
	recs = append(recs, cpio.Symlink("etc/mtab", "/proc/self/mounts"))
	manifest := "# Debian packages in this initramfs (name version)\n" + strings.Join(info.Packages, "\n") + "\n"
	addDirs("etc/pibackup-debian-packages.txt")
	recs = append(recs, cpio.StaticFile("etc/pibackup-debian-packages.txt", manifest, 0o644))
	return recs, info, nil
}
