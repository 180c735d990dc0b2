package main

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/size"
)

// The defaults make `make bench` end within 15 minutes on the 2-core
// development machine, the recovery boots included (docs/BENCH.md has
// the measured wall time); BENCH_SIZE and BENCH_RUNS give a bigger run.
const (
	defaultSize = "1G"
	defaultRuns = 1
)

type config struct {
	size      int64
	runs      int    // runs of every operation; the median is reported
	dir       string // fixture and outputs
	backupctl string // "" when the backup engine is not available
	self      string // this binary, for the imaging-code rows
	md        string // where the markdown report goes
	json      string // where the pairs go as JSON
	recovery  bool   // boot the recovery image in QEMU at the end
	repo      string // the repository root (for out/recovery-*.img and board-configs)
}

func configFromEnv() (config, error) {
	cfg := config{dir: "/var/tmp/pibackup-bench", recovery: os.Getenv("BENCH_RECOVERY") != "0"}
	var err error
	if cfg.size, err = size.Parse(envOr("BENCH_SIZE", defaultSize)); err != nil || cfg.size == 0 {
		return cfg, fmt.Errorf("BENCH_SIZE %q: want a size such as 3G (%v)", os.Getenv("BENCH_SIZE"), err)
	}
	cfg.size = cfg.size / sector * sector
	if cfg.runs, err = strconv.Atoi(envOr("BENCH_RUNS", strconv.Itoa(defaultRuns))); err != nil || cfg.runs < 1 {
		return cfg, fmt.Errorf("BENCH_RUNS %q: want a number of runs, at least 1", os.Getenv("BENCH_RUNS"))
	}
	if d := os.Getenv("BENCH_DIR"); d != "" {
		cfg.dir = d
	}
	if cfg.self, err = os.Executable(); err != nil {
		return cfg, err
	}
	if cfg.repo, err = filepath.Abs(envOr("BENCH_REPO", ".")); err != nil {
		return cfg, err
	}
	cfg.backupctl = envOr("BENCH_BACKUPCTL", "out/backupctl")
	if _, err := os.Stat(cfg.backupctl); err != nil {
		logf("no %s (make build): its rows are left out; only the classic tools and the imaging code are measured", cfg.backupctl)
		cfg.backupctl = ""
	} else if cfg.backupctl, err = filepath.Abs(cfg.backupctl); err != nil {
		return cfg, err
	}
	if cfg.json, err = filepath.Abs(envOr("BENCH_JSON", "out/bench.json")); err != nil {
		return cfg, err
	}
	cfg.md = envOr("BENCH_MD", strings.TrimSuffix(cfg.json, ".json")+".md")
	if err := os.MkdirAll(filepath.Dir(cfg.json), 0o755); err != nil {
		return cfg, err
	}
	return cfg, os.MkdirAll(cfg.dir, 0o755)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// op is one operation the bench times: a command, and what has to happen
// untimed before and after each run of it.
type op struct {
	group string // what is done ("image, gzip"), for the log
	tool  string // how ("dd bs=4M | pigz", "backupctl -t ddz")
	ours  bool
	src   int64 // bytes the MB/s figure is based on
	// out is the output file or folder: flushed to disk inside the timed
	// part (fsync, or syncfs for a folder), then sized.
	out  string
	argv []string
	env  []string // added to the environment
	// grow, if set, is a folder whose growth in allocated space is the
	// output size (an incremental set next to the one it hardlinks to).
	grow string
	// evict are inputs besides the fixture to drop from the page cache
	// before each run (the set a restore reads).
	evict []string
	// setLog, for a backupctl backup, is the host folder whose newest set
	// has the run log that says how long the verification took.
	setLog string
	before func() error
	after  func() error
}

// row is one op's measurements over all runs.
type row struct {
	op       *op
	Secs     []float64 // wall time of each run
	Verify   []float64 // backupctl: seconds of each run spent verifying the new set
	Out      int64     // allocated bytes of the output (last run)
	Apparent int64     // apparent size of a single-file output (last run)
	RSS      int64     // peak RSS in bytes, the largest of all runs
	Err      string
	// Load is the 1-minute load average when the op's measure group
	// started and when it ended: the machine is shared, and a ratio
	// taken at load 5 is not one taken at load 1.
	Load [2]float64
}

func (r *row) median() float64  { return median(r.Secs) }
func (r *row) ok() bool         { return r.Err == "" && len(r.Secs) > 0 }
func (r *row) verifyS() float64 { return median(r.Verify) }

// median of xs; 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

type bench struct {
	cfg    config
	fx     *fixture
	outDir string
	rows   []*row
	pairs  []pair
	notes  []string // said under the table
	rec    []recoveryResult
	mem4   []*row // the compressing backups again with GOMAXPROCS=4
	start  time.Time
	load0  float64 // load average when the run started
	// rootOnly are backupctl's root-only (-P 2) first runs by tool
	// ("tar", "rsync"), for the live pairs.
	rootOnly map[string]*row
}

func (b *bench) o(name string) string { return filepath.Join(b.outDir, name) }

// measure runs each op cfg.runs times, round-robin, so that a change in
// the machine's load touches all of them alike, and returns their rows
// (nil for a nil op: one that cannot run here, such as backupctl's when
// it was not built).
func (b *bench) measure(ops ...*op) []*row {
	rows := make([]*row, len(ops))
	for i, o := range ops {
		if o != nil {
			rows[i] = &row{op: o}
			b.rows = append(b.rows, rows[i])
		}
	}
	load0 := loadAvg()
	for run := 1; run <= b.cfg.runs; run++ {
		for i, o := range ops {
			if o == nil || rows[i].Err != "" {
				continue // failed once: the row says so, no more runs
			}
			b.runOnce(rows[i], o, run)
		}
	}
	load1 := loadAvg()
	for _, r := range rows {
		if r != nil {
			r.Load = [2]float64{load0, load1}
		}
	}
	logf("  load average %.2f at the start, %.2f at the end", load0, load1)
	return rows
}

func (b *bench) runOnce(r *row, o *op, run int) {
	logf("%s: %s (run %d of %d)", o.group, o.tool, run, b.cfg.runs)
	fail := func(format string, args ...any) {
		r.Err = fmt.Sprintf(format, args...)
		logf("  failed: %s", r.Err)
	}
	if o.before != nil {
		if err := o.before(); err != nil {
			fail("before the run: %v", err)
			return
		}
	}
	if o.after != nil {
		defer func() {
			if err := o.after(); err != nil && r.Err == "" {
				fail("after the run: %v", err)
			}
		}()
	}
	dropCache(b.fx.Path)
	for _, p := range o.evict {
		dropTree(p)
	}
	var grown int64
	if o.grow != "" {
		grown = allocated(o.grow)
	}
	stdout, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		fail("%v", err)
		return
	}
	defer stdout.Close()
	stderr, err := os.CreateTemp("", "bench-stderr-")
	if err != nil {
		fail("%v", err)
		return
	}
	defer os.Remove(stderr.Name())
	defer stderr.Close()
	start := time.Now()
	// Traced for its peak RSS (peakrss_linux.go): the same measure for
	// backupctl and the classic tools.
	res, err := runTraced(o.argv, append(append(os.Environ(), "LC_ALL=C"), o.env...), stdout, stderr)
	if err == nil {
		err = res.err()
	}
	if err == nil {
		err = fsyncPath(o.out)
	}
	secs := time.Since(start).Seconds()
	r.RSS = max(r.RSS, res.peakRSS)
	stops := res.stops
	if err != nil {
		msg, _ := os.ReadFile(stderr.Name())
		fail("%v: %s", err, lastLine(string(msg)))
		return
	}
	r.Secs = append(r.Secs, secs)
	if o.grow != "" {
		r.Out = allocated(o.grow) - grown
	} else {
		r.Out = allocated(o.out)
	}
	r.Apparent = 0
	if fi, err := os.Stat(o.out); err == nil && !fi.IsDir() {
		r.Apparent = fi.Size()
	}
	if o.setLog != "" {
		if v, ok := verifySeconds(o.setLog); ok {
			r.Verify = append(r.Verify, v)
		}
	}
	logf("  %.1f s, %d MiB out, peak RSS %d MiB (%d stops for the tracer)", secs, r.Out>>20, r.RSS>>20, stops)
}

