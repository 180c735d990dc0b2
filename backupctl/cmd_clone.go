package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/pibackup/pibackup/internal/config"
	"github.com/pibackup/pibackup/internal/hooks"
	"github.com/pibackup/pibackup/internal/i18n"
	"github.com/pibackup/pibackup/internal/restore"
	"github.com/pibackup/pibackup/internal/size"
)

// cloneOptions are the flags of `backupctl clone`.
type cloneOptions struct {
	to     string
	source string
	size   string
	// external root: the root's disk and the disk its copy goes to
	rootTo     string
	rootSource string
	rootSize   string
	yes        bool
	dryRun     bool
	cfg        *config.Flags // -f and the restore hook options
}

func (a *app) newCloneCmd() *cobra.Command {
	var o cloneOptions
	cmd := &cobra.Command{
		Use:   "clone --to DEV|IMAGEFILE [--root-to DEV|IMAGEFILE] [--source-disk DEV|IMAGE [--source-root-disk DEV|IMAGE]] [--yes]",
		Short: "Copy the running system (or a disk) onto another disk; again, only the changes",
		Long: `Copy the running system, or the disk or image given with --source-disk,
onto another disk or an image file: the target is partitioned like the
source (the root partition grown or shrunk to fit), the boot partition is
copied, the root filesystem is made and filled with rsync, and the clone
gets its own disk id, PARTUUIDs and filesystem UUIDs, named by its
cmdline.txt and /etc/fstab.

A system whose root is on another disk than its boot partition (an SD
card that boots a USB root, raspiBackup's external root) is cloned onto
two disks, as it is: the boot partition alone onto --to (it keeps its
place), the root disk onto --root-to (its root partition fitted to it).
A Pi that cannot boot from USB needs its boot partition on a card, which
is why the clone keeps the two apart, as raspiBackup's restore -R does.
cmdline.txt on the boot copy names the root copy's PARTUUID, and the
root copy's /etc/fstab names both copies.

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
  backupctl clone --to /dev/sdb --root-to /dev/sdc --yes    # SD boot + USB root
  backupctl clone --source-disk sd.img --source-root-disk usb.img --to sd2.img --size 256M --root-to usb2.img --root-size 32G
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
	f.StringVar(&o.rootTo, "root-to", "", "disk (e.g. /dev/sdc) or image file for the root's copy when the root is on another disk than /boot (external root)")
	f.StringVar(&o.rootSource, "source-root-disk", "", "with --source-disk: the disk or image file holding the root filesystem (external root)")
	f.StringVar(&o.rootSize, "root-size", "", "size of the --root-to image file when it does not exist yet (e.g. 32G)")
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
	rootSize, err := size.Parse(o.rootSize)
	if err != nil {
		return withCode(exitUsage, fmt.Errorf("clone: --root-size: %w", err))
	}
	if o.rootSource != "" && o.source == "" {
		return withCode(exitUsage, errors.New("clone: --source-root-disk needs --source-disk (the running system's root is found)"))
	}
	hk, pr, err := a.newRestoreHooks(o.cfg)
	if err != nil {
		return err
	}
	rep := newTextProgress(a.stderr)
	plan, err := restore.NewClonePlan(ctx, restore.CloneOptions{Source: o.source, Target: o.to, Size: targetSize,
		RootSource: o.rootSource, RootTarget: o.rootTo, RootSize: rootSize, Log: a.log, Progress: rep})
	if err != nil {
		return preflight(fmt.Errorf("clone: %w", err))
	}
	if proceed, err := a.showPlanAndConfirm("clone", pr, plan.Text(pr), plan.Target, o.dryRun, o.yes); !proceed {
		return err
	}
	if plan.RootTarget != nil && !o.yes {
		// Two disks are overwritten: each is confirmed by its name.
		if err := confirmTarget(a.stdin, a.stdout, pr, plan.RootTarget); err != nil {
			return preflight(fmt.Errorf("clone: %w", err))
		}
	}
	var res *restore.CloneResult
	err = a.withRestoreHooks(ctx, hk, "clone", hooks.Vars{Type: "clone", RestoreDev: plan.Target.Path}, func() error {
		var err error
		res, err = plan.Execute(ctx)
		rep.done()
		if err != nil {
			// restore.ErrTargetBusy (exit 5): taken between plan and
			// start, nothing was written.
			return fmt.Errorf("clone: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	done := i18n.CloneDone
	if res.Sync {
		done = i18n.CloneSynced
	}
	fmt.Fprintf(a.stdout, "\n%s\n", pr.Sprintf(done, plan.Target.Path,
		res.Duration.Round(100*time.Millisecond), size.Format(res.RootTransferred), res.FilesChanged, size.Format(res.BootWritten)))
	for _, c := range res.Changes {
		fmt.Fprintf(a.stdout, "  %s\n", c)
	}
	return nil
}
