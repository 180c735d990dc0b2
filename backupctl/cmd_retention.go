package main

import (
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/pibackup/pibackup/internal/config"
	"github.com/pibackup/pibackup/internal/retention"
	"github.com/pibackup/pibackup/internal/store"
)

func (a *app) newRetentionCmd() *cobra.Command {
	var dryRun bool
	var flags *config.Flags
	cmd := &cobra.Command{
		Use:   "retention [--dry-run] [--keep N | --smart-recycle ...] BACKUPDIR",
		Short: "Delete old backup sets by the keep or smart recycle rules",
		Long: `Apply the retention rules of the configuration (keep, keep-<type>,
smart-recycle.*) to the sets under BACKUPDIR, per host, OS release and type.
Named snapshots (-M), sets in progress and the newest set of each series
are never deleted. --dry-run only prints the decision; a backup run applies
the same rules after a successful backup, and a preview never replaces the
backup (unlike raspiBackup's --smartRecycleDryrun). BACKUPDIR may be a
server's folder (sftp://, smb://, s3://).

Examples:
  backupctl retention --dry-run /backup
  backupctl retention --smart-recycle --smart-recycle-monthly 6 /backup/raspberrypi
` + exitStatusHelp,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := a.loadConfig(flags)
			if err != nil {
				return err
			}
			return a.runRetention(cmd, args[0], l.Config, dryRun)
		},
	}
	cmd.Flags().BoolVarP(&dryRun, "dry-run", "n", false, "print what would be kept and deleted; delete nothing")
	flags = config.AddFlags(cmd.Flags(), config.CmdRetention)
	return cmd
}

func (a *app) runRetention(cmd *cobra.Command, dir string, c *config.Config, dryRun bool) error {
	policy := c.RetentionPolicy()
	if err := policy.Validate(); err != nil {
		return withCode(exitUsage, err)
	}
	var st store.Store
	if store.IsURL(dir) {
		var err error
		if st, err = a.openStore(cmd.Context(), dir, c, nil); err != nil {
			return fmt.Errorf("retention: %w", err)
		}
		defer st.Close()
	} else {
		root, err := filepath.Abs(dir)
		if err != nil {
			return withCode(exitUsage, err)
		}
		if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
			return preflight(fmt.Errorf("retention: %s is not a folder", dir))
		}
		if st, err = store.OpenDir(root); err != nil {
			return preflight(fmt.Errorf("retention: %w", err))
		}
	}
	l, err := listOptions(st).List(st.FS(), ".")
	if err != nil {
		return fmt.Errorf("retention: %w", err)
	}
	keep, remove := retention.Plan(l.Sets, a.now(), policy)
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	verb := "delete"
	if dryRun {
		verb = "would delete"
	}
	for _, s := range remove {
		fmt.Fprintf(tw, "%s\t%s\n", verb, s.Dir)
	}
	for _, s := range keep {
		why := "keep"
		switch {
		case s.InProgress:
			why = "keep (in progress)"
		case s.Name.Snapshot != "":
			why = "keep (snapshot)"
		}
		fmt.Fprintf(tw, "%s\t%s\n", why, s.Dir)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if dryRun || len(remove) == 0 {
		return nil
	}
	done, err := retention.Apply(cmd.Context(), retention.ApplyOptions{Store: st, Log: a.log}, remove)
	fmt.Fprintf(a.stderr, "backupctl: deleted %d of %d sets\n", len(done), len(remove))
	if err != nil {
		return fmt.Errorf("retention: %w", err)
	}
	return nil
}
