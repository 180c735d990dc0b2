//go:build !race

package imagebuild

// The boot tests build real images (u-root initramfs with the recovery program
// and the Debian tools, gokrazy kernels and firmware), take kernel, initramfs
// and DTB out of the image's FAT the way the Pi firmware would (config.txt's
// kernel= and initramfs lines), boot them in QEMU under TCG and wait for the
// recovery program's RECOVERY-READY line on the serial console.
//
// On virt the kernel first runs the initramfs's selftest as rdinit, which
// proves that mke2fs, e2fsck, resize2fs, tune2fs, tar and rsync run with the
// packed libraries, and then execs u-root's init as usual.
//
// They need qemu-system-aarch64 (skipped without it unless
// PIBACKUP_TEST_REQUIRE lists qemu) and the network for the first Debian
// download; they take one to three minutes, mostly the u-root build.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pibackup/pibackup/internal/boardcfg"
	"github.com/pibackup/pibackup/internal/testfs"
)

const moduleRoot = "../.."

// recoveryPkg is the recovery program, or the stand-in while it is missing.
func recoveryPkg() string {
	if _, err := os.Stat(filepath.Join(moduleRoot, "recovery", "main.go")); err == nil {
		return "./recovery"
	}
	return "./initramfs/testdata/recovery"
}

