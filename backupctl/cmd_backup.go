package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func (a *app) newBackupCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "backup",
		Short: "backup (being built)",
		RunE: func(*cobra.Command, []string) error {
			return withCode(exitFailure, errors.New("backup: not built yet"))
		},
	}
}
