package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestMedian(t *testing.T) {
	for _, tt := range []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{4}, 4},
		{[]float64{9, 1, 5}, 5},
		{[]float64{3, 1, 4, 2}, 2.5},
	} {
		in := append([]float64(nil), tt.in...)
		if got := median(tt.in); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
		}
		for i := range in {
			if in[i] != tt.in[i] {
				t.Fatalf("median reordered its argument: %v", tt.in)
			}
		}
	}
}

// The JSON is the contract: an array with one object per pair
// holding these fields; a composite classic side adds up.
func TestWriteJSON(t *testing.T) {
	ours := &row{op: &op{tool: "backupctl -t tar", ours: true, src: 100}, Secs: []float64{3, 2, 4}, Verify: []float64{1, 1, 1}, Out: 1000, RSS: 50 << 20}
	boot := &row{op: &op{group: "boot partition", tool: "dd bs=4M"}, Secs: []float64{1, 1, 1}, Out: 256, RSS: 2 << 20}
	tar := &row{op: &op{group: "tar", tool: "tar -cpf"}, Secs: []float64{2, 3, 1}, Out: 700, RSS: 3 << 20}
	var buf bytes.Buffer
	if err := writeJSON(&buf, []pair{{name: "tar set", ours: ours, theirs: []*row{boot, tar}, goal: goal{ratio: 1.1}}}); err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("not a JSON array of objects: %v\n%s", err, buf.String())
	}
	if len(got) != 1 {
		t.Fatalf("%d objects, want 1", len(got))
	}
	p := got[0]
	for _, k := range []string{"name", "ours_s", "theirs", "theirs_s", "ratio", "ours_bytes", "theirs_bytes", "ours_peak_rss_bytes"} {
		if _, ok := p[k]; !ok {
			t.Errorf("field %q missing: %s", k, buf.String())
		}
	}
	want := map[string]any{
		"name": "tar set", "theirs": "dd bs=4M (boot) + tar -cpf",
		"ours_s": 3.0, "theirs_s": 3.0, "ratio": 1.0,
		"ours_bytes": 1000.0, "theirs_bytes": 956.0, "ours_peak_rss_bytes": float64(50 << 20),
		"goal_met": true,
	}
	for k, v := range want {
		if p[k] != v {
			t.Errorf("%s = %v, want %v", k, p[k], v)
		}
	}
	if runs, _ := p["theirs_runs_s"].([]any); len(runs) != 3 || runs[0] != 3.0 || runs[1] != 4.0 || runs[2] != 2.0 {
		t.Errorf("theirs_runs_s = %v, want the run-by-run sums [3 4 2]", p["theirs_runs_s"])
	}
}

func TestPairGoal(t *testing.T) {
	mk := func(secs float64, out int64) *row {
		return &row{op: &op{tool: "x"}, Secs: []float64{secs}, Out: out}
	}
	for _, tt := range []struct {
		name    string
		ours    *row
		theirs  *row
		g       goal
		wantNil bool
		want    bool
	}{
		{"no goal", mk(1, 1), mk(1, 1), goal{}, true, false},
		{"fast enough", mk(1.05, 1), mk(1, 1), goal{ratio: 1.1}, false, true},
		{"too slow", mk(1.2, 1), mk(1, 1), goal{ratio: 1.1}, false, false},
		{"fast but larger", mk(1, 20), mk(100, 10), goal{ratio: 0.1, smaller: true}, false, false},
		{"failed", mk(1, 1), &row{op: &op{tool: "y"}, Err: "exit 1"}, goal{ratio: 1.1}, true, false},
	} {
		p := pair{name: tt.name, ours: tt.ours, theirs: []*row{tt.theirs}, goal: tt.g}
		m := p.met()
		if (m == nil) != tt.wantNil || (m != nil && *m != tt.want) {
			t.Errorf("%s: met() = %v", tt.name, m)
		}
	}
}

func TestTablesSayRuns(t *testing.T) {
	b := &bench{cfg: config{runs: 5}}
	r := &row{op: &op{group: "g", tool: "a | b", ours: true, src: 1e6}, Secs: []float64{1, 2, 3, 4, 5}, Out: 1 << 20}
	c := &row{op: &op{group: "g", tool: "c"}, Secs: []float64{1, 1, 1, 1, 1}, Out: 1 << 20}
	b.rows = []*row{r, c}
	b.pair("g", r, goal{}, c)
	var buf bytes.Buffer
	b.writeTables(&buf)
	s := buf.String()
	for _, want := range []string{"s (median of 5)", `a \| b`, "| 3.0 |", "| 3.00 |"} {
		if !strings.Contains(s, want) {
			t.Errorf("tables lack %q:\n%s", want, s)
		}
	}
}

