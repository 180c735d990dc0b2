package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/pibackup/pibackup/internal/size"
	"github.com/pibackup/pibackup/internal/verify"
)

func (a *app) newVerifyCmd() *cobra.Command {
	var verbose bool
	cmd := &cobra.Command{
		Use:   "verify SETDIR...",
		Short: "Check backup sets completely, without restoring them",
		Long: `Check each backup set completely, reading every byte once.

A set made by backupctl is checked against its manifest: the size and
SHA-256 of every file, every rsync tree against its listing, and the
content of every payload (compressed streams decompress to the end,
tar archives parse to the end, images hold a partition table, the boot
image a FAT boot sector). The first problem is reported with its file.

Every check a restore makes before it writes is made too, by the
restore's own code (layout files, partition table, image size, tar
member names): a set that verifies is one a restore attempts, and a set
a restore refuses fails here with the restore's words.

A raspiBackup set (no manifest) is checked for its structure (the set
name, the files its type needs) and the integrity of its archives;
without checksums, a flipped byte in an uncompressed payload cannot be
found.

Examples:
  backupctl verify /backup/pi/pi@debian12-tgz-backup-20240416-094106
  backupctl verify /backup/pi/*-backup-*
` + exitStatusHelp,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runVerify(cmd.Context(), args, verbose)
		},
	}
	cmd.Flags().BoolVar(&verbose, "list", false, "list every file and tree checked")
	return cmd
}

func (a *app) runVerify(ctx context.Context, dirs []string, list bool) error {
	failed := 0
	for _, dir := range dirs {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return withCode(exitUsage, err)
		}
		rep, err := verify.Dir(ctx, abs, verify.Options{Log: a.log, Progress: newTextProgress(a.stderr)})
		if err != nil && !errors.Is(err, verify.ErrFailed) {
			return fmt.Errorf("verify %s: %w", dir, err)
		}
		how := "manifest"
		if !rep.Manifest {
			how = "structure and integrity (raspiBackup set, no manifest)"
		}
		if list {
			for _, c := range rep.Checked {
				fmt.Fprintf(a.stdout, "  checked %s\n", c)
			}
		}
		if rep.OK() {
			fmt.Fprintf(a.stdout, "OK      %s (%s read; %s)\n", rep.Set, size.Format(rep.Bytes), how)
			continue
		}
		failed++
		fmt.Fprintf(a.stdout, "FAILED  %s (%s)\n", rep.Set, how)
		for _, p := range rep.Problems {
			fmt.Fprintf(a.stdout, "        %s\n", p)
		}
	}
	if failed > 0 {
		return withCode(exitVerify, fmt.Errorf("verify: %d of %d set(s) failed", failed, len(dirs)))
	}
	return nil
}
