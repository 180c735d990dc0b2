package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// goal is what the issue asks of a pair: ours/theirs time at most ratio
// (0: no goal), and with smaller also an output no larger than theirs.
type goal struct {
	ratio   float64
	smaller bool
	note    string // how the issue says it, when not "≤ ratio"
}

// restoreGoal is issue 17's for every restore: no slower than its
// classic pipeline.
var restoreGoal = goal{ratio: 1.0}

// pair is backupctl's operation against the classic command(s) doing the
// same work; several theirs run one after another (dd of the boot
// partition, then tar of the root), so their times and sizes add.
type pair struct {
	name   string
	ours   *row
	theirs []*row
	goal   goal
}

// pair records a comparison; rows that were not measured (nil) drop it.
func (b *bench) pair(name string, ours *row, g goal, theirs ...*row) {
	if ours == nil || len(theirs) == 0 {
		return
	}
	for _, t := range theirs {
		if t == nil {
			return
		}
	}
	b.pairs = append(b.pairs, pair{name: name, ours: ours, theirs: theirs, goal: g})
}

func (p pair) theirsTool() string {
	var s []string
	for _, t := range p.theirs {
		tool := t.op.tool
		if len(p.theirs) > 1 && t.op.group == "boot partition" {
			tool += " (boot)"
		}
		s = append(s, tool)
	}
	return strings.Join(s, " + ")
}

func (p pair) err() string {
	var s []string
	for _, r := range append([]*row{p.ours}, p.theirs...) {
		if r.Err != "" {
			s = append(s, r.op.tool+": "+r.Err)
		}
	}
	return strings.Join(s, "; ")
}

func (p pair) theirsSecs() float64 {
	var s float64
	for _, t := range p.theirs {
		s += t.median()
	}
	return s
}

// theirsRuns adds the theirs rows run by run.
func (p pair) theirsRuns() []float64 {
	n := len(p.theirs[0].Secs)
	for _, t := range p.theirs {
		n = min(n, len(t.Secs))
	}
	out := make([]float64, n)
	for _, t := range p.theirs {
		for i := range out {
			out[i] += t.Secs[i]
		}
	}
	return out
}

// theirsLoad is the load average around the classic tool's runs: those
// of the last theirs row (the first is the boot image's dd in a set).
func (p pair) theirsLoad() [2]float64 { return p.theirs[len(p.theirs)-1].Load }

// load says the load average at the start and end of the pair's runs.
func (p pair) load() string {
	s := fmt.Sprintf("%.1f → %.1f", p.ours.Load[0], p.ours.Load[1])
	if t := p.theirsLoad(); t != p.ours.Load {
		s += fmt.Sprintf(" · %.1f → %.1f", t[0], t[1])
	}
	return s
}

func (p pair) theirsBytes() (n int64) {
	for _, t := range p.theirs {
		n += t.Out
	}
	return n
}

func (p pair) theirsRSS() (n int64) {
	for _, t := range p.theirs {
		n = max(n, t.RSS)
	}
	return n
}

func (p pair) ratio() float64 {
	if t := p.theirsSecs(); t > 0 {
		return p.ours.median() / t
	}
	return 0
}

// met says whether the pair meets its goal; nil without one or on error.
func (p pair) met() *bool {
	if p.goal.ratio == 0 || p.err() != "" {
		return nil
	}
	ok := p.ratio() <= p.goal.ratio
	if p.goal.smaller {
		ok = ok && p.ours.Out <= p.theirsBytes()
	}
	return &ok
}

// pairJSON is one object of out/bench.json. The first eight fields are
// the contract; the rest say how they were got.
type pairJSON struct {
	Name          string    `json:"name"`
	OursS         float64   `json:"ours_s"`
	Theirs        string    `json:"theirs"`
	TheirsS       float64   `json:"theirs_s"`
	Ratio         float64   `json:"ratio"`
	OursBytes     int64     `json:"ours_bytes"`
	TheirsBytes   int64     `json:"theirs_bytes"`
	OursPeakRSS   int64     `json:"ours_peak_rss_bytes"`
	Ours          string    `json:"ours"`
	TheirsPeakRSS int64     `json:"theirs_peak_rss_bytes"`
	OursVerifyS   float64   `json:"ours_verify_s,omitempty"`
	SrcBytes      int64     `json:"src_bytes"`
	OursRunsS     []float64 `json:"ours_runs_s"`
	TheirsRunsS   []float64 `json:"theirs_runs_s"`
	GoalMaxRatio  float64   `json:"goal_max_ratio,omitempty"`
	GoalMet       *bool     `json:"goal_met,omitempty"`
	Error         string    `json:"error,omitempty"`
	// The 1-minute load average (/proc/loadavg) when the runs of the pair
	// began and when they ended; theirs_load_* only when the classic side
	// was measured apart from ours (the live pairs).
	LoadStart       float64 `json:"load_start"`
	LoadEnd         float64 `json:"load_end"`
	TheirsLoadStart float64 `json:"theirs_load_start,omitempty"`
	TheirsLoadEnd   float64 `json:"theirs_load_end,omitempty"`
}

