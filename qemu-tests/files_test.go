//go:build !race

package qemutests

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/vt"
	"golang.org/x/sys/unix"

	"github.com/pibackup/pibackup/internal/testfs"
)

// TestFilesSerial is "Get files back" on the serial console: an rsync set
// on the USB disk is opened in the guest (setfs over the guest kernel's
// FUSE), /home/pi/notes.txt (owned 1000:1000, with user xattrs) is
// marked and copied onto the ext4 partition of a second disk, and the
// host finds it there under pibackup-files/<set>/ with the source's
// content, owner, mode, mtime and xattrs.
func TestFilesSerial(t *testing.T) {
	a := requireArtifacts(t)
	start := time.Now()
	c := stageCase(t, a, usbSource(t), "rsync", nil)
	dest := filesDisk(t, c.work)
	t.Logf("fixture and backup: %s", time.Since(start).Round(time.Second))

	cfg := VMConfig{Arch: "arm64", Kernel: a.boot.Kernel, Initrd: a.boot.Initramfs,
		LogPath: filepath.Join(c.work, "recovery-console.log"),
		Append:  a.boot.Cmdline, // the interactive UI
		Drives:  append([]Drive{{Path: c.rec}, {Path: dest}}, c.drives...)}
	ctx, cancel := context.WithTimeout(context.Background(), uiBootDeadline+restoreDeadline)
	defer cancel()
	vm, s, boot := bootConsoleUI(ctx, t, cfg)
	set := filesThroughUI(t, s, keyTab)
	if err := vm.Wait(90 * time.Second); err != nil {
		t.Fatalf("recovery did not power off: %v\n%s", err, s.dump())
	}
	t.Logf("guest: %s from boot to power-off", time.Since(boot).Round(time.Second))

	src := t.TempDir()
	testfs.MountExt4(t, testfs.AttachLoop(t, c.fx.Path, c.fx.RootStart, c.fx.RootSize, true), src, true)
	got := t.TempDir()
	testfs.MountExt4(t, testfs.AttachLoop(t, dest, filesPartStart, filesPartSize, true), got, true)
	copied := filepath.Join(got, "pibackup-files", set)
	sameFile(t, filepath.Join(src, testfs.PathNotes), filepath.Join(copied, testfs.PathNotes))
	if _, err := os.Lstat(filepath.Join(copied, testfs.PathRandom)); err == nil {
		t.Errorf("%s was copied but not marked", testfs.PathRandom)
	}
	t.Logf("total: %s", time.Since(start).Round(time.Second))
}

// The files disk: one ext4 partition (label FILES) from 1 MiB on.
const (
	filesPartStart = 1 << 20
	filesPartSize  = 63 << 20
)

