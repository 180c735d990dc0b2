package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func (a *app) newRestoreCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "restore",
		Short: "restore (being built)",
		RunE: func(*cobra.Command, []string) error {
			return withCode(exitFailure, errors.New("restore: not built yet"))
		},
	}
}