// The boot figure is the guest's clock: the uptime the READY line carries.
func TestGuestSeconds(t *testing.T) {
	for _, tt := range []struct {
		line string
		want float64
		ok   bool
	}{
		{"RECOVERY-READY v1.2 uptime=6.48", 6.48, true},
		{"\x1b[?25lRECOVERY-READY dev uptime=12", 12, true},
		{"RECOVERY-READY v1.2", 0, false},
		{"RECOVERY-ERROR no console uptime=1.00", 0, false},
	} {
		got, ok := guestSeconds(tt.line)
		if ok != tt.ok || got != tt.want {
			t.Errorf("guestSeconds(%q) = %v, %v; want %v, %v", tt.line, got, ok, tt.want, tt.ok)
		}
	}
}

// Both of issue 20's figures are in the table, and a miss is marked.
func TestWriteRecoveryTargets(t *testing.T) {
	var buf bytes.Buffer
	writeRecovery(&buf, []recoveryResult{
		{Board: "qemu-virt-arm64", Image: "x", Size: 70 << 20, Booted: true, BootS: 14.4, GuestS: 11.2, Machine: "virt"},
		{Board: "pi4", Image: "y", Size: 40 << 20, Booted: true, BootS: 9, GuestS: 6.5, Machine: "raspi4b"},
	})
	out := buf.String()
	for _, want := range []string{"| 70.0 (over 64) |", "11.2 s guest clock (over 10); wall 14.4 s (QEMU virt)", "| 40.0 |", "6.5 s guest clock; wall 9.0 s (QEMU raspi4b)"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

// Each pair carries the 1-minute load average around its runs, in the
// JSON and in the table; a classic side measured apart says its own.
func TestPairLoad(t *testing.T) {
	ours := &row{op: &op{group: "g", tool: "backupctl", ours: true, src: 1e6}, Secs: []float64{2}, Load: [2]float64{1.5, 2.25}}
	same := &row{op: &op{group: "g", tool: "tar"}, Secs: []float64{1}, Load: [2]float64{1.5, 2.25}}
	apart := &row{op: &op{group: "live", tool: "tar live"}, Secs: []float64{1}, Load: [2]float64{4, 5.5}}
	var buf bytes.Buffer
	if err := writeJSON(&buf, []pair{{name: "a", ours: ours, theirs: []*row{same}}, {name: "b", ours: ours, theirs: []*row{apart}}}); err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got[0]["load_start"] != 1.5 || got[0]["load_end"] != 2.25 {
		t.Errorf("pair a: load %v → %v, want 1.5 → 2.25", got[0]["load_start"], got[0]["load_end"])
	}
	if _, ok := got[0]["theirs_load_start"]; ok {
		t.Errorf("pair a measured together has a separate theirs load: %s", buf.String())
	}
	if got[1]["theirs_load_start"] != 4.0 || got[1]["theirs_load_end"] != 5.5 {
		t.Errorf("pair b: theirs load %v → %v, want 4 → 5.5", got[1]["theirs_load_start"], got[1]["theirs_load_end"])
	}
	b := &bench{cfg: config{runs: 1}, rows: []*row{ours, apart}}
	b.pair("b", ours, goal{}, apart)
	buf.Reset()
	b.writeTables(&buf)
	for _, want := range []string{"load 1 min start → end", "| 1.5 → 2.2 · 4.0 → 5.5 |", "| 4.0 → 5.5 |"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("tables lack %q:\n%s", want, buf.String())
		}
	}
}

func TestParseLoadAvg(t *testing.T) {
	for in, want := range map[string]float64{"0.52 0.58 0.59 1/389 12345\n": 0.52, "12.00 1 1 1/1 1": 12, "": 0, "x 1 1": 0} {
		if got := parseLoadAvg(in); got != want {
			t.Errorf("parseLoadAvg(%q) = %v, want %v", in, got, want)
		}
	}
	if l := loadAvg(); l < 0 {
		t.Errorf("loadAvg() = %v", l)
	}
}
