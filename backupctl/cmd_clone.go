package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func (a *app) newCloneCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "clone",
		Short: "clone (being built)",
		RunE: func(*cobra.Command, []string) error {
			return withCode(exitFailure, errors.New("clone: not built yet"))
		},
	}
}
