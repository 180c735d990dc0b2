package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/pibackup/pibackup/internal/config"
	"github.com/pibackup/pibackup/internal/hooks"
	"github.com/pibackup/pibackup/internal/restore"
	"github.com/pibackup/pibackup/internal/size"
)

// cloneOptions are the flags of `backupctl clone`.
type cloneOptions struct {
	to     string
	source string
	size   string
	yes    bool
	dryRun bool
	cfg    *config.Flags // -f and the restore hook options
}

func (a *app) newCloneCmd() *cobra.Command {
	var o cloneOptions
	cmd := &cobra.Command{
		Use:   "clone --to DEV|IMAGEFILE [--source-disk DEV|IMAGE] [--yes]",
		Short: "Copy the running system (or a disk) onto another disk; again, only the changes",
		Long: `Copy the running system, or the disk or image given with --source-disk,
onto another disk or an image file: the target is partitioned like the
source (the root partition grown or shrunk to fit), the boot partition is
copied, the root filesystem is made and filled with rsync, and the clone
gets its own disk id, PARTUUIDs and filesystem UUIDs, named by its
cmdline.txt and /etc/fstab.

Run it again with the same target and only the changes are copied: when
the target has the planned partitions and carries the clone marker of
this source, nothing is formatted; rsync --delete brings the root up to
date and only changed blocks of the boot partition are written.

A clone holds flock(2) on the target while it runs; a second clone or
restore onto it is refused at once with exit 5.

Examples:
  backupctl clone --to /dev/sda --yes
  backupctl clone --source-disk /dev/mmcblk0 --to /dev/sda
  backupctl clone --source-disk pi.img --to standby.img --size 16G --yes
` + restoreHooksHelp + exitStatusHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runClone(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.to, "to", "", "target disk (e.g. /dev/sda) or image file (e.g. standby.img)")
	f.StringVar(&o.source, "source-disk", "", "clone this disk (e.g. /dev/mmcblk0) or image file instead of the running system")
	f.StringVar(&o.size, "size", "", "size of an image file that does not exist yet (e.g. 16G)")
	f.BoolVar(&o.yes, "yes", false, "no interactive confirmation (needed when not run from a terminal)")
	f.BoolVarP(&o.dryRun, "dry-run", "F", false, "print the plan; write nothing")
	o.cfg = addRestoreHookFlags(f, config.CmdClone)
	return cmd
}

func (a *app) runClone(ctx context.Context, o cloneOptions) error {
	if o.to == "" {
		return withCode(exitUsage, errors.New("clone: --to DEV|IMAGEFILE is required"))
	}
	targetSize, err := size.Parse(o.size)
	if err != nil {
		return withCode(exitUsage, fmt.Errorf("clone: --size: %w", err))
	}
	hk, err := a.newRestoreHooks(o.cfg)
	if err != nil {
		return err
	}
	rep := newTextProgress(a.stderr)
	plan, err := restore.NewClonePlan(ctx, restore.CloneOptions{Source: o.source, Target: o.to, Size: targetSize, Log: a.log, Progress: rep})
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return err
		}
		if errors.Is(err, restore.ErrTargetBusy) {
			return withCode(exitLocked, fmt.Errorf("clone: %w", err))
		}
		return withCode(exitPreflight, fmt.Errorf("clone: %w", err))
	}
	if proceed, err := a.showPlanAndConfirm("clone", plan.String(), plan.Target, o.dryRun, o.yes); !proceed {
		return err
	}
	var res *restore.CloneResult
	err = a.withRestoreHooks(ctx, hk, "clone", hooks.Vars{Type: "clone", RestoreDev: plan.Target.Path}, func() error {
		var err error
		res, err = plan.Execute(ctx)
		rep.done()
		if errors.Is(err, restore.ErrTargetBusy) {
			// Taken between plan and start: nothing was written.
			return withCode(exitLocked, fmt.Errorf("clone: %w", err))
		}
		if err != nil {
			return fmt.Errorf("clone: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	what := "Cloned"
	if res.Sync {
		what = "Synced"
	}
	fmt.Fprintf(a.stdout, "\n%s onto %s in %s: root %s in %d changed files, boot partition %s written.\n", what, plan.Target.Path,
		res.Duration.Round(100*time.Millisecond), size.Format(res.RootTransferred), res.FilesChanged, size.Format(res.BootWritten))
	for _, c := range res.Changes {
		fmt.Fprintf(a.stdout, "  %s\n", c)
	}
	return nil
}