func round(x float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(x*p) / p
}

func roundAll(xs []float64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = round(x, 2)
	}
	return out
}

func (p pair) json() pairJSON {
	j := pairJSON{
		Name: p.name, Ours: p.ours.op.tool, Theirs: p.theirsTool(),
		OursS: round(p.ours.median(), 2), TheirsS: round(p.theirsSecs(), 2), Ratio: round(p.ratio(), 3),
		OursBytes: p.ours.Out, TheirsBytes: p.theirsBytes(),
		OursPeakRSS: p.ours.RSS, TheirsPeakRSS: p.theirsRSS(),
		OursVerifyS: round(p.ours.verifyS(), 2), SrcBytes: p.ours.op.src,
		OursRunsS: roundAll(p.ours.Secs), TheirsRunsS: roundAll(p.theirsRuns()),
		GoalMaxRatio: round(p.goal.ratio, 3), GoalMet: p.met(), Error: p.err(),
	}
	j.LoadStart, j.LoadEnd = round(p.ours.Load[0], 2), round(p.ours.Load[1], 2)
	if t := p.theirsLoad(); t != p.ours.Load {
		j.TheirsLoadStart, j.TheirsLoadEnd = round(t[0], 2), round(t[1], 2)
	}
	if j.OursRunsS == nil {
		j.OursRunsS = []float64{}
	}
	return j
}

