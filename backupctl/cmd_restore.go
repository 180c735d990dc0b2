package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/pibackup/pibackup/internal/backup"
	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/config"
	"github.com/pibackup/pibackup/internal/disklayout"
	"github.com/pibackup/pibackup/internal/hooks"
	"github.com/pibackup/pibackup/internal/i18n"
	"github.com/pibackup/pibackup/internal/restore"
	"github.com/pibackup/pibackup/internal/size"
	"github.com/pibackup/pibackup/internal/store"
)

// restoreOptions are the flags of `backupctl restore`.
type restoreOptions struct {
	to         string
	size       string
	yes        bool
	dryRun     bool
	keepIDs    bool
	partitions string
	cfg        *config.Flags // -f and the restore hook options
}

func (o *restoreOptions) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.to, "to", "", "target disk (e.g. /dev/sdb) or image file (e.g. /tmp/pi.img)")
	f.StringVar(&o.size, "size", "", "size of an image file that does not exist yet (e.g. 8G, 512M, 7948206080)")
	f.BoolVar(&o.yes, "yes", false, "no interactive confirmation (the target is still checked)")
	f.BoolVarP(&o.dryRun, "dry-run", "F", false, "print the plan; write nothing")
	f.BoolVar(&o.keepIDs, "keep-ids", false, "keep the source's disk id, PARTUUIDs and filesystem UUIDs")
	f.StringVar(&o.partitions, "partitions", "", `partition-oriented sets: which partitions ("1,2" or "*")`)
	o.cfg = addRestoreHookFlags(f, config.CmdRestore)
}

func (a *app) newRestoreCmd() *cobra.Command {
	var o restoreOptions
	cmd := &cobra.Command{
		Use:   "restore [flags] SETDIR --to DEV|IMAGEFILE",
		Short: "Restore a backup set onto a disk or an image file",
		Long: `Restore a backup set (dd, ddz, tar, tgz or rsync; made by backupctl or by
raspiBackup) onto a whole disk or an image file.

The plan is printed first: the source and new partition tables (the last
Linux partition grows or shrinks to fit the target), what is formatted, the
new disk id, PARTUUIDs and filesystem UUIDs, and how cmdline.txt and
/etc/fstab are rewritten to name them. Nothing is written before you type
the target's name (or give --yes). A target that is mounted, holds the
running system or the backup, or is a partition is refused, and so is a
target too small for the data (the message names the bytes needed).

The partition table is written last: a restore that fails half-way leaves
a target without a partition table, never one that looks restored. Every
payload is checked while it is written: against its size and SHA-256 in
the set's manifest, and for raspiBackup sets (no manifest) for a whole
gzip/zstd stream and a tar end-of-archive marker. A damaged set fails
with exit 1 and a target without a partition table.

One restore or clone writes a target at a time: each holds flock(2) on
the image file or disk while it runs, and a second run onto it is
refused at once with exit 5, before anything is written.

A dd or ddz set also goes onto a smaller disk when its data fits: the
boot partition is written as it is, the root partition is made smaller and
the files of the image's root are copied into it (rsync -aHAX). A
compressed image's root is decompressed into a sparse scratch file first,
in $TMPDIR or, when that is too small, in a temporary filesystem on the
target itself.

Partition-oriented sets (backup -P) are restored partition by partition
(--partitions selects some); FAT partitions and .tmg boot tars are made
in-process, so the host needs no vfat driver.

SETDIR may be a set on a server: sftp://, smb:// or s3://, then the
backup folder, the host and the set (keys and passwords from the
configuration or the flags).

Examples:
  backupctl restore /backup/pi/pi@debian12-tgz-backup-20240416-094106 --to /dev/sdb
  backupctl restore sftp://backup@nas.lan/srv/pi-backups/pi/pi@debian12-tgz-backup-20240416-094106 --to /dev/sdb
  backupctl restore -F /backup/pi/pi@debian12-rsync-backup-20240416-094106 --to /dev/sdb
  backupctl restore /backup/pi/pi@debian12-dd-backup-20240416-094106 --to /tmp/pi.img --size 16G --yes
  backupctl restore --hook-pre-restore "/usr/local/bin/notify restore" SETDIR --to /dev/sdb
` + restoreHooksHelp + exitStatusHelp,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runRestore(cmd.Context(), o, args[0])
		},
	}
	o.addFlags(cmd)
	return cmd
}

