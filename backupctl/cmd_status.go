package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pibackup/pibackup/internal/backuprun"
	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/config"
	"github.com/pibackup/pibackup/internal/i18n"
	"github.com/pibackup/pibackup/internal/store"
)

// readHostState reads the state file (backupset.StateFile) of the local
// host folder hostDir.
func readHostState(hostDir string) (backupset.State, error) {
	return backupset.ReadState(os.ReadFile, filepath.Join(hostDir, backupset.StateFile))
}

// updateHostState reads, changes and atomically rewrites the state file
// of the local host folder hostDir.
func updateHostState(hostDir string, change func(*backupset.State)) error {
	p := filepath.Join(hostDir, backupset.StateFile)
	b, err := backupset.UpdateState(os.ReadFile, p, change)
	if err != nil {
		return err
	}
	return backuprun.WriteFileAtomic(p, b, 0o644)
}

// recordRestoreTest records that setDir (BACKUPDIR/<host>/<set>) was
// restored as a test. `backupctl restore` calls it after a successful
// restore.
func recordRestoreTest(setDir, how string, now time.Time) error {
	setDir = filepath.Clean(setDir)
	if _, err := backupset.Parse(filepath.Base(setDir)); err != nil {
		return fmt.Errorf("record test restore: %w", err)
	}
	return updateHostState(filepath.Dir(setDir), func(s *backupset.State) {
		s.LastRestoreTest = &backupset.RestoreRecord{Time: now, Set: filepath.Base(setDir), How: how}
	})
}

// statusOptions are the flags of `backupctl status`.
type statusOptions struct {
	cfg          *config.Flags
	remindMonths int
	record       string
	systemctl    string
}

func (a *app) newStatusCmd() *cobra.Command {
	var o statusOptions
	cmd := &cobra.Command{
		Use:   "status [flags] BACKUPDIR",
		Short: "Show the last run, the sets per type, the next timer run and the restore-test reminder",
		Long: `For each host in BACKUPDIR (a backup folder or one host's folder), print
the last backup run and its result, the complete sets per type, and a
reminder when no test restore was recorded within --remind-months
(default 6). With systemd, the next run of backupctl.timer is shown too.

A backup is only as good as its restore: restore a set onto a spare card
from time to time. ` + "`backupctl restore`" + ` records it; a test restore made
another way is recorded with --record-restore-test SETDIR.
BACKUPDIR may be a server's folder (sftp://, smb://, s3://).

Examples:
  backupctl status /mnt/backup
  backupctl status --record-restore-test /mnt/backup/pi/pi@debian12-rsync-backup-20250101-030000 /mnt/backup
` + exitStatusHelp,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := a.loadConfig(o.cfg)
			if err != nil {
				return err
			}
			o.remindMonths = l.Config.RemindMonths
			lang, err := i18n.Pick(l.Config.Lang, os.Getenv)
			if err != nil {
				return withCode(exitUsage, err)
			}
			return a.runStatus(cmd.Context(), args[0], o, i18n.New(lang), a.now())
		},
	}
	o.cfg = config.AddFlags(cmd.Flags(), config.CmdStatus)
	cmd.Flags().StringVar(&o.record, "record-restore-test", "", "record that this set folder was restored as a test, now")
	cmd.Flags().StringVar(&o.systemctl, "systemctl", "systemctl", "systemctl binary for the next timer run")
	_ = cmd.Flags().MarkHidden("systemctl")
	return cmd
}

// hostStatus is what status knows about one host.
type hostStatus struct {
	host  string
	dir   string
	sets  []backupset.Set
	state backupset.State
}

func (a *app) runStatus(ctx context.Context, dir string, o statusOptions, msg *i18n.Printer, now time.Time) error {
	if store.IsURL(dir) {
		return a.runStatusURL(ctx, dir, o, msg, now)
	}
	root, err := filepath.Abs(dir)
	if err != nil {
		return withCode(exitUsage, err)
	}
	if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
		return preflight(fmt.Errorf("status: %s is not a folder", dir))
	}
	if o.record != "" {
		if err := recordRestoreTest(o.record, "recorded by hand", now); err != nil {
			return withCode(exitUsage, err)
		}
		fmt.Fprintln(a.stdout, msg.Sprintf(i18n.StatusRestoreMarked, filepath.Base(filepath.Clean(o.record)), now.Format(time.DateTime)))
	}
	hosts, err := collectHosts(os.DirFS(root), filepath.Base(root), backupset.ListOptions{}, func(hostDir string) (backupset.State, error) {
		return readHostState(filepath.Join(root, filepath.FromSlash(hostDir)))
	})
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	a.printStatus(ctx, hosts, o, msg, now)
	return nil
}