// writeJSON writes the pairs as a JSON array.
func writeJSON(w io.Writer, pairs []pair) error {
	out := make([]pairJSON, 0, len(pairs))
	for _, p := range pairs {
		out = append(out, p.json())
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func mib(n int64) string { return fmt.Sprintf("%.0f", float64(n)/(1<<20)) }

func mbps(bytes int64, secs float64) string {
	if secs <= 0 {
		return ""
	}
	return fmt.Sprintf("%.0f", float64(bytes)/1e6/secs)
}

func esc(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// writeTables writes the pair table and the table of every measured
// operation in markdown.
func (b *bench) writeTables(w io.Writer) {
	n := b.cfg.runs
	fmt.Fprintf(w, "| Operation | backupctl | s (median of %d) | of which verify s | classic | s (median of %d) | time ours/classic | goal | MB/s ours · classic | output MiB ours · classic | peak RSS MiB ours · classic | load 1 min start → end |\n", n, n)
	fmt.Fprintln(w, "|---|---|---:|---:|---|---:|---:|---|---:|---:|---:|---|")
	for _, p := range b.pairs {
		g := "—"
		if p.goal.ratio > 0 {
			g = fmt.Sprintf("≤ %.2f", p.goal.ratio)
			if p.goal.note != "" {
				g = p.goal.note
			}
			if m := p.met(); m != nil {
				g += map[bool]string{true: " ✓", false: " ✗"}[*m]
			}
		}
		if e := p.err(); e != "" {
			fmt.Fprintf(w, "| %s | %s | failed | | %s | | | %s | | | | %s |\n", p.name, esc(p.ours.op.tool), esc(p.theirsTool()), g, p.load())
			continue
		}
		ts := p.theirsSecs()
		verify := ""
		if v := p.ours.verifyS(); v > 0 {
			verify = fmt.Sprintf("%.1f", v)
		}
		fmt.Fprintf(w, "| %s | %s | %.1f | %s | %s | %.1f | %.2f | %s | %s · %s | %s · %s | %s · %s | %s |\n",
			p.name, esc(p.ours.op.tool), p.ours.median(), verify, esc(p.theirsTool()), ts, p.ratio(), g,
			mbps(p.ours.op.src, p.ours.median()), mbps(p.ours.op.src, ts),
			mib(p.ours.Out), mib(p.theirsBytes()), mib(p.ours.RSS), mib(p.theirsRSS()), p.load())
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Every run of every operation:")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| Operation | Tool | runs s | median s | MB/s | Output MiB | Peak RSS MiB | load 1 min start → end |")
	fmt.Fprintln(w, "|---|---|---|---:|---:|---:|---:|---|")
	for _, r := range b.rows {
		if r == nil {
			continue
		}
		tool := esc(r.op.tool)
		if r.op.ours {
			tool = "**" + tool + "**"
		}
		if !r.ok() {
			fmt.Fprintf(w, "| %s | %s | failed: %s | | | | | |\n", r.op.group, tool, esc(r.Err))
			continue
		}
		var runs []string
		for _, s := range r.Secs {
			runs = append(runs, fmt.Sprintf("%.1f", s))
		}
		out := mib(r.Out)
		if r.Apparent > 0 && r.Apparent-r.Out > 1<<20 {
			out += fmt.Sprintf(" (%s apparent)", mib(r.Apparent))
		}
		fmt.Fprintf(w, "| %s | %s | %s | %.1f | %s | %s | %s | %.1f → %.1f |\n", r.op.group, tool, strings.Join(runs, ", "),
			r.median(), mbps(r.op.src, r.median()), out, mib(r.RSS), r.Load[0], r.Load[1])
	}
}

// report prints the tables and writes them with the machine's
// description to cfg.md, and the pairs to cfg.json.
func (b *bench) report() error {
	var w bytes.Buffer
	fmt.Fprintf(&w, "Machine: %s; load average %.1f at the start, %.1f at the end; %s.\n\n",
		machine(), b.load0, loadAvg(), time.Since(b.start).Round(time.Second))
	fx := b.fx
	fmt.Fprintf(&w, "Fixture: %d MiB disk (MBR, %d MiB FAT32 boot with %d MiB used, ext4 root of %d MiB with %d MiB used in %d files copied from /usr; %d MiB of stale random data written and deleted in free space).\n\n",
		fx.Size>>20, bootSize>>20, fx.BootUsed>>20, fx.RootSize>>20, fx.RootUsed>>20, fx.Files, fx.Stale>>20)
	fmt.Fprintf(&w, "Times are the median of %d runs (BENCH_RUNS), each from a cold page cache for its input and including the flush of its output to disk. MB/s = bytes covered / s: the whole disk for images, the root partition for partclone, the root's used bytes for tar, rsync and their restores (plus the boot partition's for a whole set). Output = disk space allocated (sparse files count their data). Peak RSS = the largest VmHWM (peak resident set since its own exec) of the command and every process it started, read under ptrace as each exits, the same for both sides (a pipeline's largest member; backupctl or the tar, rsync or mkfs it ran); not ru_maxrss, which carries the bench's own memory into every child. \"of which verify\" = backupctl's read-back of the new set before it is committed, from its run log.\n\n", b.cfg.runs)
	b.writeTables(&w)
	if len(b.notes) > 0 {
		fmt.Fprintln(&w)
		for _, n := range b.notes {
			fmt.Fprintf(&w, "- %s\n", n)
		}
	}
	if len(b.mem4) > 0 {
		fmt.Fprintln(&w)
		fmt.Fprintln(&w, "Peak RSS of the compressing backups with GOMAXPROCS=4, as on a 4-core Pi (the compressors scale with it; one run each):")
		fmt.Fprintln(&w)
		fmt.Fprintln(&w, "| backupctl | s | peak RSS MiB |")
		fmt.Fprintln(&w, "|---|---:|---:|")
		for _, r := range b.mem4 {
			if !r.ok() {
				fmt.Fprintf(&w, "| %s | failed: %s | |\n", r.op.tool, esc(r.Err))
				continue
			}
			fmt.Fprintf(&w, "| %s | %.1f | %s |\n", r.op.tool, r.median(), mib(r.RSS))
		}
	}
	var rss []string
	for _, r := range append(slices.Clone(b.rows), b.mem4...) {
		if r != nil && r.op.ours && r.RSS >= 100e6 {
			rss = append(rss, fmt.Sprintf("%s %s: %s MiB", r.op.group, r.op.tool, mib(r.RSS)))
		}
	}
	fmt.Fprintln(&w)
	if len(rss) == 0 {
		fmt.Fprintln(&w, "Peak RSS goal (< 100 MB in every backupctl operation): met.")
	} else {
		fmt.Fprintf(&w, "Peak RSS goal (< 100 MB in every backupctl operation): missed by %s.\n", strings.Join(rss, "; "))
	}
	if b.cfg.recovery {
		fmt.Fprintln(&w)
		writeRecovery(&w, b.rec)
	}
	os.Stdout.Write(w.Bytes())

	var j bytes.Buffer
	if err := writeJSON(&j, b.pairs); err != nil {
		return err
	}
	if err := os.WriteFile(b.cfg.json, j.Bytes(), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(b.cfg.md, w.Bytes(), 0o644); err != nil {
		return err
	}
	// A copy next to the fixture, where earlier versions of the bench
	// kept it.
	os.WriteFile(filepath.Join(b.cfg.dir, "results.md"), w.Bytes(), 0o644)
	os.WriteFile(filepath.Join(b.cfg.dir, "results.json"), j.Bytes(), 0o644)
	logf("wrote %s and %s", b.cfg.json, b.cfg.md)
	return nil
}
