// Package retention decides which backup sets to delete after a
// successful backup, with raspiBackup's two strategies, and deletes them so
// that an interrupted delete never leaves a half set that looks complete.
//
// Plan is pure: it takes the listing and the clock and returns a decision,
// so a dry run is Plan without Apply and can never skip the backup itself
// (raspiBackup's --smartRecycle with the default DRYRUN=1 takes no backup
// at all, its gotcha #1).
//
// Scope is backupset.Name.Series(): same host, OS release and type, as in
// raspiBackup. Unlike raspiBackup, sets of an older OS release (or of the
// pre-0.7 naming without @release) form their own series and are pruned
// by the same rules, so an OS upgrade no longer leaves an old chain that
// grows forever (raspiBackup #791); the newest set of every series is
// always kept, so that chain shrinks but never disappears.
package retention

import (
	"errors"
	"fmt"
	"time"

	"github.com/pibackup/pibackup/internal/backupset"
)

// Policy says how many sets to keep.
type Policy struct {
	// Keep is raspiBackup's -k: the number of sets kept per series; -1
	// keeps all. 0 is invalid (raspiBackup rejects it too).
	Keep int
	// KeepType overrides Keep for one type (--keep_<type>,
	// DEFAULT_KEEPBACKUPS_<TYPE>); a missing or 0 entry means "use Keep".
	KeepType map[backupset.Type]int
	// Smart, when not nil, replaces keep-N by smart recycling.
	Smart *Smart
}

// Smart is raspiBackup's smart recycle ("d w m y", --smartRecycleOptions).
type Smart struct {
	Daily, Weekly, Monthly, Yearly int
}

// DefaultSmart is raspiBackup's code default "7 4 12 1".
var DefaultSmart = Smart{Daily: 7, Weekly: 4, Monthly: 12, Yearly: 1}

// DefaultKeep is raspiBackup's DEFAULT_KEEPBACKUPS.
const DefaultKeep = 3

// maxKeep is raspiBackup's upper limit for -k and each smart value.
const maxKeep = 365

// ErrPolicy is wrapped by Validate's errors.
var ErrPolicy = errors.New("invalid retention policy")

// Validate checks the ranges raspiBackup enforces.
func (p Policy) Validate() error {
	check := func(what string, n int) error {
		if n == 0 || n < -1 || n > maxKeep {
			return fmt.Errorf("%w: %s = %d (want 1..%d, or -1 to keep all)", ErrPolicy, what, n, maxKeep)
		}
		return nil
	}
	if p.Smart == nil {
		if err := check("keep", p.Keep); err != nil {
			return err
		}
	}
	for t, n := range p.KeepType {
		if n == 0 {
			continue
		}
		if err := check("keep-"+string(t), n); err != nil {
			return err
		}
	}
	if s := p.Smart; s != nil {
		for _, v := range []struct {
			what string
			n    int
		}{{"daily", s.Daily}, {"weekly", s.Weekly}, {"monthly", s.Monthly}, {"yearly", s.Yearly}} {
			if v.n < 0 || v.n > maxKeep {
				return fmt.Errorf("%w: smart recycle %s = %d (want 0..%d)", ErrPolicy, v.what, v.n, maxKeep)
			}
		}
		if s.Daily+s.Weekly+s.Monthly+s.Yearly == 0 {
			return fmt.Errorf("%w: smart recycle keeps nothing (all of daily, weekly, monthly, yearly are 0)", ErrPolicy)
		}
	}
	return nil
}

// keepFor is raspiBackup's rule: KEEPBACKUPS_<TYPE> if not 0, else KEEPBACKUPS.
func (p Policy) keepFor(t backupset.Type) int {
	if n := p.KeepType[t]; n != 0 {
		return n
	}
	return p.Keep
}