// verifyLine is backupctl's run log line for the read-back of a new set.
var verifyLine = regexp.MustCompile(`msg="new set verified".* duration=(\S+)`)

// verifySeconds reads how long backupctl verified the newest set in
// hostDir, from that set's run log.
func verifySeconds(hostDir string) (float64, bool) {
	set := newestSet(hostDir)
	if set == "" {
		return 0, false
	}
	// The host folder is named for the host, as is the run log in the set
	// (the legacy name is for a backupctl built before that).
	var b []byte
	err := fs.ErrNotExist
	for _, name := range backupset.RunLogNames(filepath.Base(hostDir)) {
		if b, err = os.ReadFile(filepath.Join(set, name)); err == nil {
			break
		}
	}
	if err != nil {
		return 0, false
	}
	m := verifyLine.FindSubmatch(b)
	if m == nil {
		return 0, false
	}
	d, err := time.ParseDuration(string(m[1]))
	if err != nil {
		return 0, false
	}
	return d.Seconds(), true
}

// newestSet is the newest complete set folder of a backupctl host folder
// (set names end in their time stamp and sort by it).
func newestSet(hostDir string) string {
	sets := setsIn(hostDir)
	if len(sets) == 0 {
		return ""
	}
	return sets[len(sets)-1]
}

// setsIn lists the set folders of a host folder, oldest first.
func setsIn(hostDir string) []string {
	m, _ := filepath.Glob(filepath.Join(hostDir, "*@*-backup-*"))
	var sets []string
	for _, p := range m {
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			sets = append(sets, p)
		}
	}
	// Names are <host>@<os>-<type>-backup-<YYYYMMDD-HHMMSS>: one host and
	// type per folder here, so the lexical order is the time order.
	slices.Sort(sets)
	return sets
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}

// machine names the CPU, cores, RAM, kernel and Go version.
func machine() string {
	model := "unknown CPU"
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	var si syscall.Sysinfo_t
	syscall.Sysinfo(&si)
	var un syscall.Utsname
	syscall.Uname(&un)
	rel := make([]byte, 0, 65)
	for _, c := range un.Release {
		if c == 0 {
			break
		}
		rel = append(rel, byte(c))
	}
	return fmt.Sprintf("%s, %d cores, %d GiB RAM, Linux %s, %s",
		model, runtime.NumCPU(), si.Totalram*uint64(si.Unit)>>30, rel, runtime.Version())
}

// loadAvg is the 1-minute load average, the first field of
// /proc/loadavg (0 when it cannot be read).
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	return parseLoadAvg(string(b))
}

// parseLoadAvg reads the 1-minute figure of a /proc/loadavg line
// ("0.52 0.58 0.59 1/389 12345").
func parseLoadAvg(s string) float64 {
	f := strings.Fields(s)
	if len(f) == 0 {
		return 0
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return 0
	}
	return v
}
