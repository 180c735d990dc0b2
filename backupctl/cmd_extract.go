package main

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/pibackup/pibackup/internal/extract"
)

func (a *app) newExtractCmd() *cobra.Command {
	var to string
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

Examples:
  backupctl extract /mnt/usb-backup/pi/pi@debian12-tgz-backup-20261125-031500 /etc/fstab --to /tmp/back
  backupctl extract SET /home/pi/projects /etc/ssh --to /root/restored
` + exitStatusHelp,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if to == "" {
				return withCode(exitUsage, errors.New("extract: --to DIR is required"))
			}
			if err := localOnly("extract", args[0]); err != nil {
				return err
			}
			set, err := filepath.Abs(args[0])
			if err != nil {
				return withCode(exitUsage, err)
			}
			dest, err := filepath.Abs(to)
			if err != nil {
				return withCode(exitUsage, err)
			}
			if err := extract.Paths(cmd.Context(), set, args[1:], dest); err != nil {
				if errors.Is(err, extract.ErrNotFound) || errors.Is(err, extract.ErrUnsupported) {
					return withCode(exitPreflight, fmt.Errorf("extract: %w", err))
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
	return cmd
}
