package retention

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/store"
	"github.com/pibackup/pibackup/internal/store/storetest"
)

// set builds a Set from a folder name; tmp marks it in progress.
func set(t *testing.T, name string) backupset.Set {
	t.Helper()
	n, err := backupset.Parse(name)
	if err != nil {
		t.Fatal(err)
	}
	return backupset.Set{Name: n, Dir: "pi/" + name}
}

// series returns sets named pi@debian12-rsync-backup-<stamp> for each stamp
// (YYYYMMDD-HHMMSS).
func series(t *testing.T, stamps ...string) []backupset.Set {
	var out []backupset.Set
	for _, s := range stamps {
		out = append(out, set(t, "pi@debian12-rsync-backup-"+s))
	}
	return out
}

// everyDay returns one stamp a day at 03:00 from..to inclusive (YYYYMMDD).
func everyDay(t *testing.T, from, to string) []string {
	t.Helper()
	a, err := time.Parse("20060102", from)
	if err != nil {
		t.Fatal(err)
	}
	b, err := time.Parse("20060102", to)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for d := a; !d.After(b); d = d.AddDate(0, 0, 1) {
		out = append(out, d.Format("20060102")+"-030000")
	}
	return out
}

func names(sets []backupset.Set) []string {
	var out []string
	for _, s := range sets {
		out = append(out, s.String())
	}
	slices.Sort(out)
	return out
}

func stampsOf(sets []backupset.Set) []string {
	var out []string
	for _, s := range sets {
		out = append(out, s.Name.Time.Format(backupset.TimeLayout))
	}
	slices.Sort(out)
	return out
}

func at(s string) time.Time {
	t, err := time.ParseInLocation("20060102-150405", s, time.Local)
	if err != nil {
		panic(err)
	}
	return t
}

func TestSmartRecycle(t *testing.T) {
	tests := []struct {
		name   string
		now    string
		stamps []string
		smart  Smart
		want   []string // kept stamps, sorted
	}{
		{
			// Daily across the end of February in a leap year; the newest
			// of the two sets of today is the one kept.
			name:   "daily across Feb 29",
			now:    "20240302-120000",
			stamps: append(everyDay(t, "20240220", "20240302"), "20240302-010000"),
			smart:  Smart{Daily: 7},
			want: []string{"20240225-030000", "20240226-030000", "20240227-030000", "20240228-030000",
				"20240229-030000", "20240301-030000", "20240302-030000"},
		},
		{
			// 2025-01-01 is a Wednesday: the current week began Monday
			// 2024-12-30, so weeks reach back across the year boundary.
			name:   "weekly across new year",
			now:    "20250101-120000",
			stamps: everyDay(t, "20241201", "20250101"),
			smart:  Smart{Weekly: 4},
			want:   []string{"20241209-030000", "20241216-030000", "20241223-030000", "20241230-030000", "20250101-030000"},
		},
		{
			// A Sunday belongs to the week that began the Monday before.
			name:   "weekly on a Sunday",
			now:    "20240310-230000",
			stamps: []string{"20240303-030000", "20240304-030000", "20240305-030000", "20240310-030000"},
			smart:  Smart{Weekly: 1},
			want:   []string{"20240304-030000", "20240310-030000"},
		},
		{
			name: "monthly across new year keeps the oldest of each month",
			now:  "20250210-120000",
			stamps: []string{"20240915-030000", "20241001-030000", "20241015-030000", "20241101-030000",
				"20241115-030000", "20241201-030000", "20241215-030000", "20250101-030000", "20250115-030000",
				"20250201-030000", "20250205-030000"},
			smart: Smart{Monthly: 4},
			want:  []string{"20241101-030000", "20241201-030000", "20250101-030000", "20250201-030000", "20250205-030000"},
		},
		{
			// On the 31st, "one month ago" is February, not a date bug
			// that lands on March 3rd (raspiBackup's reason for the 15th).
			name:   "monthly on the 31st",
			now:    "20240331-120000",
			stamps: []string{"20240201-030000", "20240210-030000", "20240301-030000", "20240331-030000"},
			smart:  Smart{Monthly: 2},
			want:   []string{"20240201-030000", "20240301-030000", "20240331-030000"},
		},
		{
			name: "yearly",
			now:  "20250601-120000",
			stamps: []string{"20230301-030000", "20230701-030000", "20240101-030000", "20240501-030000",
				"20250201-030000", "20250501-030000"},
			smart: Smart{Yearly: 2},
			want:  []string{"20240101-030000", "20250201-030000", "20250501-030000"},
		},
		{
			// The default 7 4 12 1 over 40 daily backups ending on
			// Tuesday 2024-01-09: 7 days (01-03..01-09), weeks starting
			// 01-08, 01-01, 12-25, 12-18 (oldest: 01-08, 01-01, 12-25,
			// 12-18), months 2024-01 (01-01), 2023-12 (12-01) — 2023-11
			// has no set in range — and year 2024 (01-01).
			name:   "defaults across a year boundary",
			now:    "20240109-200000",
			stamps: everyDay(t, "20231201", "20240109"),
			smart:  DefaultSmart,
			want: []string{"20231201-030000", "20231218-030000", "20231225-030000", "20240101-030000",
				"20240103-030000", "20240104-030000", "20240105-030000", "20240106-030000",
				"20240107-030000", "20240108-030000", "20240109-030000"},
		},
		{
			// Nothing falls in any window: the newest set still stays.
			name:   "newest always kept",
			now:    "20300101-120000",
			stamps: []string{"20240101-030000", "20240102-030000"},
			smart:  Smart{Daily: 7},
			want:   []string{"20240102-030000"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sets := series(t, tt.stamps...)
			keep, remove := Plan(sets, at(tt.now), Policy{Smart: &tt.smart})
			if got := stampsOf(keep); !slices.Equal(got, tt.want) {
				t.Errorf("kept = %v\nwant   %v", got, tt.want)
			}
			if len(keep)+len(remove) != len(sets) {
				t.Errorf("kept %d + removed %d != %d sets", len(keep), len(remove), len(sets))
			}
		})
	}
}

