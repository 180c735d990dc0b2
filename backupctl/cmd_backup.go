package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/pibackup/pibackup/internal/backup"
	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/progress"
)

// backupOptions are the flags of `backupctl backup`.
type backupOptions struct {
	typ        string
	compress   string
	usedOnly   bool
	partitions string
	name       string
	excludes   []string
	sourceDisk string
	dryRun     bool
	progress   bool
	bootTar    bool
	hostname   string
}

func (o *backupOptions) addFlags(f *pflag.FlagSet) {
	f.StringVarP(&o.typ, "type", "t", "rsync", "backup type: dd, ddz, tar, tgz or rsync")
	f.StringVarP(&o.compress, "compress", "z", "", "compression for dd and tar: gzip, zstd or none (dd+gzip = ddz, tar+gzip = tgz)")
	f.BoolVar(&o.usedOnly, "used-partitions-only", false, "dd: stop the image at the end of the last partition")
	f.StringVarP(&o.partitions, "partitions", "P", "", `partition-oriented mode: back up these partitions, e.g. "1 2 5" or "*"`)
	f.StringVarP(&o.name, "name", "M", "", "make a named snapshot (never removed by retention)")
	f.StringArrayVarP(&o.excludes, "exclude", "u", nil, `leave out paths matching this glob (repeatable); "/x/*" is anchored at the filesystem root, "*.tmp" matches at any depth`)
	f.StringVar(&o.sourceDisk, "source-disk", "", "back up this unmounted disk (e.g. /dev/sdb) or image file (e.g. pi.img) instead of the running system")
	f.BoolVarP(&o.dryRun, "dry-run", "F", false, "check everything and print the plan; write nothing")
	f.BoolVarP(&o.progress, "progress", "g", false, "show a progress bar on stderr")
	f.BoolVar(&o.bootTar, "boot-tar", false, "save the boot partition as <host>-backup.tmg (tar) instead of an image (raspiBackup -B)")
	f.StringVar(&o.hostname, "hostname", "", "host name for the set (default: /etc/hostname of the source root)")
}

// engineOptions turns the flags into the engine's options.
func (o *backupOptions) engineOptions(target string) (backup.Options, error) {
	t, err := backupset.ParseType(o.typ)
	if err != nil {
		return backup.Options{}, err
	}
	var c backupset.Compression
	if o.compress != "" {
		if c, err = backupset.ParseCompression(o.compress); err != nil {
			return backup.Options{}, err
		}
	}
	eo := backup.Options{
		Target: target, Type: t, Compression: c, UsedPartitionsOnly: o.usedOnly,
		Snapshot: o.name, Excludes: o.excludes, SourceDisk: o.sourceDisk, DryRun: o.dryRun,
		BootTar: o.bootTar, Hostname: o.hostname, ToolVersion: versionString(),
	}
	if o.partitions != "" {
		if eo.Partitions, eo.AllPartitions, err = backup.ParsePartitions(o.partitions); err != nil {
			return backup.Options{}, fmt.Errorf("-P: %w", err)
		}
	}
	return eo, nil
}

const backupLong = `Back up a Raspberry Pi into raspiBackup's layout:
BACKUPDIR/<host>/<host>@<os>-<type>-backup-<YYYYMMDD-HHMMSS>[_<name>]/

Types: dd (image of the whole disk), ddz (compressed image), tar and tgz
(archive of the root filesystem plus an image of the boot partition), rsync
(a tree of the root filesystem; unchanged files are hardlinked to the
previous rsync set of the same host and OS release). With -P, each selected
partition is saved on its own as <part>.tar[.zst]/.tgz or <part>/.

Without --source-disk the running system is backed up; with it, an
unmounted disk or image (its root is mounted read-only in a private folder).
A set is written under <host>/tmp/ and moved into place only when complete;
on failure or interruption nothing but older sets remains.

Examples:
  backupctl backup /mnt/backup                         # rsync set of this Pi
  backupctl backup -t tgz -M "before upgrade" /mnt/backup
  backupctl backup -t tar -z zstd -u '/home/*/.cache' /mnt/backup
  backupctl backup -t dd --used-partitions-only --source-disk /dev/sdb /mnt/backup
  backupctl backup -P "*" -t tar --source-disk pi.img -F /mnt/backup
` + exitStatusHelp

func (a *app) newBackupCmd() *cobra.Command {
	var o backupOptions
	cmd := &cobra.Command{
		Use:   "backup [flags] BACKUPDIR",
		Short: "Back up the running system or a disk into a raspiBackup-compatible set",
		Long:  backupLong,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			eo, err := o.engineOptions(args[0])
			if err != nil {
				return withCode(exitUsage, err)
			}
			return a.runBackup(cmd.Context(), eo, o.progress)
		},
	}
	o.addFlags(cmd.Flags())
	return cmd
}

// runBackup runs the engine and maps its errors to exit codes.
func (a *app) runBackup(ctx context.Context, eo backup.Options, showProgress bool) error {
	deps := backup.Deps{Log: a.log, Out: a.stdout}
	if showProgress {
		c := &progress.Counter{}
		deps.Progress = c
		stop := startBackupBar(a.stderr, c)
		defer stop()
	}
	res, err := backup.Run(ctx, eo, deps)
	switch {
	case err == nil:
	case errors.Is(err, context.Canceled), ctx.Err() != nil:
		return withCode(exitCancelled, fmt.Errorf("backup cancelled; the partial set was removed: %w", err))
	case errors.Is(err, backup.ErrLocked):
		return withCode(exitLocked, err)
	case errors.Is(err, backup.ErrPreflight):
		return withCode(exitPreflight, err)
	default:
		return withCode(exitFailure, err)
	}
	if !eo.DryRun {
		var total int64
		for _, f := range res.Manifest.Files {
			total += f.Size
		}
		fmt.Fprintf(a.stdout, "backup complete: %s (%d files, %s in payload and metadata files)\n", res.SetDir, len(res.Manifest.Files), backupHumanBytes(total))
	}
	return nil
}

// startBackupBar draws a one-line progress bar on w every 500ms until stop is
// called.
func startBackupBar(w io.Writer, c *progress.Counter) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(finished)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		var lastPhase string
		var phaseStart time.Time
		for {
			select {
			case <-done:
				fmt.Fprint(w, "\r\033[K")
				return
			case now := <-t.C:
				phase, d, total, _ := c.Snapshot()
				if phase != lastPhase {
					lastPhase, phaseStart = phase, now
				}
				fmt.Fprint(w, "\r\033[K"+backupBarLine(phase, d, total, now.Sub(phaseStart), now.Sub(start)))
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

// backupBarLine renders one progress line: phase, bar, bytes, rate, ETA.
func backupBarLine(phase string, done, total int64, inPhase, overall time.Duration) string {
	rate := 0.0
	if s := inPhase.Seconds(); s > 0 {
		rate = float64(done) / s
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-24.24s ", phase)
	if total > 0 {
		frac := min(float64(done)/float64(total), 1)
		n := int(frac * 20)
		fmt.Fprintf(&b, "[%s%s] %3.0f%% ", strings.Repeat("#", n), strings.Repeat(".", 20-n), frac*100)
	}
	fmt.Fprintf(&b, "%s %s/s", backupHumanBytes(done), backupHumanBytes(int64(rate)))
	if total > done && rate > 0 {
		eta := time.Duration(float64(total-done)/rate) * time.Second
		fmt.Fprintf(&b, " ETA %s", eta.Round(time.Second))
	}
	fmt.Fprintf(&b, " (%s)", overall.Round(time.Second))
	return b.String()
}

func backupHumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