// Plan splits sets into those to keep and those to remove. now is the
// time of the run; its calendar date (in its own location) is "today" for
// smart recycling, compared with the wall-clock date in each set name.
//
// Never removed, whatever the policy: named snapshots (-M, "_" in the
// name), sets in progress (<host>/tmp/), and the newest set of each series.
// Sets are returned newest first in both lists. An invalid policy removes
// nothing; call Validate first to report it.
func Plan(sets []backupset.Set, now time.Time, policy Policy) (keep, remove []backupset.Set) {
	if policy.Validate() != nil {
		keep = append(keep, sets...)
		backupset.Sort(keep)
		return keep, nil
	}
	series := map[string][]backupset.Set{}
	var order []string
	for _, s := range sets {
		if s.InProgress || s.Name.Snapshot != "" {
			keep = append(keep, s)
			continue
		}
		k := s.Name.Series()
		if _, ok := series[k]; !ok {
			order = append(order, k)
		}
		series[k] = append(series[k], s)
	}
	for _, k := range order {
		ss := series[k]
		backupset.Sort(ss) // newest first
		var kept map[int]bool
		if policy.Smart != nil {
			kept = smartKeep(ss, now, *policy.Smart)
		} else {
			kept = keepN(ss, policy.keepFor(ss[0].Name.Type))
		}
		kept[0] = true // the newest set of a series is never removed
		for i, s := range ss {
			if kept[i] {
				keep = append(keep, s)
			} else {
				remove = append(remove, s)
			}
		}
	}
	backupset.Sort(keep)
	backupset.Sort(remove)
	return keep, remove
}

// keepN keeps the n newest of ss (sorted newest first); -1 keeps all.
func keepN(ss []backupset.Set, n int) map[int]bool {
	kept := map[int]bool{}
	for i := range ss {
		if n < 0 || i < n {
			kept[i] = true
		}
	}
	return kept
}

// day is a calendar date without a location, so that comparisons do not
// depend on the zone the set times were parsed in.
type day struct {
	y int
	m time.Month
	d int
}

func dayOf(t time.Time) day {
	y, m, d := t.Date()
	return day{y, m, d}
}

// add moves a day by n days through the proleptic calendar (UTC noon
// avoids any DST question).
func (d day) add(n int) day {
	return dayOf(time.Date(d.y, d.m, d.d+n, 12, 0, 0, 0, time.UTC))
}

func (d day) weekday() time.Weekday {
	return time.Date(d.y, d.m, d.d, 12, 0, 0, 0, time.UTC).Weekday()
}

func (d day) before(e day) bool {
	if d.y != e.y {
		return d.y < e.y
	}
	if d.m != e.m {
		return d.m < e.m
	}
	return d.d < e.d
}

// monthIndex counts months since year 0, so "i months ago" is exact
// arithmetic; raspiBackup anchors on the 15th to dodge date(1)'s
// "1 month ago" bug on the 31st, which integer months avoid altogether.
func monthIndex(y int, m time.Month) int { return y*12 + int(m) - 1 }

// smartKeep applies raspiBackup's smart recycle rules to ss (one series,
// newest first) and returns the indices to keep:
//   - daily:   for i in 0..d-1, the newest set of day today-i;
//   - weekly:  for i in 0..w-1, the oldest set in the Monday–Sunday week
//     that is i weeks before the current one;
//   - monthly: for i in 0..m-1, the oldest set of the month i months ago;
//   - yearly:  for i in 0..y-1, the oldest set of the year i years ago.
//
// The kept set is the union.
func smartKeep(ss []backupset.Set, now time.Time, p Smart) map[int]bool {
	kept := map[int]bool{}
	today := dayOf(now)
	days := make([]day, len(ss))
	for i, s := range ss {
		days[i] = dayOf(s.Name.Time)
	}
	// newest matching index: ss is newest first, so the first match.
	newest := func(match func(day) bool) {
		for i, d := range days {
			if match(d) {
				kept[i] = true
				return
			}
		}
	}
	// oldest matching index: the last match.
	oldest := func(match func(day) bool) {
		for i := len(days) - 1; i >= 0; i-- {
			if match(days[i]) {
				kept[i] = true
				return
			}
		}
	}
	for i := 0; i < p.Daily; i++ {
		want := today.add(-i)
		newest(func(d day) bool { return d == want })
	}
	// Monday of the current week; Go's Sunday is 0, ISO's is 7.
	offset := (int(today.weekday()) + 6) % 7
	monday := today.add(-offset)
	for i := 0; i < p.Weekly; i++ {
		from := monday.add(-7 * i)
		to := from.add(7) // exclusive
		oldest(func(d day) bool { return !d.before(from) && d.before(to) })
	}
	thisMonth := monthIndex(today.y, today.m)
	for i := 0; i < p.Monthly; i++ {
		want := thisMonth - i
		oldest(func(d day) bool { return monthIndex(d.y, d.m) == want })
	}
	for i := 0; i < p.Yearly; i++ {
		want := today.y - i
		oldest(func(d day) bool { return d.y == want })
	}
	return kept
}
