//go:build !race

package qemutests

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/testfs"
)

// The soak's rules. Night n (from 1) is the day soakStart+n-1; backupctl
// runs the backups the fixture's timers would start that night, each
// with the test clock (PIBACKUP_TEST_NOW) at its time:
//
//   - dd at 02:00 on the 1st of a month ("*-*-01 02:00"),
//   - tgz at 02:30 on Sundays ("Sun *-*-* 02:30"),
//   - rsync at 03:00 every night ("*-*-* 03:00"),
//   - and on night 1 every type, as a newly set-up Pi takes its first
//     backups (so the short form has a set of each type).
//
// Smart recycle is on with daily 1, weekly 4, monthly 12, yearly 1 (per
// type: each type is its own series): the last night, the oldest set of
// each of the last 4 weeks, of each of the last 12 months, and of this
// year. Starting on Tuesday 3 February 2026, the 3-night short form
// removes the rsync set of night 2 (neither the newest nor the oldest of
// its week or month), and 30 nights end on Wednesday 4 March having
// crossed a 1st (a second dd) and several weeks.
//
// backupctl stops the service (soakload serve, a SQLite database in WAL
// mode taking inserts) with its stop command and starts it again; the
// writer of an append-only log with checksummed lines (soakload log) goes
// on through every backup.
var soakStart = time.Date(2026, 2, 3, 0, 0, 0, 0, time.UTC)

const soakSmart = "1 4 12 1" // daily weekly monthly yearly

// maxDDRead bounds what a live dd may make the card deliver, as a
// multiple of the bytes its filesystems use (used_bytes: the root's
// blocks in use, journal and inode tables included, and the FAT's used
// clusters). Issue 16 asks for 1.2. The fixture's dd reads 1.08: of its
// 86.7 MiB, 80.2 MiB are the used bytes, 4 MiB the gap before the first
// partition, 1 MiB the FAT's reserved sectors and two tables (not
// clusters, so not in used_bytes), and 1.5 MiB the allocation maps read
// before the copy (the FAT through the disk and through its partition,
// the ext4 bitmaps), which the copy reads again. Those 6.5 MiB are fixed:
// on a Pi root of some GB they vanish. Before imageio dropped the
// source's cached pages the figure was 1.28 (readahead started by pages
// the plan had read: 14 MiB of free FAT), and with the kernel's
// readahead on the copy itself 1.70; both fail this bound.
const maxDDRead = 1.2

// soakSchedule is the plan of nights nights.
func soakSchedule(nights int) []soakPlanBackup {
	var out []soakPlanBackup
	for n := 1; n <= nights; n++ {
		day := soakStart.AddDate(0, 0, n-1)
		at := func(h, m int) string {
			return day.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute).Format(time.RFC3339)
		}
		if n == 1 || day.Day() == 1 {
			out = append(out, soakPlanBackup{Night: n, Type: "dd", Now: at(2, 0)})
		}
		if n == 1 || day.Weekday() == time.Sunday {
			out = append(out, soakPlanBackup{Night: n, Type: "tgz", Now: at(2, 30)})
		}
		out = append(out, soakPlanBackup{Night: n, Type: "rsync", Now: at(3, 0)})
	}
	return out
}

// soakPlanBackup is one backup of the plan the fixture's driver
// (markerinit's soak) reads from the backup disk.
type soakPlanBackup struct {
	Night int    `json:"night"`
	Type  string `json:"type"`
	Now   string `json:"now"`
}

