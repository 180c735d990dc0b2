package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func (a *app) newListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "list (being built)",
		RunE: func(*cobra.Command, []string) error {
			return withCode(exitFailure, errors.New("list: not built yet"))
		},
	}
}
