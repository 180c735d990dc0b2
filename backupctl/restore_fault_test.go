package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/disklayout"
	"github.com/pibackup/pibackup/internal/testfs"
)

// syncBuffer is a buffer a reader goroutine fills while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) add(line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.WriteString(line + "\n")
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startRestoreBin starts `backupctl restore` in its own process group,
// with env added to the test's environment, and collects its stderr, where
// the phases appear as "<phase>..." lines.
func startRestoreBin(t *testing.T, env []string, args ...string) (*exec.Cmd, *syncBuffer, <-chan struct{}) {
	t.Helper()
	cmd := exec.Command(faultBinary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stdout = io.Discard
	pr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	out := &syncBuffer{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			out.add(sc.Text())
		}
	}()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		cmd.Wait()
	})
	return cmd, out, done
}

// heldE2fsck is a folder with an e2fsck that, once armed, says it has
// started and then waits for the test's go-ahead before it runs the real
// one: the root filesystem check of a restore reads nothing a gate could
// hold.
type heldE2fsck struct {
	bin, started, goOn string
}

func e2fsckShim(t *testing.T) *heldE2fsck {
	t.Helper()
	real, err := exec.LookPath("e2fsck")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	h := &heldE2fsck{bin: filepath.Join(dir, "bin"), started: filepath.Join(dir, "started"), goOn: filepath.Join(dir, "go-on")}
	if err := os.Mkdir(h.bin, 0o755); err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf("#!/bin/sh\n: > %s\nwhile [ ! -e %s ]; do sleep 0.05; done\nexec %s \"$@\"\n", h.started, h.goOn, real)
	if err := os.WriteFile(filepath.Join(h.bin, "e2fsck"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return h
}

// arm resets the shim and returns the environment that puts it first.
func (h *heldE2fsck) arm(t *testing.T) []string {
	os.Remove(h.started)
	os.Remove(h.goOn)
	return []string{"PATH=" + h.bin + ":" + os.Getenv("PATH")}
}

// waitStarted waits until the shim runs, or the restore ended first.
func (h *heldE2fsck) waitStarted(done <-chan struct{}) error {
	for {
		if _, err := os.Stat(h.started); err == nil {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("the restore ended before it ran e2fsck")
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func (h *heldE2fsck) release() { os.WriteFile(h.goOn, nil, 0o644) }

// noTable fails unless the target has no partition table (an interrupted
// restore must not leave a disk that looks restored).
func noTable(t *testing.T, target string) {
	t.Helper()
	if d, err := disklayout.ReadFile(target); err == nil {
		t.Errorf("the interrupted restore left a partition table on %s: %+v", target, d.Partitions)
	}
	if out, err := exec.Command("sfdisk", "--dump", target).CombinedOutput(); err == nil {
		t.Errorf("sfdisk reads a partition table on %s after an interrupted restore:\n%s", target, out)
	}
}

// cleanRestoreLeftovers unmounts and detaches what a killed restore left
// attached to img (partition loop devices stacked on the target loop
// device), and reports it.
func cleanRestoreLeftovers(t *testing.T, targetDev string) []string {
	t.Helper()
	var left []string
	out, _ := exec.Command("losetup", "-j", targetDev).Output()
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		dev, _, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		left = append(left, dev)
		mi, _ := os.ReadFile("/proc/self/mountinfo")
		for _, m := range strings.Split(string(mi), "\n") {
			f := strings.Fields(m)
			if len(f) > 9 && f[len(f)-2] == dev {
				left = append(left, "mounted at "+f[4])
				syscall.Unmount(f[4], syscall.MNT_DETACH)
			}
		}
		exec.Command("losetup", "-d", dev).Run()
	}
	return left
}

// TestRestoreFaultSignals interrupts restores onto a loop disk with
// SIGTERM and SIGKILL in each phase: writing the boot partition,
// extracting the root filesystem, checking it (tgz set), and writing an
// image (dd set). Every interrupted restore must leave the target without
// a partition table; SIGTERM must end with exit 130 and say the target
// is incomplete; after SIGKILL the next restore onto the same disk must
// work.
func TestRestoreFaultSignals(t *testing.T) {
	d := fixture(t)
	faultBinary(t)
	backups := t.TempDir()
	tgz := backupOK(t, backups, "--source-disk", d.Path, "-t", "tgz")
	dd := backupOK(t, backups, "--source-disk", d.Path, "-t", "ddz", "-z", "zstd")
	img := filepath.Join(t.TempDir(), "target.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Truncate(img, 320<<20)
	dev := testfs.AttachLoop(t, img, 0, 0, false)

	type tc struct {
		set, phase string
		sig        syscall.Signal
	}
	var cases []tc
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		for _, ph := range []string{"boot partition", "root filesystem", "check root filesystem"} {
			cases = append(cases, tc{tgz, ph, sig})
		}
		cases = append(cases, tc{dd, "write image", sig})
	}
	// The signal must land in the phase, on any machine: the sets are
	// read through gates that hold the first read after the phase began
	// (boot image, archive, image), and the root filesystem check, which
	// reads no set, runs an e2fsck that waits until the test lets it go.
	gated := t.TempDir()
	gates := map[string]*testfs.Gate{}
	for _, set := range []string{tgz, dd} {
		es, err := os.ReadDir(set)
		if err != nil {
			t.Fatal(err)
		}
		var files []string
		for _, e := range es {
			files = append(files, filepath.Join(set, e.Name()))
		}
		gates[set] = testfs.NewGate(t, filepath.Join(gated, "testpi", filepath.Base(set)), files...)
	}
	shim := e2fsckShim(t)

	for _, c := range cases {
		t.Run(fmt.Sprintf("%s/%s/%s", backupsetType(c.set), strings.ReplaceAll(c.phase, " ", "-"), c.sig), func(t *testing.T) {
			// A good restore first, so the target has a table to lose.
			if code, out, errOut := cli(context.Background(), "restore", "--yes", tgz, "--to", dev); code != 0 {
				t.Fatalf("restore: exit %d\n%s\n%s", code, out, errOut)
			}
			gate := gates[c.set]
			var env []string
			// The gate asks from its own goroutines, maybe before
			// startRestoreBin has returned the output.
			var outp atomic.Pointer[syncBuffer]
			inPhase := func() bool {
				out := outp.Load()
				return out != nil && strings.Contains("\n"+out.String(), "\n"+c.phase+"...\n")
			}
			if c.phase == "check root filesystem" {
				env = shim.arm(t)
			} else {
				gate.Hold(func(string) bool { return inPhase() })
			}
			cmd, out, done := startRestoreBin(t, env, "restore", "--yes", gate.Dir, "--to", dev)
			outp.Store(out)
			var err error
			if env != nil {
				err = shim.waitStarted(done)
			} else {
				err = gate.WaitHeld(done, 2*time.Minute)
			}
			if err != nil || !inPhase() {
				gate.Release()
				shim.release()
				<-done
				cmd.Wait()
				t.Fatalf("phase %q not held (%v):\n%s", c.phase, err, out)
			}
			signalBin(cmd, c.sig)
			// Held readers sleep in the kernel, the held e2fsck in its
			// loop; let them go so the signal can take effect.
			gate.Release()
			shim.release()
			<-done
			cmd.Wait()
			code := cmd.ProcessState.ExitCode()
			msg := strings.TrimSpace(out.String())
			t.Logf("exit %d (%v): %s", code, cmd.ProcessState, msg[strings.LastIndex(msg, "\n")+1:])
			if c.sig == syscall.SIGTERM && (code != exitCancelled || !strings.Contains(msg, "incomplete")) {
				t.Errorf("SIGTERM in %s: exit %d; want %d and a line saying the target is incomplete:\n%s", c.phase, code, exitCancelled, msg)
			}
			if left := cleanRestoreLeftovers(t, dev); len(left) > 0 {
				if c.sig == syscall.SIGTERM {
					t.Errorf("SIGTERM left loop devices or mounts: %q", left)
				} else {
					t.Logf("SIGKILL left (cleaned up by the test): %q", left)
				}
			}
			noTable(t, dev)
		})
	}
	// After all that, a restore onto the same disk works and is judged
	// by CompareDisks against the source.
	if code, out, errOut := cli(context.Background(), "restore", "--yes", tgz, "--to", dev); code != 0 {
		t.Fatalf("final restore: exit %d\n%s\n%s", code, out, errOut)
	}
	rep, err := testfs.CompareDisks(d.Path, dev)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("final restore: %+v", rep.OK())
}

func backupsetType(set string) string {
	n, err := backupset.Parse(filepath.Base(set))
	if err != nil {
		return "?"
	}
	return string(n.Type)
}

// TestRestoreFaultCorrupt damages sets in the ways storage does (a
// truncated gzip or zstd stream, a flipped byte in a plain tar or raw
// image, a truncated manifest, a payload the manifest lists but that is
// gone) and checks both readers: verify must fail with exit 4 naming the
// file; restore must fail too, either before writing (exit 3) or leaving
// a target without a partition table, never exit 0 with a damaged copy.
func TestRestoreFaultCorrupt(t *testing.T) {
	d := fixture(t)
	backups := t.TempDir()
	sets := map[string]string{}
	for _, typ := range [][]string{{"-t", "tgz"}, {"-t", "tar", "-z", "zstd"}, {"-t", "tar"}, {"-t", "dd"}, {"-t", "ddz"}} {
		sets[strings.Join(typ, " ")] = backupOK(t, backups, append([]string{"--source-disk", d.Path}, typ...)...)
	}
	payloadOf := func(set string) string {
		m := readManifestOnly(t, set)
		for _, f := range m.Files {
			if strings.HasPrefix(f.Path, filepath.Base(set)) {
				return filepath.Join(set, f.Path)
			}
		}
		t.Fatalf("no payload in %s", set)
		return ""
	}
	truncateHalf := func(t *testing.T, p string) {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(p, fi.Size()/2); err != nil {
			t.Fatal(err)
		}
	}
	flipMiddle := func(t *testing.T, p string) {
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		fi, _ := f.Stat()
		// Flip a byte in the first non-zero 4 KiB block after the middle,
		// so the damage is in data, not in a hole of a sparse image.
		buf := make([]byte, 4096)
		for off := fi.Size() / 2 / 4096 * 4096; off < fi.Size(); off += 4096 {
			n, _ := f.ReadAt(buf, off)
			for i := 0; i < n; i++ {
				if buf[i] != 0 {
					f.WriteAt([]byte{buf[i] ^ 0x20}, off+int64(i))
					return
				}
			}
		}
		t.Fatalf("no data after the middle of %s", p)
	}
	cases := []struct {
		name, set string
		damage    func(t *testing.T, set string)
	}{
		{"gzip-truncated", "-t tgz", func(t *testing.T, s string) { truncateHalf(t, payloadOf(s)) }},
		{"zstd-flipped", "-t tar -z zstd", func(t *testing.T, s string) { flipMiddle(t, payloadOf(s)) }},
		{"tar-flipped", "-t tar", func(t *testing.T, s string) { flipMiddle(t, payloadOf(s)) }},
		{"tar-truncated", "-t tar", func(t *testing.T, s string) { truncateHalf(t, payloadOf(s)) }},
		{"image-flipped", "-t dd", func(t *testing.T, s string) { flipMiddle(t, payloadOf(s)) }},
		{"gzip-image-truncated", "-t ddz", func(t *testing.T, s string) { truncateHalf(t, payloadOf(s)) }},
		{"manifest-truncated", "-t tgz", func(t *testing.T, s string) { truncateHalf(t, testfs.ManifestPath(t, s)) }},
		{"listed-file-missing", "-t tgz", func(t *testing.T, s string) {
			if err := os.Remove(filepath.Join(s, "testpi-backup.img")); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "testpi")
			os.MkdirAll(dir, 0o755)
			set := filepath.Join(dir, filepath.Base(sets[c.set]))
			runTool(t, "cp", "-a", "--sparse=always", sets[c.set], set)
			c.damage(t, set)

			code, out, errOut := cli(context.Background(), "verify", set)
			t.Logf("verify: exit %d: %s", code, lastLine(out+errOut))
			if code != exitVerify {
				t.Errorf("verify of a damaged set: exit %d; want %d\n%s%s", code, exitVerify, out, errOut)
			}

			img := filepath.Join(t.TempDir(), "t.img")
			code, _, errOut = cli(context.Background(), "restore", "--yes", set, "--to", img, "--size", "320M")
			t.Logf("restore: exit %d: %s", code, lastLine(errOut))
			switch {
			case code == 0:
				t.Errorf("BUG: restore of a damaged set (%s) succeeded: the copy holds the damage and nobody is told", c.name)
			case code == exitPreflight:
				if _, err := os.Stat(img); err == nil {
					t.Errorf("restore refused before writing but created %s", img)
				}
			default:
				if !strings.Contains(errOut, "incomplete") {
					t.Errorf("a restore that failed after writing does not say the target is incomplete: %s", errOut)
				}
				noTable(t, img)
			}
		})
	}
}

// readManifestOnly reads a set's manifest without checking the files.
func readManifestOnly(t *testing.T, set string) *backupset.Manifest {
	t.Helper()
	f, err := os.Open(testfs.ManifestPath(t, set))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := backupset.ReadManifest(f)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