// runStatusURL is status of a server's folder.
func (a *app) runStatusURL(ctx context.Context, dir string, o statusOptions, msg *i18n.Printer, now time.Time) error {
	st, err := a.openStore(ctx, dir, nil, o.cfg)
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	defer st.Close()
	if o.record != "" {
		parent, set := splitURL(o.record)
		_, host := splitURL(parent)
		if _, err := backupset.Parse(set); err != nil || strings.TrimRight(dir, "/")+"/"+host+"/"+set != strings.TrimRight(o.record, "/") {
			return withCode(exitUsage, fmt.Errorf("record test restore: %s is not a set in %s", store.Redact(o.record), store.Redact(dir)))
		}
		if err := updateHostStateIn(ctx, st, host, func(s *backupset.State) {
			s.LastRestoreTest = &backupset.RestoreRecord{Time: now, Set: set, How: "recorded by hand"}
		}); err != nil {
			return fmt.Errorf("record test restore: %w", err)
		}
		fmt.Fprintln(a.stdout, msg.Sprintf(i18n.StatusRestoreMarked, set, now.Format(time.DateTime)))
	}
	_, rootName := splitURL(dir)
	hosts, err := collectHosts(st.FS(), rootName, listOptions(st), func(hostDir string) (backupset.State, error) {
		return readHostStateIn(st, hostDir)
	})
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	a.printStatus(ctx, hosts, o, msg, now)
	return nil
}

func (a *app) printStatus(ctx context.Context, hosts []*hostStatus, o statusOptions, msg *i18n.Printer, now time.Time) {
	for _, h := range hosts {
		printHostStatus(a.stdout, h, o.remindMonths, msg, now)
	}
	if next, ok := nextTimerRun(ctx, o.systemctl); ok {
		fmt.Fprintln(a.stdout, msg.Sprintf(i18n.StatusNextRun, next))
	} else {
		fmt.Fprintln(a.stdout, msg.Sprintf(i18n.StatusNoTimer))
	}
}

// collectHosts finds the hosts in the backup folder fsys (or fsys is
// one host's folder): those with sets and those with only a state file
// (every run failed). read reads the state file of a host folder.
// rootName is the name of fsys's folder, the host's if it is one.
func collectHosts(fsys fs.FS, rootName string, lo backupset.ListOptions, read func(hostDir string) (backupset.State, error)) ([]*hostStatus, error) {
	l, err := lo.List(fsys, ".")
	if err != nil {
		return nil, err
	}
	byDir := map[string]*hostStatus{}
	add := func(hostDir, host string) *hostStatus {
		h, ok := byDir[hostDir]
		if !ok {
			h = &hostStatus{host: host, dir: hostDir}
			byDir[hostDir] = h
		}
		return h
	}
	for _, s := range l.Sets {
		if s.InProgress {
			continue
		}
		h := add(path.Dir(s.Dir), s.Name.Host)
		h.sets = append(h.sets, s)
	}
	candidates := []string{"."}
	if es, err := fs.ReadDir(fsys, "."); err == nil {
		for _, e := range es {
			if e.IsDir() {
				candidates = append(candidates, e.Name())
			}
		}
	}
	for _, d := range candidates {
		if _, err := fs.Stat(fsys, path.Join(d, backupset.StateFile)); err == nil {
			host := d
			if d == "." {
				host = rootName
			}
			add(d, host)
		}
	}
	var out []*hostStatus
	for _, h := range byDir {
		h.state, err = read(h.dir)
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].host < out[j].host })
	return out, nil
}

