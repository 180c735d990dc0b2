package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/pibackup/pibackup/internal/boardcfg"
	"github.com/pibackup/pibackup/internal/imagebuild"
)

// recoveryResult is one recovery image: its size and, for the boards the
// boot test emulates, the time to the recovery program's RECOVERY-READY
// line (its UI is up): by the guest's own clock (the uptime the line
// carries, seconds since the kernel started) and by the host's wall clock
// from QEMU's start. The guest clock is the figure: the wall clock also
// counts QEMU loading the kernel and initramfs, which a loaded host slows.
type recoveryResult struct {
	Board    string
	Image    string
	Size     int64
	Built    time.Time
	BootS    float64 // host wall clock; 0: not measured
	GuestS   float64 // guest clock (uptime=); 0: the line had none
	NotWhy   string  // why the boot was not measured, "" if it was
	Booted   bool    // a boot was attempted for this board
	Machine  string  // QEMU machine
	Deadline time.Duration
}

// bootBoards are booted under QEMU (TCG), as the image boot test does,
// each with a deadline.
var bootBoards = []struct {
	board    string
	deadline time.Duration
}{{"qemu-virt-arm64", 120 * time.Second}, {"pi3", 240 * time.Second}, {"pi4", 240 * time.Second}}

// MaxImageMiB and MaxBootS are issue 20's targets, printed beside the figures.
const (
	MaxImageMiB = 64
	MaxBootS    = 10
)

var readyLine = regexp.MustCompile(`RECOVERY-READY \S+`)

// guestReady is the READY line with the guest's /proc/uptime:
// "RECOVERY-READY v1.2 uptime=6.12". (Not the kernel's printk timestamp:
// u-root's init sets the console log level to 5, so the kernel's copy of
// the line never reaches the console.)
var guestReady = regexp.MustCompile(`RECOVERY-READY \S+ uptime=(\d+(?:\.\d+)?)`)

// guestSeconds is the uptime a READY line carries, ok false when it has
// none (a recovery older than issue 20).
func guestSeconds(line string) (float64, bool) {
	m := guestReady.FindStringSubmatch(line)
	if m == nil {
		return 0, false
	}
	var s float64
	if _, err := fmt.Sscanf(m[1], "%g", &s); err != nil {
		return 0, false
	}
	return s, true
}

// measureRecovery reports the images `make image` left in repo/out, and
// boots those of bootBoards. Nothing is built: a missing image or QEMU is
// "not measured".
func measureRecovery(repo string) []recoveryResult {
	var res []recoveryResult
	imgs, _ := filepath.Glob(filepath.Join(repo, "out", "recovery-*.img"))
	found := map[string]bool{}
	for _, img := range imgs {
		board := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(img), "recovery-"), ".img")
		fi, err := os.Stat(img)
		if err != nil {
			continue
		}
		r := recoveryResult{Board: board, Image: img, Size: fi.Size(), Built: fi.ModTime()}
		for _, bb := range bootBoards {
			if bb.board == board {
				found[board] = true
				r.Booted, r.Deadline = true, bb.deadline
				r.BootS, r.GuestS, r.Machine, r.NotWhy = bootRecovery(repo, img, board, bb.deadline)
			}
		}
		res = append(res, r)
	}
	for _, bb := range bootBoards {
		if !found[bb.board] {
			res = append(res, recoveryResult{Board: bb.board, Booted: true,
				NotWhy: fmt.Sprintf("not measured: no out/recovery-%s.img (make image builds it)", bb.board)})
		}
	}
	return res
}