func TestQEMUBoot(t *testing.T) {
	testfs.Require(t, "qemu")
	if testing.Short() {
		t.Skip("skipping QEMU boot test in -short mode")
	}
	// raspi4b needs QEMU >= 9; make deps installs 10.
	if err := testfs.CheckQEMU("qemu-system-aarch64"); err != nil {
		t.Fatal(err)
	}
	root, err := filepath.Abs(moduleRoot)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	log := slog.New(slog.NewTextHandler(testWriter{t}, nil))
	ctx := context.Background()

	// One arm64 initramfs for both boards, as the Makefile would share it.
	virt, err := Build(ctx, Spec{
		ModuleDir: root, BoardDir: filepath.Join(root, "board-configs"), Board: "qemu-virt-arm64",
		Out: filepath.Join(out, "recovery-qemu-virt-arm64.img"), Recovery: recoveryPkg(), Check: true, Log: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("virt image: %d bytes, initramfs %d bytes (cpio %d), initramfs build %s",
		virt.Layout.Size(), virt.Initramfs.CompressedBytes, virt.Initramfs.CpioBytes, virt.Initramfs.Duration.Round(time.Second))

	// arm64Image builds board's image around the virt initramfs.
	arm64Image := func(t *testing.T, board string) *Report {
		t.Helper()
		r, err := Build(ctx, Spec{
			ModuleDir: root, BoardDir: filepath.Join(root, "board-configs"), Board: board,
			Out: filepath.Join(out, "recovery-"+board+".img"), Initramfs: virt.InitramfsFile, Check: true, Log: log,
		})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	checkSize(t, "qemu-virt-arm64", virt)
	pi3 := arm64Image(t, "pi3")
	checkSize(t, "pi3", pi3)

	t.Run("virt", func(t *testing.T) {
		bootImage(t, virt.Image, "qemu-virt-arm64", 90*time.Second,
			[]string{"rdinit=/bbin/selftest"},
			regexp.MustCompile(`SELFTEST DONE ok=\d+ fail=0`), regexp.MustCompile(`RECOVERY-READY \S+`))
	})
	t.Run("raspi3b", func(t *testing.T) {
		bootImage(t, pi3.Image, "pi3", 180*time.Second, nil, regexp.MustCompile(`RECOVERY-READY \S+`))
	})
	t.Run("raspi4b", func(t *testing.T) {
		pi4 := arm64Image(t, "pi4")
		checkSize(t, "pi4", pi4)
		bootImage(t, pi4.Image, "pi4", 180*time.Second, nil, regexp.MustCompile(`RECOVERY-READY \S+`))
	})
	// rpi-arm64 stores the kernel gzip-compressed. QEMU unpacks the kernel
	// itself, so this proves the gzip file is a bootable Image, not that the
	// Pi firmware unpacks it (that needs hardware).
	t.Run("rpi-arm64", func(t *testing.T) {
		all := arm64Image(t, "rpi-arm64")
		checkSize(t, "rpi-arm64", all)
		t.Run("raspi3b", func(t *testing.T) {
			bootImage(t, all.Image, "rpi-arm64", 180*time.Second, nil, regexp.MustCompile(`RECOVERY-READY \S+`))
		})
		// The same card in a Pi 4: rpi-arm64's [qemu] is the Pi 3, so boot
		// it on pi4's machine, DTB and console (the firmware would pick
		// bcm2711-rpi-4-b.dtb from the same FAT).
		t.Run("raspi4b", func(t *testing.T) {
			b := loadBoard(t, "rpi-arm64")
			b.QEMU = loadBoard(t, "pi4").QEMU
			bootBoard(t, all.Image, b, 180*time.Second, nil, regexp.MustCompile(`RECOVERY-READY \S+`))
		})
	})
	t.Run("x86_64", func(t *testing.T) {
		if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
			t.Skip("qemu-system-x86_64 not installed (apt-get install qemu-system-x86); qemu-x86_64 is a low-priority board")
		}
		x86, err := Build(ctx, Spec{
			ModuleDir: root, BoardDir: filepath.Join(root, "board-configs"), Board: "qemu-x86_64",
			Out: filepath.Join(out, "recovery-qemu-x86_64.img"), Recovery: recoveryPkg(), Check: true, Log: log,
		})
		if err != nil {
			t.Fatal(err)
		}
		checkSize(t, "qemu-x86_64", x86)
		bootImage(t, x86.Image, "qemu-x86_64", 120*time.Second, []string{"rdinit=/bbin/selftest"},
			regexp.MustCompile(`SELFTEST DONE ok=\d+ fail=0`), regexp.MustCompile(`RECOVERY-READY \S+`))
	})
}

// maxImage is the most a recovery image may take (issue 20): it must fit
// the smallest cards and downloads people make of it.
const maxImage = 64 * mib

// checkSize fails when board's image, as built, is over maxImage. Both the
// layout and the file are checked: the file is what a person downloads.
func checkSize(t *testing.T, board string, r *Report) {
	t.Helper()
	size := r.Layout.Size()
	if fi, err := os.Stat(r.Image); err != nil {
		t.Errorf("%s image: %v", board, err)
	} else if fi.Size() > size {
		size = fi.Size()
	}
	t.Logf("%s image: %d bytes (%.1f MiB)", board, size, float64(size)/mib)
	if size > maxImage {
		t.Errorf("%s image is %.1f MiB, want at most %d MiB", board, float64(size)/mib, maxImage/mib)
	}
}

// bootImage boots img on board's QEMU machine and waits until every pattern
// has appeared on the console, in order.
func bootImage(t *testing.T, img, board string, deadline time.Duration, appendArgs []string, want ...*regexp.Regexp) {
	bootBoard(t, img, loadBoard(t, board), deadline, appendArgs, want...)
}

func loadBoard(t *testing.T, board string) *boardcfg.Board {
	t.Helper()
	b, err := boardcfg.Load(filepath.Join(moduleRoot, "board-configs"), board)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// bootBoard is bootImage with the board given, so a test can boot an image
// on another board's [qemu] machine.
func bootBoard(t *testing.T, img string, b *boardcfg.Board, deadline time.Duration, appendArgs []string, want ...*regexp.Regexp) {
	dir := t.TempDir()
	bs, err := ExtractBoot(img, dir, b.QEMU.DTB)
	if err != nil {
		t.Fatal(err)
	}
	args, err := QEMUArgs(b, bs, appendArgs...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath(args[0]); err != nil {
		testfs.Require(t, "qemu") // fails or skips with the package name
		t.Skipf("%s not installed", args[0])
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	logPath := filepath.Join(dir, "serial.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	pr, pw := io.Pipe()
	cmd.Stdout = pw
	cmd.Stderr = pw
	cmd.Stdin = nil
	t.Logf("%s", strings.Join(args, " "))
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	found := make(chan time.Duration, len(want))
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(pr)
		next := 0
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logFile, line)
			if next < len(want) && want[next].MatchString(line) {
				found <- time.Since(start)
				t.Logf("%6.1fs %s", time.Since(start).Seconds(), strings.TrimSpace(line))
				next++
			}
		}
	}()
	failed := false
	for i := range want {
		select {
		case d := <-found:
			if i == len(want)-1 {
				t.Logf("boot to %q: %.1f s wall", want[i], d.Seconds())
			}
		case <-ctx.Done():
			t.Errorf("no %q on the console within %s", want[i], deadline)
			failed = true
		}
		if failed {
			break
		}
	}
	// The recovery program powers off (QEMU exits with -no-reboot); a
	// stand-in may not, so end QEMU after a grace period either way.
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	select {
	case err := <-waitErr:
		t.Logf("QEMU exited after %.1f s: %v", time.Since(start).Seconds(), err)
	case <-time.After(20 * time.Second):
		cancel()
		<-waitErr
		t.Logf("QEMU killed after %.1f s", time.Since(start).Seconds())
	}
	pw.Close()
	wg.Wait()
	if failed || t.Failed() {
		log, _ := os.ReadFile(logPath)
		t.Logf("serial log %s:\n%s", logPath, log)
	}
}

// testWriter sends slog output to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
