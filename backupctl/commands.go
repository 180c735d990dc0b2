package main

import "github.com/spf13/cobra"

// commands lists the subcommands; each lives in its own cmd_<name>.go.
func (a *app) commands() []*cobra.Command {
	return []*cobra.Command{
		a.newBackupCmd(),
		a.newRestoreCmd(),
		a.newVerifyCmd(),
		a.newRestoreTestCmd(),
		a.newExtractCmd(),
		a.newDiffCmd(),
		a.newMountCmd(),
		a.newListCmd(),
		a.newCloneCmd(),
		a.newConfigCmd(),
		a.newRetentionCmd(),
		a.newStatusCmd(),
		a.newScheduleCmd(),
		a.newRecoverServicesCmd(),
		a.newGendocsCmd(),
	}
}
