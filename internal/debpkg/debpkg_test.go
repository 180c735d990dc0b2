package debpkg

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestArchFor(t *testing.T) {
	for goarch, want := range map[string]Arch{
		"arm64": {"arm64", "aarch64-linux-gnu"},
		"amd64": {"amd64", "x86_64-linux-gnu"},
	} {
		if got, err := ArchFor(goarch); err != nil || got != want {
			t.Errorf("ArchFor(%q) = %+v, %v; want %+v", goarch, got, err, want)
		}
	}
	if _, err := ArchFor("riscv64"); err == nil {
		t.Error("ArchFor(riscv64) = nil error")
	}
}

func TestFindDebs(t *testing.T) {
	dir := t.TempDir()
	arch := Arch{Debian: "arm64"}
	for _, f := range []string{"tar_1.34_arm64.deb", "tzdata_2025a_all.deb", "rsync_3.2_amd64.deb"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := findDebs(dir, arch, []string{"tar", "tzdata"})
	if err != nil || len(got) != 2 || filepath.Base(got[0]) != "tar_1.34_arm64.deb" {
		t.Errorf("findDebs() = %v, %v", got, err)
	}
	// An amd64 package does not satisfy an arm64 request.
	if _, err := findDebs(dir, arch, []string{"rsync"}); err == nil || !strings.Contains(err.Error(), "rsync") {
		t.Errorf("findDebs(rsync) = %v, want rsync missing", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tar_1.35_arm64.deb"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := findDebs(dir, arch, []string{"tar"}); err == nil || !strings.Contains(err.Error(), "several versions") {
		t.Errorf("findDebs() with two versions = %v, want an error", err)
	}
}

// TestResolveHost resolves the libraries of the host's own tar and rsync: the
// same walk the build does on the extracted arm64 packages.
func TestResolveHost(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("needs a Debian amd64 host")
	}
	arch, _ := ArchFor("amd64")
	var bins []string
	for _, b := range []string{"usr/bin/tar", "usr/sbin/mke2fs", "usr/bin/rsync"} {
		if _, err := os.Stat("/" + b); err == nil {
			bins = append(bins, b)
		}
	}
	if _, err := os.Stat("/lib/" + arch.Triplet + "/libc.so.6"); err != nil || len(bins) == 0 {
		t.Skip("not a Debian-style multiarch host")
	}
	c, err := Resolve("/", arch, bins)
	if err != nil {
		t.Fatal(err)
	}
	if c.Interp != "/lib64/ld-linux-x86-64.so.2" {
		t.Errorf("Interp = %q", c.Interp)
	}
	for _, so := range []string{"libc.so.6", "ld-linux-x86-64.so.2"} {
		if _, ok := c.Libs[so]; !ok {
			t.Errorf("Libs has no %s: %v", so, c.SonamesSorted())
		}
	}
	// A tree without the libraries must fail, naming the missing one.
	root := t.TempDir()
	b, err := os.ReadFile("/" + bins[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "usr/bin/prog"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Resolve(root, arch, []string{"usr/bin/prog"}); err == nil {
		t.Error("Resolve() in an empty tree = nil error")
	}
}