// soakKept is the smart recycle rule, said the other way round from
// internal/retention (which picks, per rule, the sets to keep): a set of
// one type survives the last run when it is the newest of its type, or
// its day is the last day (daily 1), or it is the first of its type in
// its Monday-Sunday week and that week is one of the last 4, or the first
// in its month and that month one of the last 12, or the first of its
// year. Sets only ever leave, and a set the rules keep at the end was
// kept at every earlier run, so the end state follows from the whole
// history and the last day alone.
func soakKept(days []time.Time, now time.Time) []time.Time {
	monday := func(d time.Time) time.Time { return d.AddDate(0, 0, -((int(d.Weekday()) + 6) % 7)) }
	months := func(d time.Time) int { return d.Year()*12 + int(d.Month()) }
	first := func(d time.Time, same func(a, b time.Time) bool) bool {
		for _, e := range days {
			if e.Before(d) && same(e, d) {
				return false
			}
		}
		return true
	}
	var out []time.Time
	for i, d := range days {
		weeksAgo := int(monday(now).Sub(monday(d)).Hours()+1) / (24 * 7)
		keep := i == len(days)-1 || d.Equal(now) ||
			(weeksAgo < 4 && first(d, func(a, b time.Time) bool { return monday(a).Equal(monday(b)) })) ||
			(months(now)-months(d) < 12 && first(d, func(a, b time.Time) bool { return months(a) == months(b) })) ||
			(d.Year() == now.Year() && first(d, func(a, b time.Time) bool { return a.Year() == b.Year() }))
		if keep {
			out = append(out, d)
		}
	}
	return out
}

func TestSoakKept(t *testing.T) {
	day := func(s string) time.Time { d, _ := time.Parse("2006-01-02", s); return d }
	var days []time.Time
	for d := day("2026-02-03"); !d.After(day("2026-03-04")); d = d.AddDate(0, 0, 1) {
		days = append(days, d)
	}
	var got []string
	for _, d := range soakKept(days, day("2026-03-04")) {
		got = append(got, d.Format("01-02"))
	}
	// Worked out by hand from the rules above.
	want := []string{"02-03", "02-09", "02-16", "02-23", "03-01", "03-02", "03-04"}
	if !slices.Equal(got, want) {
		t.Errorf("rsync sets kept after 30 nights: %v; want %v", got, want)
	}
}

// soakRecord is a backup as the fixture reported it
// (PIBACKUP-SOAK-BACKUP on its console).
type soakRecord struct {
	soakPlanBackup
	RC        int     `json:"rc"`
	Seconds   float64 `json:"seconds"`
	UsedBytes int64   `json:"used_bytes"`
	// SourceBytesRead is what the fixture's disk delivered during the
	// run (its sysfs counters, the programs read into the cache first).
	SourceBytesRead int64 `json:"source_bytes_read"`
	LastRun         struct {
		Set          string `json:"set"`
		OK           bool   `json:"ok"`
		BytesRead    int64  `json:"bytes_read"`
		BytesWritten int64  `json:"bytes_written"`
		PeakRSS      int64  `json:"peak_rss_bytes"`
	} `json:"last_run"`
	Pause struct {
		Rows     int64  `json:"rows"`
		DBSHA256 string `json:"db_sha256"`
	} `json:"pause"`
}

// soakFigure is one object of out/soak.json.
type soakFigure struct {
	Night   int     `json:"night"`
	Type    string  `json:"type"`
	Set     string  `json:"set"`
	Seconds float64 `json:"seconds"`
	// BytesRead and BytesWritten are backupctl's own figures (its state
	// file): the storage I/O of backupctl and its tools, the backup disk
	// included (the new set is read back to verify it).
	BytesRead    int64 `json:"bytes_read"`
	BytesWritten int64 `json:"bytes_written"`
	// SourceBytesRead is what the fixture's disk delivered during the
	// backup: the figure a used-blocks dd is judged by.
	SourceBytesRead int64 `json:"source_bytes_read"`
	// UsedBytes is what the source filesystems had in use when the
	// backup started, their metadata (journal, inode tables) included.
	UsedBytes  int64 `json:"used_bytes"`
	PeakRSS    int64 `json:"peak_rss_bytes"`
	RestoredOK *bool `json:"restored_ok"`
}

// soakNights is SOAK_NIGHTS, 3 by default (the short form in make test).
func soakNights(t *testing.T) int {
	s := os.Getenv("SOAK_NIGHTS")
	if s == "" {
		return 3
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("SOAK_NIGHTS=%q: want a number of nights ≥ 1", s)
	}
	return n
}

