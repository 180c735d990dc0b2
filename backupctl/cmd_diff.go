package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/config"
	"github.com/pibackup/pibackup/internal/payload"
	"github.com/pibackup/pibackup/internal/setdiff"
)

func (a *app) newDiffCmd() *cobra.Command {
	var jsonOut bool
	var cfg *config.Flags
	cmd := &cobra.Command{
		Use:   "diff SET1 SET2",
		Short: "Show which files were added, removed or changed between two sets",
		Long: `Compare the backed-up root filesystems of two sets, usually two sets of
one host from different days. Each line is one path:

  + /path            only in SET2 (added)
  - /path            only in SET1 (removed)
  M /path (what)     in both, changed: type, mode, owner, size, content

rsync sets are compared by their listings (every file's SHA-256: exact,
and fast); tar sets by their archives' headers (content by size and
modification time); uncompressed dd sets by listing their root
filesystems. raspiBackup's sets are read the same way.

A set may be on a server (sftp://, smb:// or s3://, then the backup
folder, the host and the set): the archive streams from it. Encrypted
sets are opened with --age-identity FILE (or --encrypt-passphrase-file).

Examples:
  backupctl diff /mnt/usb-backup/pi/pi@debian12-rsync-backup-20261124-031500 /mnt/usb-backup/pi/pi@debian12-rsync-backup-20261125-031500
` + exitStatusHelp,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := a.loadConfig(cfg)
			if err != nil {
				return err
			}
			keys, err := ageKeys(l.Config)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var idx [2]setdiff.Index
			for i, arg := range args {
				if idx[i], err = a.diffIndex(ctx, arg, l.Config, keys); err != nil {
					if errors.Is(err, setdiff.ErrUnsupported) || keyProblem(err) {
						return preflight(fmt.Errorf("diff: %w", err))
					}
					return fmt.Errorf("diff: %w", err)
				}
			}
			changes := setdiff.Compare(idx[0], idx[1])
			if jsonOut {
				type change struct {
					Kind string `json:"kind"`
					Path string `json:"path"`
					What string `json:"what,omitempty"`
				}
				out := make([]change, 0, len(changes))
				for _, c := range changes {
					out = append(out, change{string(c.Kind), c.Path, c.What})
				}
				enc := json.NewEncoder(a.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(out)
			}
			n := map[byte]int{}
			for _, c := range changes {
				fmt.Fprintln(a.stdout, c)
				n[c.Kind]++
			}
			fmt.Fprintf(a.stdout, "%d added, %d removed, %d changed\n", n['+'], n['-'], n['M'])
			return nil
		},
	}
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print the changes as a JSON array")
	cfg = config.AddFlags(cmd.Flags(), config.CmdDiff)
	return cmd
}

// diffIndex reads the root tree of the set arg (a path or a server's
// URL) for diff.
func (a *app) diffIndex(ctx context.Context, arg string, c *config.Config, keys *payload.Keys) (setdiff.Index, error) {
	set, err := a.openReadFolder(ctx, arg, c, false)
	if err != nil {
		return nil, err
	}
	defer set.close()
	n, err := backupset.Parse(set.name)
	if err != nil {
		return nil, withCode(exitUsage, fmt.Errorf("%s is not a backup set folder: %w", set.where, err))
	}
	fsys, err := payload.SetFS(set.fsys, n.Host, keys)
	if err == nil {
		var idx setdiff.Index
		if idx, err = setdiff.ReadFS(ctx, fsys, set.name, set.local); err == nil {
			return idx, nil
		}
	}
	return nil, fmt.Errorf("%s: %w", set.name, err)
}
