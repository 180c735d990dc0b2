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
// boot test emulates, the time from QEMU's start to the recovery
// program's RECOVERY-READY line (its UI is up).
type recoveryResult struct {
	Board    string
	Image    string
	Size     int64
	Built    time.Time
	BootS    float64 // 0: not measured
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
}{{"qemu-virt-arm64", 120 * time.Second}, {"pi3", 240 * time.Second}}

var readyLine = regexp.MustCompile(`RECOVERY-READY \S+`)

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
				r.BootS, r.Machine, r.NotWhy = bootRecovery(repo, img, board, bb.deadline)
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

// bootRecovery boots img as the boot test does and times RECOVERY-READY.
func bootRecovery(repo, img, board string, deadline time.Duration) (secs float64, machine, notWhy string) {
	b, err := boardcfg.Load(filepath.Join(repo, "board-configs"), board)
	if err != nil {
		return 0, "", "not measured: " + err.Error()
	}
	if b.QEMU == nil {
		return 0, "", "not measured: the board has no [qemu] section"
	}
	machine = b.QEMU.Machine
	if _, err := exec.LookPath(b.QEMU.Binary); err != nil {
		return 0, machine, fmt.Sprintf("not measured: %s not installed", b.QEMU.Binary)
	}
	dir, err := os.MkdirTemp("", "bench-recovery-")
	if err != nil {
		return 0, machine, "not measured: " + err.Error()
	}
	defer os.RemoveAll(dir)
	bs, err := imagebuild.ExtractBoot(img, dir, b.QEMU.DTB)
	if err != nil {
		return 0, machine, "not measured: " + err.Error()
	}
	args, err := imagebuild.QEMUArgs(b, bs)
	if err != nil {
		return 0, machine, "not measured: " + err.Error()
	}
	logf("recovery image: booting %s in QEMU (%s)", filepath.Base(img), machine)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	var tail tailLines
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, machine, "not measured: " + err.Error()
	}
	ready := make(chan float64, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		sent := false
		for sc.Scan() {
			tail.add(sc.Text())
			if !sent && readyLine.MatchString(sc.Text()) {
				ready <- time.Since(start).Seconds()
				sent = true
			}
		}
		io.Copy(io.Discard, pr)
	}()
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait(); pw.Close() }()
	select {
	case secs = <-ready:
		cancel() // the UI is up: that is all we wait for
		<-waited
		logf("  RECOVERY-READY after %.1f s", secs)
		return secs, machine, ""
	case err := <-waited:
		return 0, machine, fmt.Sprintf("not measured: QEMU exited (%v) before RECOVERY-READY; console ended with %q", err, tail.last())
	case <-ctx.Done():
		<-waited
		return 0, machine, fmt.Sprintf("not measured: no RECOVERY-READY within %s; console ended with %q", deadline, tail.last())
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
	fmt.Fprintln(w, "Recovery image (the images in out/ as `make image` left them; boot = QEMU start to the recovery program's RECOVERY-READY line, its UI up, under TCG emulation):")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| Board | Image MiB | Built | Boot to UI |")
	fmt.Fprintln(w, "|---|---:|---|---|")
	for _, r := range rec {
		size, built := "—", "—"
		if r.Image != "" {
			size = fmt.Sprintf("%.1f", float64(r.Size)/(1<<20))
			built = r.Built.UTC().Format("2006-01-02 15:04 UTC")
		}
		boot := ""
		switch {
		case !r.Booted:
			boot = "not booted by the bench"
		case r.NotWhy != "":
			boot = r.NotWhy
		default:
			boot = fmt.Sprintf("%.1f s (QEMU %s)", r.BootS, r.Machine)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", r.Board, size, built, esc(boot))
	}
}