// TestSoak runs the fixture Pi night after night in QEMU (the rules are
// at soakStart), then checks that the sets left are exactly those the
// retention rules keep, restores the newest set of each type and the
// oldest rsync set with the host's backupctl, judges each restore (fsck,
// the database's integrity_check and its state at the service's stop,
// the log up to a clean line), boots the newest of each type, and writes
// the per-backup figures to out/soak.json (SOAK_JSON overrides).
func TestSoak(t *testing.T) {
	a := requireArtifacts(t)
	nights := soakNights(t)
	tools := liveTools(t, a)
	hostLoad := soakloadTools(t, a, tools)
	work := t.TempDir()
	fx := fixture(t, a, work)
	soakInstall(t, fx, work, tools)

	plan := soakSchedule(nights)
	backups := filepath.Join(work, "backups.img")
	mkImage(t, backups, 4<<30)
	seed := filepath.Join(work, "seed")
	if err := os.MkdirAll(filepath.Join(seed, "backups"), 0o700); err != nil {
		t.Fatal(err)
	}
	pj, _ := json.Marshal(map[string]any{"host": "pi-under-test", "backups": plan})
	if err := os.WriteFile(filepath.Join(seed, "soak-plan.json"), pj, 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, "mkfs.ext4", "-q", "-d", seed, backups)

	recs := soakRun(t, a, fx, work, backups, len(plan))

	bdev := testfs.AttachLoop(t, backups, 0, 0, true)
	bmnt := filepath.Join(work, "bmnt")
	os.Mkdir(bmnt, 0o755)
	run(t, "mount", "-o", "ro", bdev, bmnt)
	t.Cleanup(func() { exec.Command("umount", bmnt).Run() })
	l, err := backupset.List(os.DirFS(bmnt), "backups")
	if err != nil {
		t.Fatal(err)
	}
	byType := map[string][]backupset.Set{}
	for _, s := range l.Sets {
		if s.InProgress {
			t.Errorf("set left in progress: %s", s.Dir)
			continue
		}
		byType[string(s.Name.Type)] = append(byType[string(s.Name.Type)], s)
	}
	last, _ := time.Parse(time.RFC3339, plan[len(plan)-1].Now)
	lastDay := last.Truncate(24 * time.Hour)
	for _, typ := range []string{"dd", "tgz", "rsync"} {
		var days, have []time.Time
		for _, b := range plan {
			if b.Type == typ {
				at, _ := time.Parse(time.RFC3339, b.Now)
				days = append(days, at.Truncate(24*time.Hour))
			}
		}
		sets := byType[typ]
		backupset.Sort(sets)
		slices.Reverse(sets) // oldest first
		byType[typ] = sets
		for _, s := range sets {
			have = append(have, s.Name.Time.Truncate(24*time.Hour))
		}
		want := soakKept(days, lastDay)
		if !slices.EqualFunc(have, want, time.Time.Equal) {
			t.Errorf("%s sets after %d nights are of days %v; the rules keep %v", typ, nights, dates(have), dates(want))
		} else {
			t.Logf("%s: %d backups taken, %d kept as the rules say: %v", typ, len(days), len(have), dates(have))
		}
	}

	// The sets to restore: the newest of each type, and the oldest rsync
	// set (rsync sets hardlink to older ones: the oldest is the one
	// retention has changed most around).
	type restoreCase struct {
		set  backupset.Set
		boot bool
	}
	var cases []restoreCase
	for _, typ := range []string{"dd", "tgz", "rsync"} {
		if ss := byType[typ]; len(ss) > 0 {
			cases = append(cases, restoreCase{ss[len(ss)-1], true})
		}
	}
	if ss := byType["rsync"]; len(ss) > 1 {
		cases = append(cases, restoreCase{ss[0], false})
	}
	restored := map[string]bool{}
	for _, c := range cases {
		name := c.set.String()
		rec := findRecord(recs, name)
		restored[name] = t.Run("restore-"+name, func(t *testing.T) {
			if rec == nil {
				t.Fatalf("no record of the backup that made %s", name)
			}
			soakRestore(t, a, hostLoad, work, filepath.Join(bmnt, c.set.Dir), rec, fx, c.boot)
		})
	}

	var figs []soakFigure
	for _, r := range recs {
		f := soakFigure{Night: r.Night, Type: r.Type, Set: r.LastRun.Set, Seconds: r.Seconds, BytesRead: r.LastRun.BytesRead,
			BytesWritten: r.LastRun.BytesWritten, SourceBytesRead: r.SourceBytesRead, UsedBytes: r.UsedBytes, PeakRSS: r.LastRun.PeakRSS}
		if ok, was := restored[r.LastRun.Set]; was {
			f.RestoredOK = &ok
		}
		figs = append(figs, f)
		if r.Type == "dd" && (r.SourceBytesRead <= 0 || float64(r.SourceBytesRead) > maxDDRead*float64(r.UsedBytes)) {
			t.Errorf("night %d: the live dd read %d bytes of the card, more than %.2f × the %d bytes in use", r.Night, r.SourceBytesRead, maxDDRead, r.UsedBytes)
		}
	}
	writeSoakFigures(t, figs)
}