func TestKeepN(t *testing.T) {
	mk := func(names ...string) []backupset.Set {
		var out []backupset.Set
		for _, n := range names {
			out = append(out, set(t, n))
		}
		return out
	}
	in := mk(
		"pi@debian12-rsync-backup-20240101-030000",
		"pi@debian12-rsync-backup-20240102-030000",
		"pi@debian12-rsync-backup-20240103-030000",
		"pi@debian12-rsync-backup-20240104-030000",
		"pi@debian12-rsync-backup-20240102-120000_before_update", // snapshot
		"pi@debian12-dd-backup-20240101-030000",
		"pi@debian12-dd-backup-20240102-030000",
		"pi@debian11-rsync-backup-20231201-030000", // old OS release: own series
		"pi@debian11-rsync-backup-20231202-030000",
		"pi-rsync-backup-20220101-030000", // pre-0.7 naming: own series
	)
	inProgress := set(t, "pi@debian12-rsync-backup-20240105-030000")
	inProgress.InProgress = true
	in = append(in, inProgress)

	tests := []struct {
		name       string
		policy     Policy
		wantRemove []string
	}{
		{
			name:   "keep 1",
			policy: Policy{Keep: 1},
			wantRemove: []string{
				"pi@debian11-rsync-backup-20231201-030000",
				"pi@debian12-dd-backup-20240101-030000",
				"pi@debian12-rsync-backup-20240101-030000",
				"pi@debian12-rsync-backup-20240102-030000",
				"pi@debian12-rsync-backup-20240103-030000",
			},
		},
		{
			name:       "keep 3",
			policy:     Policy{Keep: 3},
			wantRemove: []string{"pi@debian12-rsync-backup-20240101-030000"},
		},
		{
			name:   "per-type override",
			policy: Policy{Keep: 3, KeepType: map[backupset.Type]int{backupset.TypeRsync: 2, backupset.TypeDD: 0}},
			wantRemove: []string{
				"pi@debian12-rsync-backup-20240101-030000",
				"pi@debian12-rsync-backup-20240102-030000",
			},
		},
		{name: "keep all", policy: Policy{Keep: -1}},
		{name: "invalid keep 0 removes nothing", policy: Policy{Keep: 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keep, remove := Plan(in, at("20240105-120000"), tt.policy)
			if got := names(remove); !slices.Equal(got, tt.wantRemove) {
				t.Errorf("removed = %v\nwant      %v", got, tt.wantRemove)
			}
			for _, s := range remove {
				if s.InProgress || s.Name.Snapshot != "" {
					t.Errorf("removed protected set %s", s)
				}
			}
			if len(keep)+len(remove) != len(in) {
				t.Errorf("kept %d + removed %d != %d", len(keep), len(remove), len(in))
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		p  Policy
		ok bool
	}{
		{Policy{Keep: 3}, true},
		{Policy{Keep: -1}, true},
		{Policy{Keep: 0}, false},
		{Policy{Keep: -2}, false},
		{Policy{Keep: 366}, false},
		{Policy{Keep: 3, KeepType: map[backupset.Type]int{backupset.TypeDD: 400}}, false},
		{Policy{Smart: &Smart{Daily: 7}}, true},
		{Policy{Smart: &Smart{}}, false},
		{Policy{Smart: &Smart{Daily: -1, Weekly: 1}}, false},
	}
	for _, tt := range tests {
		err := tt.p.Validate()
		if (err == nil) != tt.ok {
			t.Errorf("Validate(%+v) = %v, want ok=%v", tt.p, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrPolicy) {
			t.Errorf("Validate(%+v) = %v, not ErrPolicy", tt.p, err)
		}
	}
}

func TestApply(t *testing.T) {
	root := t.TempDir()
	mkset := func(rel string) {
		t.Helper()
		d := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Join(d, "etc"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "etc", "hostname"), []byte("pi\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mkset("pi/pi@debian12-rsync-backup-20240101-030000")
	mkset("pi/pi@debian12-rsync-backup-20240102-030000")
	mkset("pi/pi@debian12-rsync-backup-20240103-030000")
	mkset("pi/pi@debian12-rsync-backup-20240102-120000_keep_me")
	// Leftover of an interrupted earlier delete: invisible to List and
	// removed by the next Apply.
	mkset("pi/tmp/pi@debian12-rsync-backup-20231231-030000" + backupset.DeletingSuffix)

	l, err := backupset.List(os.DirFS(root), ".")
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Sets) != 4 {
		t.Fatalf("listed %d sets, want 4 (the .deleting leftover must be invisible): %v", len(l.Sets), l.Sets)
	}
	_, remove := Plan(l.Sets, at("20240103-120000"), Policy{Keep: 1})
	if got := names(remove); len(got) != 2 {
		t.Fatalf("plan removes %v, want the two older unnamed sets", got)
	}
	// A snapshot slipped into the list by a buggy caller is refused.
	snap := l.Sets[slices.IndexFunc(l.Sets, func(s backupset.Set) bool { return s.Name.Snapshot != "" })]
	done, err := Apply(context.Background(), ApplyOptions{Root: root}, append(remove, snap))
	if err == nil {
		t.Error("Apply with a snapshot in the list returned no error")
	}
	if len(done) != 2 {
		t.Errorf("Apply removed %d sets, want 2", len(done))
	}
	l, err = backupset.List(os.DirFS(root), ".")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"pi@debian12-rsync-backup-20240102-120000_keep_me",
		"pi@debian12-rsync-backup-20240103-030000",
	}
	if got := names(l.Sets); !slices.Equal(got, want) {
		t.Errorf("after Apply: %v, want %v", got, want)
	}
	if left, err := os.ReadDir(filepath.Join(root, "pi", "tmp")); !os.IsNotExist(err) {
		t.Errorf("tmp/ left after Apply (%v), holding %v", err, left)
	}
}

// failRemove is a store whose RemoveAll fails for every name but a
// manifest's: a set folder that cannot be removed.
type failRemove struct{ store.Store }

func (f failRemove) RemoveAll(ctx context.Context, name string) error {
	if strings.HasSuffix(name, ".json") {
		return f.Store.RemoveAll(ctx, name)
	}
	return errors.New("server said no")
}

// TestApplyManifestFirst: on a store that cannot rename, a set's
// manifest is deleted first, so a delete that fails half-way leaves a
// set in progress (removed by the next backup run), never one that
// lists as complete.
func TestApplyManifestFirst(t *testing.T) {
	root := t.TempDir()
	names := []string{"pi@debian12-tgz-backup-20240101-030000", "pi@debian12-tgz-backup-20240102-030000"}
	for _, n := range names {
		d := filepath.Join(root, "pi", n)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{backupset.ManifestName("pi"), n + ".tgz"} {
			if err := os.WriteFile(filepath.Join(d, f), []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	dir, err := store.OpenDir(root)
	if err != nil {
		t.Fatal(err)
	}
	list := func() []backupset.Set {
		l, err := backupset.ListOptions{ManifestLast: true}.List(os.DirFS(root), ".")
		if err != nil {
			t.Fatal(err)
		}
		return l.Sets
	}
	older := list()[1]
	if older.String() != names[0] || older.InProgress {
		t.Fatalf("listing: %+v", list())
	}
	done, err := Apply(context.Background(), ApplyOptions{Store: failRemove{storetest.NoRename(dir)}}, []backupset.Set{older})
	if err == nil || len(done) != 0 {
		t.Fatalf("Apply with a failing remove: %v, done %v; want an error", err, done)
	}
	for _, s := range list() {
		if s.String() == names[0] && !s.InProgress {
			t.Errorf("a half-deleted set lists as complete: %+v", s)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "pi", names[0], backupset.ManifestName("pi"))); !os.IsNotExist(err) {
		t.Errorf("the manifest of the half-deleted set is still there: %v", err)
	}

	done, err = Apply(context.Background(), ApplyOptions{Store: storetest.NoRename(dir)}, []backupset.Set{older})
	if err != nil || len(done) != 1 {
		t.Fatalf("Apply: %v, done %v", err, done)
	}
	if got := list(); len(got) != 1 || got[0].String() != names[1] || got[0].InProgress {
		t.Errorf("after Apply: %+v; want only %s", got, names[1])
	}
}

func TestApplyCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s := set(t, "pi@debian12-rsync-backup-20240101-030000")
	done, err := Apply(ctx, ApplyOptions{Root: t.TempDir()}, []backupset.Set{s})
	if !errors.Is(err, context.Canceled) || len(done) != 0 {
		t.Errorf("Apply(cancelled) = %v, %v; want nothing done and context.Canceled", done, err)
	}
}