// bootRecovery boots img as the boot test does and times RECOVERY-READY,
// by the host's wall clock and by the guest's.
func bootRecovery(repo, img, board string, deadline time.Duration) (secs, guest float64, machine, notWhy string) {
	b, err := boardcfg.Load(filepath.Join(repo, "board-configs"), board)
	if err != nil {
		return 0, 0, "", "not measured: " + err.Error()
	}
	if b.QEMU == nil {
		return 0, 0, "", "not measured: the board has no [qemu] section"
	}
	machine = b.QEMU.Machine
	if _, err := exec.LookPath(b.QEMU.Binary); err != nil {
		return 0, 0, machine, fmt.Sprintf("not measured: %s not installed", b.QEMU.Binary)
	}
	dir, err := os.MkdirTemp("", "bench-recovery-")
	if err != nil {
		return 0, 0, machine, "not measured: " + err.Error()
	}
	defer os.RemoveAll(dir)
	bs, err := imagebuild.ExtractBoot(img, dir, b.QEMU.DTB)
	if err != nil {
		return 0, 0, machine, "not measured: " + err.Error()
	}
	args, err := imagebuild.QEMUArgs(b, bs)
	if err != nil {
		return 0, 0, machine, "not measured: " + err.Error()
	}
	logf("recovery image: booting %s in QEMU (%s)", filepath.Base(img), machine)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	var tail tailLines
	// The console is kept beside the image, to see where a boot spent its time.
	logPath := strings.TrimSuffix(img, ".img") + ".boot.log"
	console, err := os.Create(logPath)
	if err != nil {
		return 0, 0, machine, "not measured: " + err.Error()
	}
	defer console.Close()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, machine, "not measured: " + err.Error()
	}
	type readyAt struct{ wall, guest float64 }
	ready := make(chan readyAt, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintf(console, "%7.2f %s\n", time.Since(start).Seconds(), line)
			tail.add(line)
			if !sent && readyLine.MatchString(line) {
				at := readyAt{wall: time.Since(start).Seconds()}
				at.guest, _ = guestSeconds(line)
				ready <- at
				sent = true
			}
		}
		io.Copy(io.Discard, pr)
	}()
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait(); pw.Close() }()
	select {
	case at := <-ready:
		cancel() // the UI is up: that is all we wait for
		<-waited
		if at.guest == 0 {
			logf("  RECOVERY-READY after %.1f s host wall clock (no guest clock in the line)", at.wall)
		} else {
			logf("  RECOVERY-READY after %.1f s guest clock, %.1f s host wall clock", at.guest, at.wall)
		}
		return at.wall, at.guest, machine, ""
	case err := <-waited:
		return 0, 0, machine, fmt.Sprintf("not measured: QEMU exited (%v) before RECOVERY-READY; console ended with %q", err, tail.last())
	case <-ctx.Done():
		<-waited
		return 0, 0, machine, fmt.Sprintf("not measured: no RECOVERY-READY within %s; console ended with %q", deadline, tail.last())
	}
}

// tailLines keeps the last console lines for an error message.
type tailLines struct{ lines []string }

func (t *tailLines) add(s string) {
	t.lines = append(t.lines, strings.TrimSpace(s))
	if len(t.lines) > 3 {
		t.lines = t.lines[1:]
	}
}

func (t *tailLines) last() string { return strings.Join(t.lines, " / ") }

func writeRecovery(w io.Writer, rec []recoveryResult) {
	fmt.Fprintf(w, "Recovery image (the images in out/ as `make image` left them; targets: image ≤ %d MiB, boot ≤ %d s). "+
		"Boot to UI = the recovery program's RECOVERY-READY line, its UI up, under TCG emulation: guest clock = the uptime that line "+
		"carries, from the kernel's start (the figure), wall = host time from QEMU's start (also counts QEMU loading the files):\n",
		MaxImageMiB, MaxBootS)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| Board | Image MiB | Built | Boot to UI |")
	fmt.Fprintln(w, "|---|---:|---|---|")
	for _, r := range rec {
		size, built := "—", "—"
		if r.Image != "" {
			size = fmt.Sprintf("%.1f", float64(r.Size)/(1<<20))
			if r.Size > MaxImageMiB<<20 {
				size += fmt.Sprintf(" (over %d)", MaxImageMiB)
			}
			built = r.Built.UTC().Format("2006-01-02 15:04 UTC")
		}
		boot := ""
		switch {
		case !r.Booted:
			boot = "not booted by the bench"
		case r.NotWhy != "":
			boot = r.NotWhy
		case r.GuestS == 0:
			boot = fmt.Sprintf("guest clock not seen (READY has no uptime=); wall %.1f s (QEMU %s)", r.BootS, r.Machine)
		default:
			over := ""
			if r.GuestS > MaxBootS {
				over = fmt.Sprintf(" (over %d)", MaxBootS)
			}
			boot = fmt.Sprintf("%.1f s guest clock%s; wall %.1f s (QEMU %s)", r.GuestS, over, r.BootS, r.Machine)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", r.Board, size, built, esc(boot))
	}
}