func dates(ds []time.Time) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Format("2006-01-02"))
	}
	return out
}

func findRecord(recs []soakRecord, set string) *soakRecord {
	for i := range recs {
		if recs[i].LastRun.Set == set {
			return &recs[i]
		}
	}
	return nil
}

// soakloadTools builds soakload for the guest into tools (it is part of
// the system backed up) and for the host, whose copy judges restores.
func soakloadTools(t *testing.T, a *artifacts, tools string) string {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	host := filepath.Join(a.dir, "soakload")
	for _, b := range []struct{ out, arch string }{
		{filepath.Join(tools, "usr", "local", "sbin", "soakload"), "arm64"},
		{host, ""},
	} {
		if _, err := os.Stat(b.out); err == nil {
			continue
		}
		cmd := exec.Command("go", "build", "-trimpath", "-o", b.out, "./qemu-tests/soakload")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b.arch != "" {
			cmd.Env = append(cmd.Env, "GOARCH="+b.arch)
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build soakload: %v\n%s", err, out)
		}
	}
	return host
}

// soakInstall puts the tools, the workload's folders and backupctl's
// configuration into the fixture root, and stale data into its free
// space (a dd that read free blocks would carry it).
func soakInstall(t *testing.T, fx *testfs.PiDisk, work, tools string) {
	t.Helper()
	dev := testfs.AttachLoop(t, fx.Path, fx.RootStart, fx.RootSize, false)
	mnt := filepath.Join(work, "rootmnt")
	os.Mkdir(mnt, 0o755)
	run(t, "mount", dev, mnt)
	mounted := true
	t.Cleanup(func() {
		if mounted {
			exec.Command("umount", mnt).Run()
		}
	})
	run(t, "cp", "-a", "--no-preserve=timestamps", tools+"/.", mnt+"/")
	for _, d := range []string{"var/lib/soakload", "var/log/soakload", "etc/backupctl"} {
		if err := os.MkdirAll(filepath.Join(mnt, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	smart := strings.Fields(soakSmart)
	conf := fmt.Sprintf(`# The soak test's backupctl configuration.
backup-path = "/mnt/backups"
stop-commands = ["/usr/local/sbin/soakload pause -state /run/soakload"]
start-commands = ["/usr/local/sbin/soakload resume -state /run/soakload"]

[smart-recycle]
enabled = true
daily = %s
weekly = %s
monthly = %s
yearly = %s
`, smart[0], smart[1], smart[2], smart[3])
	if err := os.WriteFile(filepath.Join(mnt, "etc", "backupctl", "backupctl.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, "dd", "if=/dev/urandom", "of="+filepath.Join(mnt, "stale.bin"), "bs=1M", "count=64", "status=none")
	run(t, "sync")
	run(t, "rm", filepath.Join(mnt, "stale.bin"))
	run(t, "umount", mnt)
	mounted = false
	if err := fx.Fsck(); err != nil {
		t.Fatal(err)
	}
}

// soakRun boots the fixture with pibackup.soak and collects the records of
// its want backups.
func soakRun(t *testing.T, a *artifacts, fx *testfs.PiDisk, work, backups string, want int) []soakRecord {
	t.Helper()
	cfg := VMConfig{Arch: "arm64", Kernel: a.boot.Kernel, LogPath: filepath.Join(work, "soak-console.log"), MemMiB: 1024,
		Append: strings.TrimSpace(fx.Cmdline) + " console=ttyAMA0 pibackup.soak",
		// Not snapshot mode: the fixture lives on from night to night.
		Drives: []Drive{{Path: fx.Path}, {Path: backups}}}
	// A deadline, not a timing assumption: generous per backup under TCG
	// on a loaded machine.
	took := runToEnd(t, cfg, regexp.MustCompile(`PIBACKUP-SOAK-DONE rc=(-?\d+)`), 2*time.Minute+time.Duration(want)*4*time.Minute)
	t.Logf("soak in the guest: %d backups in %s", want, took.Round(time.Second))
	console, err := os.ReadFile(cfg.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	var recs []soakRecord
	for _, m := range regexp.MustCompile(`PIBACKUP-SOAK-BACKUP (\{.*\})`).FindAllStringSubmatch(string(console), -1) {
		var r soakRecord
		if err := json.Unmarshal([]byte(m[1]), &r); err != nil {
			t.Fatalf("record %s: %v", m[1], err)
		}
		recs = append(recs, r)
	}
	if len(recs) != want {
		t.Fatalf("%d backup records on the console; want %d", len(recs), want)
	}
	return recs
}

// soakRestore restores set onto a new image with the host's backupctl
// and judges it: both filesystems pass fsck; the database passes
// integrity_check and is the one the service left at its stop for this
// backup; the log verifies up to a clean line. boot boots it too.
func soakRestore(t *testing.T, a *artifacts, hostLoad, work, set string, rec *soakRecord, fx *testfs.PiDisk, boot bool) {
	dir := filepath.Join(work, "restore-"+filepath.Base(set))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(dir, "target.img")
	fi, err := os.Stat(fx.Path)
	if err != nil {
		t.Fatal(err)
	}
	mkImage(t, target, fi.Size()*3/2)
	run(t, a.backupctl, "restore", set, "--to", target, "--yes")
	pd := fsckRestored(t, target)
	dev := testfs.AttachLoop(t, target, pd.RootStart, pd.RootSize, true)
	mnt := filepath.Join(dir, "root")
	os.Mkdir(mnt, 0o755)
	run(t, "mount", "-o", "ro", dev, mnt)
	out, err := exec.Command(hostLoad, "check", "-root", mnt, "-rows", strconv.FormatInt(rec.Pause.Rows, 10), "-sha256", rec.Pause.DBSHA256).CombinedOutput()
	exec.Command("umount", mnt).Run()
	if err != nil {
		t.Fatalf("%s (night %d): %v\n%s", filepath.Base(set), rec.Night, err, out)
	}
	t.Logf("%s: %s", filepath.Base(set), strings.TrimSpace(string(out)))
	if boot {
		bootRestored(t, a, dir, target)
	}
}

// writeSoakFigures writes the figures as JSON and logs a summary table.
func writeSoakFigures(t *testing.T, figs []soakFigure) {
	t.Helper()
	path := os.Getenv("SOAK_JSON")
	if path == "" {
		root, err := moduleRoot()
		if err != nil {
			t.Fatal(err)
		}
		path = filepath.Join(root, "out", "soak.json")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	b, _ := json.MarshalIndent(figs, "", "  ")
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	w := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "night\ttype\tseconds\tread MiB\twritten MiB\tcard read MiB\tused MiB\tcard/used\tpeak RSS MiB\trestored\t")
	mib := func(n int64) string { return fmt.Sprintf("%.1f", float64(n)/(1<<20)) }
	for _, f := range figs {
		ok := "-"
		if f.RestoredOK != nil {
			ok = strconv.FormatBool(*f.RestoredOK)
		}
		ratio := 0.0
		if f.UsedBytes > 0 {
			ratio = float64(f.SourceBytesRead) / float64(f.UsedBytes)
		}
		fmt.Fprintf(w, "%d\t%s\t%.1f\t%s\t%s\t%s\t%s\t%.2f\t%s\t%s\t\n", f.Night, f.Type, f.Seconds, mib(f.BytesRead), mib(f.BytesWritten), mib(f.SourceBytesRead), mib(f.UsedBytes), ratio, mib(f.PeakRSS), ok)
	}
	w.Flush()
	t.Logf("soak figures (%s):\n%s", path, sb.String())
}