func (a *app) runRestore(ctx context.Context, o restoreOptions, setDir string) error {
	if o.to == "" {
		return withCode(exitUsage, errors.New("restore: --to DEV|IMAGEFILE is required"))
	}
	targetSize, err := size.Parse(o.size)
	if err != nil {
		return withCode(exitUsage, fmt.Errorf("restore: --size: %w", err))
	}
	parts, err := parsePartitions(o.partitions)
	if err != nil {
		return withCode(exitUsage, fmt.Errorf("restore: --partitions: %w", err))
	}
	// The set: a local folder, or URL/HOST/SET on a server.
	abs, setName, localDir := setDir, "", ""
	var setFS fs.FS
	record := func() error { return recordRestoreTest(abs, "backupctl restore", a.now()) }
	if store.IsURL(setDir) {
		set, err := a.openSetURL(ctx, setDir, nil, o.cfg)
		if err != nil {
			return preflight(fmt.Errorf("restore: %w", err))
		}
		defer set.st.Close()
		abs, setName, setFS = store.Redact(setDir), set.name, set.fsys
		record = func() error {
			return updateHostStateIn(ctx, set.st, ".", func(s *backupset.State) {
				s.LastRestoreTest = &backupset.RestoreRecord{Time: a.now(), Set: set.name, How: "backupctl restore"}
			})
		}
	} else {
		var err error
		if abs, err = filepath.Abs(setDir); err != nil {
			return withCode(exitUsage, fmt.Errorf("restore: %w", err))
		}
		if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
			return preflight(fmt.Errorf("restore: %s is not a backup set folder", setDir))
		}
		setName, localDir, setFS = filepath.Base(abs), abs, os.DirFS(abs)
	}
	hk, pr, err := a.newRestoreHooks(o.cfg)
	if err != nil {
		return err
	}
	l, err := a.loadConfig(o.cfg)
	if err != nil {
		return err
	}
	keys, err := ageKeys(l.Config)
	if err != nil {
		return err
	}
	rep := newTextProgress(a.stderr)
	plan, err := restore.NewPlan(ctx, restore.Options{
		Keys:       keys,
		Set:        setFS,
		SetName:    setName,
		LocalDir:   localDir,
		Target:     o.to,
		Size:       targetSize,
		KeepIDs:    o.keepIDs,
		Partitions: parts,
		Board:      restore.HostBoard(),
		Log:        a.log,
		Progress:   rep,
	})
	if err != nil {
		var ts *disklayout.TooSmallError
		if errors.As(err, &ts) {
			return preflight(fmt.Errorf("restore: %w (give a target of at least %d bytes)", err, ts.Need))
		}
		return preflight(fmt.Errorf("restore: %w", err))
	}
	if proceed, err := a.showPlanAndConfirm("restore", pr, plan.Text(pr), plan.Target, o.dryRun, o.yes); !proceed {
		return err
	}
	vars := hooks.Vars{TargetDir: abs, RestoreDev: plan.Target.Path}
	if n, err := backupset.Parse(setName); err == nil {
		vars.Type, vars.Host = string(n.Type), n.Host
	}
	var res *restore.Result
	err = a.withRestoreHooks(ctx, hk, "restore", vars, func() error {
		var err error
		res, err = plan.Execute(ctx)
		if err == nil {
			// backupctl status reminds to test restores; this was one.
			if rerr := record(); rerr != nil {
				a.log.Warn("record restore test", "error", rerr)
			}
		}
		rep.done()
		if err != nil {
			// restore.ErrTargetBusy (exit 5): taken between plan and
			// start, nothing was written.
			return fmt.Errorf("restore: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	done := i18n.RestoreDone
	if !res.Verified {
		done = i18n.RestoreDoneNotVer
	}
	fmt.Fprintf(a.stdout, "\n%s\n", pr.Sprintf(done, setName, plan.Target.Path,
		res.Duration.Round(100*time.Millisecond), size.Format(res.Bytes)))
	for _, c := range res.Changes {
		fmt.Fprintf(a.stdout, "  %s\n", c)
	}
	for _, w := range res.Warnings {
		fmt.Fprintln(a.stdout, pr.Sprintf(i18n.RestoreWarning, w))
	}
	return nil
}

// confirmTarget asks for the target's name to be typed, after showing
// what is on it. An empty or closed stdin refuses.
func confirmTarget(in io.Reader, out io.Writer, pr *i18n.Printer, t *restore.Target) error {
	name := filepath.Base(t.Path)
	fmt.Fprintf(out, "\n%s\n", pr.Sprintf(i18n.PlanOverwritten, t.Text(pr)))
	fmt.Fprint(out, pr.Sprintf(i18n.PlanTypeName, name))
	line, err := readLine(in)
	if err != nil && line == "" {
		return errors.New("not confirmed (no input; use --yes for unattended runs)")
	}
	line = strings.TrimSpace(line)
	if line != name && line != t.Path {
		return fmt.Errorf("not confirmed (typed %q, want %q)", line, name)
	}
	return nil
}

// readLine reads one line from in, byte by byte, so that a second prompt
// (clone's second target) finds the next line still there.
func readLine(in io.Reader) (string, error) {
	var b strings.Builder
	c := make([]byte, 1)
	for {
		n, err := in.Read(c)
		if n == 1 {
			if c[0] == '\n' {
				return b.String(), nil
			}
			b.WriteByte(c[0])
		}
		if err != nil {
			return b.String(), err
		}
	}
}

// parsePartitions reads --partitions with backup's -P parser (the same
// list on both sides); nil, for no list or "*", is every partition.
func parsePartitions(s string) ([]int, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	nums, all, err := backup.ParsePartitions(s)
	if all {
		return nil, err
	}
	return nums, err
}

// textProgress prints phases and a percentage line every few seconds to
// stderr; it is the plain-text printer of progress.Reporter.
type textProgress struct {
	w     io.Writer
	mu    sync.Mutex
	phase string
	total int64
	n     int64
	last  time.Time
}

func newTextProgress(w io.Writer) *textProgress { return &textProgress{w: w} }

// Phase implements progress.Reporter.
func (p *textProgress) Phase(name string, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.phase, p.total, p.n, p.last = name, total, 0, time.Now()
	fmt.Fprintf(p.w, "%s...\n", name)
}

// Add implements progress.Reporter.
func (p *textProgress) Add(n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n += n
	if time.Since(p.last) < 5*time.Second {
		return
	}
	p.last = time.Now()
	if p.total > 0 {
		fmt.Fprintf(p.w, "  %s: %d%% (%s of %s)\n", p.phase, p.n*100/p.total, size.Format(p.n), size.Format(p.total))
	} else {
		fmt.Fprintf(p.w, "  %s: %s\n", p.phase, size.Format(p.n))
	}
}

// done ends the output of a run.
func (p *textProgress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.phase, p.total, p.n = "", 0, 0
}

// showPlanAndConfirm prints a restore or clone plan and, unless --yes,
// asks for the target's name. proceed is false after a dry run (err nil)
// or a refused confirmation (err set); nothing has been written then.
func (a *app) showPlanAndConfirm(verb string, pr *i18n.Printer, plan string, target *restore.Target, dryRun, yes bool) (proceed bool, err error) {
	fmt.Fprint(a.stdout, plan)
	if dryRun {
		fmt.Fprintf(a.stdout, "\n%s\n", pr.Sprintf(i18n.PlanDryRun))
		return false, nil
	}
	if !yes {
		if err := confirmTarget(a.stdin, a.stdout, pr, target); err != nil {
			return false, preflight(fmt.Errorf("%s: %w", verb, err))
		}
	}
	return true, nil
}