func printHostStatus(w io.Writer, h *hostStatus, remindMonths int, msg *i18n.Printer, now time.Time) {
	fmt.Fprintln(w, msg.Sprintf(i18n.StatusHost, h.host))
	if r := h.state.LastRun; r != nil {
		fmt.Fprintln(w, msg.Sprintf(i18n.StatusLastRun, r.End.Local().Format(time.DateTime), r.End.Sub(r.Start).Round(time.Second)))
		if r.OK {
			fmt.Fprintln(w, msg.Sprintf(i18n.StatusResultOK, r.Set))
		} else {
			fmt.Fprintln(w, msg.Sprintf(i18n.StatusResultFailed, r.Error))
		}
	} else {
		fmt.Fprintln(w, msg.Sprintf(i18n.StatusLastRunNone))
	}
	fmt.Fprintln(w, msg.Sprintf(i18n.StatusSets, setsPerType(h.sets)))
	rt := h.state.LastRestoreTest
	if rt != nil && (rt.Passed == nil || *rt.Passed) && (remindMonths <= 0 || rt.Time.AddDate(0, remindMonths, 0).After(now)) {
		fmt.Fprintln(w, msg.Sprintf(i18n.StatusRestoreOK, rt.Time.Local().Format(time.DateOnly)+" ("+rt.Set+")"))
		return
	}
	if line := restoreReminder(rt, remindMonths, now, msg); line != "" {
		fmt.Fprintln(w, line)
	}
}

// restoreReminder is the line that asks for a test restore: the last one
// failed, is older than remindMonths, or there is none. "" when none is
// due.
func restoreReminder(rt *backupset.RestoreRecord, remindMonths int, now time.Time, msg *i18n.Printer) string {
	switch {
	case rt != nil && rt.Passed != nil && !*rt.Passed:
		return msg.Sprintf(i18n.StatusRestoreFailed, rt.Time.Local().Format(time.DateTime)+" ("+rt.Set+")", strings.Join(rt.Problems, "; "))
	case rt != nil && (remindMonths <= 0 || rt.Time.AddDate(0, remindMonths, 0).After(now)):
		return ""
	case rt != nil:
		return msg.Sprintf(i18n.StatusRestoreDue, rt.Time.Local().Format(time.DateOnly), remindMonths)
	case remindMonths > 0:
		return msg.Sprintf(i18n.StatusRestoreNever)
	}
	return ""
}

// setsPerType renders "rsync 3 (newest 2025-01-02 03:00), tgz 1"; named
// snapshots are counted apart because retention never removes them.
func setsPerType(sets []backupset.Set) string {
	type agg struct {
		n, snaps int
		newest   time.Time
	}
	m := map[backupset.Type]*agg{}
	for _, s := range sets {
		a, ok := m[s.Name.Type]
		if !ok {
			a = &agg{}
			m[s.Name.Type] = a
		}
		a.n++
		if s.Name.Snapshot != "" {
			a.snaps++
		}
		if s.Name.Time.After(a.newest) {
			a.newest = s.Name.Time
		}
	}
	if len(m) == 0 {
		return "-"
	}
	var types []string
	for t := range m {
		types = append(types, string(t))
	}
	slices.Sort(types)
	var parts []string
	for _, t := range types {
		a := m[backupset.Type(t)]
		p := fmt.Sprintf("%s %d", t, a.n)
		if a.snaps > 0 {
			p += fmt.Sprintf(" (%d -M)", a.snaps)
		}
		p += ", " + a.newest.Format("2006-01-02 15:04")
		parts = append(parts, p)
	}
	return strings.Join(parts, "; ")
}

// nextTimerRun asks systemd when backupctl.timer fires next. Without
// systemd (a container, a chroot) or without the timer it reports false.
func nextTimerRun(ctx context.Context, systemctl string) (string, bool) {
	if _, err := os.Stat("/run/systemd/system"); err != nil {
		return "", false // systemd is not PID 1
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, systemctl, "show", "--property=NextElapseUSecRealtime", "--value", "--", timerUnit).Output()
	if err != nil {
		return "", false
	}
	s := strings.TrimSpace(string(out))
	if s == "" || s == "n/a" || s == "0" {
		return "", false
	}
	return s, true
}
