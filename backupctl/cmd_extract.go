package main

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/config"
	"github.com/pibackup/pibackup/internal/extract"
	"github.com/pibackup/pibackup/internal/payload"
)

func (a *app) newExtractCmd() *cobra.Command {
	var to string
	var cfg *config.Flags
	cmd := &cobra.Command{
		Use:   "extract SET PATH... --to DIR",
		Short: "Copy files or folders out of a backup set, with all their metadata",
		Long: `Copy files or folders of the backed-up root filesystem out of a set,
without restoring a card: each PATH is written under DIR with its full
path (DIR/etc/fstab, DIR/srv/data/...), with its owner, mode, times,
xattrs and ACLs. A folder comes with everything below it.

Works on rsync sets (copied with rsync), tar/tgz sets with any
compression raspiBackup's tar tools make (extracted with GNU tar), and
uncompressed dd sets (the image's root filesystem mounted read-only).
raspiBackup's sets are read the same way.

SET may be on a server (sftp://, smb:// or s3://, then the backup
folder, the host and the set): a tar payload streams from it, nothing
is stored locally but the paths extracted. An encrypted set is opened
with --age-identity FILE (or --encrypt-passphrase-file).

Examples:
  backupctl extract /mnt/usb-backup/pi/pi@debian12-tgz-backup-20261125-031500 /etc/fstab --to /tmp/back
  backupctl extract SET /home/pi/projects /etc/ssh --to /root/restored
  backupctl extract --age-identity /root/age.key s3://pi-backups/fleet/pi/pi@debian12-tgz-backup-20261125-031500 /etc/fstab --to /tmp/back
` + exitStatusHelp,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if to == "" {
				return withCode(exitUsage, errors.New("extract: --to DIR is required"))
			}
			dest, err := filepath.Abs(to)
			if err != nil {
				return withCode(exitUsage, err)
			}
			l, err := a.loadConfig(cfg)
			if err != nil {
				return err
			}
			keys, err := ageKeys(l.Config)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			set, err := a.openReadFolder(ctx, args[0], l.Config, false)
			if err != nil {
				return fmt.Errorf("extract: %w", err)
			}
			defer set.close()
			n, err := backupset.Parse(set.name)
			if err != nil {
				return withCode(exitUsage, fmt.Errorf("extract: %s is not a backup set folder: %w", set.where, err))
			}
			fsys, err := payload.SetFS(set.fsys, n.Host, keys)
			if err == nil {
				err = extract.PathsFS(ctx, fsys, set.name, set.local, args[1:], dest, nil)
			}
			if err != nil {
				if errors.Is(err, extract.ErrNotFound) || errors.Is(err, extract.ErrUnsupported) || keyProblem(err) {
					return preflight(fmt.Errorf("extract: %w", err))
				}
				return fmt.Errorf("extract: %w", err)
			}
			for _, p := range args[1:] {
				fmt.Fprintf(a.stdout, "extracted %s\n", filepath.Join(dest, filepath.Clean("/"+p)))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "folder to write the paths into (made if missing)")
	cfg = config.AddFlags(cmd.Flags(), config.CmdExtract)
	return cmd
}
