//go:build !race

package qemutests

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/pibackup/pibackup/internal/imagebuild"
	"github.com/pibackup/pibackup/internal/testfs"
)

// artifacts are built once per test binary: the recovery image for the
// qemu-virt-arm64 board (exactly what `make image` writes), its kernel,
// initramfs and cmdline taken out of its FAT as the firmware would, the
// host backupctl, and the arm64 init the fixture disk boots into.
type artifacts struct {
	dir       string
	image     string
	boot      *imagebuild.BootSet
	backupctl string
	marker    string

	x86Once sync.Once
	x86     *x86Artifacts
	x86Err  error
}

var (
	artOnce sync.Once
	art     *artifacts
	artErr  error
)

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", err
	}
	return filepath.Dir(strings.TrimSpace(string(out))), nil
}

// artifactVersion is the release version the test image is built with.
const artifactVersion = "v0.0.0-qemu-test"

func buildArtifacts() (*artifacts, error) {
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "qemu-tests-")
	if err != nil {
		return nil, err
	}
	a := &artifacts{dir: dir, image: filepath.Join(dir, "recovery-qemu-virt-arm64.img"),
		backupctl: filepath.Join(dir, "backupctl"), marker: filepath.Join(dir, "pibackup-init")}
	steps := [][]string{
		{"go", "run", "./buildimage", "-board", "qemu-virt-arm64", "-version", artifactVersion, "-o", a.image},
		{"go", "build", "-o", a.backupctl, "./backupctl"},
	}
	for _, s := range steps {
		cmd := exec.Command(s[0], s[1:]...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("%s: %w\n%s", strings.Join(s, " "), err, out)
		}
	}
	cmd := exec.Command("go", "build", "-trimpath", "-o", a.marker, "./qemu-tests/markerinit")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOARCH=arm64", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build markerinit: %w\n%s", err, out)
	}
	if a.boot, err = imagebuild.ExtractBoot(a.image, dir, ""); err != nil {
		return nil, fmt.Errorf("take kernel and initramfs out of the image: %w", err)
	}
	return a, nil
}

// x86Artifacts is the qemu-x86_64 recovery image and its boot files,
// built on first use: only the PC case needs them.
type x86Artifacts struct {
	image string
	boot  *imagebuild.BootSet
}

// requireX86 builds the qemu-x86_64 image into a's folder once per test
// binary (its amd64 initramfs is a u-root build of its own).
func requireX86(t *testing.T, a *artifacts) *x86Artifacts {
	t.Helper()
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		testfs.Require(t, "qemu") // names the package when required
		t.Fatalf("qemu-system-x86_64 missing: %v (make deps installs qemu-system-x86)", err)
	}
	a.x86Once.Do(func() {
		a.x86, a.x86Err = buildX86(a.dir)
	})
	if a.x86Err != nil {
		t.Fatal(a.x86Err)
	}
	return a.x86
}

func buildX86(dir string) (*x86Artifacts, error) {
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	x := &x86Artifacts{image: filepath.Join(dir, "recovery-qemu-x86_64.img")}
	cmd := exec.Command("go", "run", "./buildimage", "-board", "qemu-x86_64", "-version", artifactVersion, "-o", x.image)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build the qemu-x86_64 image: %w\n%s", err, out)
	}
	bootDir := filepath.Join(dir, "x86_64")
	if err := os.Mkdir(bootDir, 0o755); err != nil {
		return nil, err
	}
	if x.boot, err = imagebuild.ExtractBoot(x.image, bootDir, ""); err != nil {
		return nil, fmt.Errorf("take kernel and initramfs out of the x86_64 image: %w", err)
	}
	return x, nil
}

func requireArtifacts(t *testing.T) *artifacts {
	t.Helper()
	testfs.Require(t, "qemu")
	testfs.Require(t, "pidisk")
	if testing.Short() {
		t.Skip("QEMU tests take minutes; not in -short")
	}
	artOnce.Do(func() { art, artErr = buildArtifacts() })
	if artErr != nil {
		t.Fatal(artErr)
	}
	return art
}

// checkQEMU fails the whole package on a QEMU older than the tests are
// written for (CI must not pass on bookworm's 7.2). A missing QEMU is left
// to testfs.Require in each test, which skips or fails by
// PIBACKUP_TEST_REQUIRE.
func checkQEMU() error {
	if testing.Short() {
		return nil
	}
	bin, err := exec.LookPath("qemu-system-aarch64")
	if err != nil {
		return nil
	}
	return testfs.CheckQEMU(bin)
}

func TestMain(m *testing.M) {
	flag.Parse()
	if err := checkQEMU(); err != nil {
		fmt.Fprintln(os.Stderr, "qemu-tests:", err)
		os.Exit(1)
	}
	code := m.Run()
	if art != nil {
		os.RemoveAll(art.dir)
	}
	os.Exit(code)
}

// fixture builds the source disk: testfs's Pi disk whose root also holds
// markerinit as /usr/sbin/pibackup-init, named by cmdline.txt's init=, so a
// restored copy proves it boots by printing the marker.
func fixture(t *testing.T, a *artifacts, dir string) *testfs.PiDisk {
	t.Helper()
	d, err := testfs.BuildPiDisk(dir, testfs.DiskOptions{Hostname: "pi-under-test"})
	if err != nil {
		t.Fatal(err)
	}
	dev := testfs.AttachLoop(t, d.Path, d.RootStart, d.RootSize, false)
	mnt := t.TempDir()
	run(t, "mount", dev, mnt)
	mounted := true
	t.Cleanup(func() {
		if mounted {
			exec.Command("umount", mnt).Run()
		}
	})
	run(t, "install", "-m", "0755", "-o", "0", "-g", "0", a.marker, filepath.Join(mnt, "usr", "sbin", "pibackup-init"))
	// Give the new file and its folder a time in the past, as on a real
	// card. rsync does not set a folder's mtime when it differs from the
	// folder's creation time by less than a second (its mtime comparison
	// is to the second), so a folder changed in the very second of the
	// backup would come back with the backup's time.
	run(t, "touch", "-d", "2024-03-14T15:09:26.123456789Z", filepath.Join(mnt, "usr", "sbin", "pibackup-init"), filepath.Join(mnt, "usr", "sbin"))
	run(t, "umount", mnt)
	mounted = false
	cmdline := strings.TrimSpace(d.Cmdline) + " init=/usr/sbin/pibackup-init\n"
	f := filepath.Join(dir, "cmdline.txt")
	if err := os.WriteFile(f, []byte(cmdline), 0o644); err != nil {
		t.Fatal(err)
	}
	mtools(t, "mcopy", "-o", "-i", fmt.Sprintf("%s@@%d", d.Path, d.BootStart), f, "::/cmdline.txt")
	d.Cmdline = cmdline
	if err := d.Fsck(); err != nil {
		t.Fatal(err)
	}
	return d
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.CommandContext(context.Background(), name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func mtools(t *testing.T, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}