// filesDisk makes the disk the files are copied onto: an MBR with one
// Linux partition holding an empty ext4, made on the image file itself
// (mkfs at an offset), so no loop device caches its blocks while the
// guest writes them.
func filesDisk(t *testing.T, work string) string {
	t.Helper()
	img := filepath.Join(work, "files.img")
	mkImage(t, img, filesPartStart+filesPartSize)
	cmd := exec.Command("sfdisk", "-q", img)
	cmd.Stdin = strings.NewReader("label: dos\nstart=2048, type=83\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	run(t, "mkfs.ext4", "-q", "-F", "-b", "4096", "-L", "FILES", "-E", "offset="+strconv.Itoa(filesPartStart), img, strconv.Itoa(filesPartSize/4096))
	return img
}

// filesThroughUI walks "Get files back" from the home screen: the newest
// set on the USB disk, /home/pi/notes.txt marked, copied onto /dev/vdb1;
// then powers off. It returns the set's name.
func filesThroughUI(t *testing.T, s *screen, next vt.KeyPressEvent) string {
	t.Helper()
	step := func(name string) { t.Logf("%s: %s", s.name, name) }
	step("home")
	s.wait(t, regexp.MustCompile(`Get files back`), uiBootDeadline)
	// The item's shortcut, not Tab down the menu: once in CI an Enter
	// after Tabs landed on "Show log", one item further.
	s.send(t, "f")

	step("source: the USB disk")
	s.wait(t, regexp.MustCompile(`Where are the backups\?(?s:.*)PIBACKUPS`), uiStepDeadline)
	s.choose(t, next, regexp.MustCompile(`^/dev/\S+\s+ext4\s.*\sPIBACKUPS$`), uiStepDeadline)
	s.press(t, keyEnter)

	step("sets: the newest")
	s.wait(t, regexp.MustCompile(`Backups in `), uiStepDeadline)
	s.choose(t, next, regexp.MustCompile(`pi-under-test .*manifest`), uiStepDeadline)
	s.press(t, keyEnter)

	step("files: / → home/ → pi/ → notes.txt")
	m := s.wait(t, regexp.MustCompile(`/ in (pi-under-test@[\w.@-]+)`), uiStepDeadline)
	set := m[1]
	for _, dir := range []string{"home/", "pi/"} {
		s.choose(t, next, regexp.MustCompile(`\[ \] `+regexp.QuoteMeta(dir)), uiStepDeadline)
		s.press(t, keyEnter)
		s.wait(t, regexp.MustCompile(regexp.QuoteMeta(strings.TrimSuffix(dir, "/"))+` in `), uiStepDeadline)
	}
	s.choose(t, next, regexp.MustCompile(`\[ \] notes\.txt\s`), uiStepDeadline)
	s.send(t, " ")
	s.wait(t, regexp.MustCompile(`1 marked`), uiStepDeadline)
	s.send(t, "c")

	step("destination: /dev/vdb1")
	s.wait(t, regexp.MustCompile(`Copy 1 marked to(?s:.*)/dev/vdb1`), uiStepDeadline)
	s.choose(t, next, regexp.MustCompile(`/dev/vdb1\s+ext4`), uiStepDeadline)
	s.press(t, keyEnter)
	m = s.wait(t, regexp.MustCompile(`Copy complete|Copy FAILED`), restoreDeadline)
	if m[0] != "Copy complete" {
		t.Fatalf("the copy failed on screen\n%s", s.dump())
	}
	// The folder's name wraps onto the next row; the host checks it.
	s.wait(t, regexp.MustCompile(`copied to /dev/vdb1:/pibackup-files/`), uiStepDeadline)
	t.Logf("%s: result:\n%s", s.name, s.Text())

	step("power off")
	s.choose(t, next, regexp.MustCompile(`Power off`), uiStepDeadline)
	s.press(t, keyEnter)
	return set
}

// sameFile compares one file's bytes, owner, mode, mtime and xattrs.
func sameFile(t *testing.T, want, got string) {
	t.Helper()
	var sw, sg unix.Stat_t
	if err := unix.Lstat(want, &sw); err != nil {
		t.Fatal(err)
	}
	if err := unix.Lstat(got, &sg); err != nil {
		t.Fatalf("the copied file: %v", err)
	}
	if sw.Mode != sg.Mode || sw.Uid != sg.Uid || sw.Gid != sg.Gid || sw.Mtim != sg.Mtim {
		t.Errorf("%s: mode %o, %d:%d, mtime %v; want %o, %d:%d, %v", got, sg.Mode, sg.Uid, sg.Gid, sg.Mtim, sw.Mode, sw.Uid, sw.Gid, sw.Mtim)
	}
	bw, _ := os.ReadFile(want)
	bg, err := os.ReadFile(got)
	if err != nil || !bytes.Equal(bw, bg) {
		t.Errorf("%s: content %q (%v), want %q", got, bg, err, bw)
	}
	for _, x := range []string{"user.comment", "user.big"} {
		xw, xg := make([]byte, 4096), make([]byte, 4096)
		nw, errw := unix.Lgetxattr(want, x, xw)
		ng, errg := unix.Lgetxattr(got, x, xg)
		if errw != nil || errg != nil || !bytes.Equal(xw[:nw], xg[:ng]) {
			t.Errorf("%s: xattr %s differs (%v, %v)", got, x, errg, errw)
		}
	}
}

// send types text (keys that are printable runes: Space, c).
func (s *screen) send(t *testing.T, text string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.em.SendText(text)
	if s.inErr != nil {
		t.Fatalf("%s: type: %v", s.name, s.inErr)
	}
}
