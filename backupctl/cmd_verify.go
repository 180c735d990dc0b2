package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func (a *app) newVerifyCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "verify",
		Short: "verify (being built)",
		RunE: func(*cobra.Command, []string) error {
			return withCode(exitFailure, errors.New("verify: not built yet"))
		},
	}
}
