package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/pibackup/pibackup/internal/setdiff"
)

func (a *app) newDiffCmd() *cobra.Command {
	var jsonOut bool
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

Examples:
  backupctl diff /mnt/usb-backup/pi/pi@debian12-rsync-backup-20261124-031500 /mnt/usb-backup/pi/pi@debian12-rsync-backup-20261125-031500
` + exitStatusHelp,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var dirs [2]string
			for i, a := range args {
				if err := localOnly("diff", a); err != nil {
					return err
				}
				abs, err := filepath.Abs(a)
				if err != nil {
					return withCode(exitUsage, err)
				}
				dirs[i] = abs
			}
			changes, err := setdiff.Sets(cmd.Context(), dirs[0], dirs[1])
			if err != nil {
				if errors.Is(err, setdiff.ErrUnsupported) {
					return withCode(exitPreflight, fmt.Errorf("diff: %w", err))
				}
				return fmt.Errorf("diff: %w", err)
			}
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
	return cmd
}
