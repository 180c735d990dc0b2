package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/pflag"

	"github.com/pibackup/pibackup/internal/config"
	"github.com/pibackup/pibackup/internal/hooks"
	"github.com/pibackup/pibackup/internal/i18n"
	"github.com/pibackup/pibackup/internal/payload"
)

// addRestoreHookFlags adds -f/--config and the settings of command
// (restore or clone: the hook folder, the time limit and the two restore
// events) to f.
func addRestoreHookFlags(f *pflag.FlagSet, command string) *config.Flags {
	return config.AddFlags(f, command)
}

// restoreHooksHelp is the HOOKS section of restore's and clone's help.
const restoreHooksHelp = `
HOOKS
  After the confirmation, before anything is written, the pre-restore hooks
  run: executables in <hooks.dir>/pre-restore/ (default
  /etc/backupctl/hooks.d), then every hooks.pre-restore command (config or
  --hook-pre-restore, repeatable). The first one that fails aborts: exit 3,
  nothing was written. After the restore, also after a failure or
  cancellation, the post-restore hooks run (<hooks.dir>/post-restore/ and
  hooks.post-restore); their failure is a warning. A dry run runs no hooks.
  Hooks are executed, not handed to a shell, with these variables:
    BACKUP_EVENT      pre-restore or post-restore
    RESTORE_DEVICE    the target disk or image file
    BACKUP_TARGETDIR  the set folder (restore only)
    BACKUP_TYPE       the set's type (dd, ddz, tar, tgz, rsync), or clone
    BACKUP_HOSTNAME   the host the set was made of (restore only)
    BACKUP_RC         post-restore only: the exit code of the restore
                      (0 success, 1 failed, 130 cancelled)
`

// newRestoreHooks loads the configuration and returns the hook runner of
// a restore or clone, and the printer of its plan and result lines (the
// lang setting, else LC_ALL, LC_MESSAGES, LANG).
func (a *app) newRestoreHooks(flags *config.Flags) (*hooks.Runner, *i18n.Printer, error) {
	l, err := a.loadConfig(flags)
	if err != nil {
		return nil, nil, err
	}
	ho, err := l.Config.HookOptions()
	if err != nil {
		return nil, nil, withCode(exitUsage, fmt.Errorf("configuration: %w", err))
	}
	lang, err := i18n.Pick(l.Config.Lang, os.Getenv)
	if err != nil {
		return nil, nil, withCode(exitUsage, err)
	}
	ho.Log = a.log
	return hooks.New(ho), i18n.New(lang), nil
}

// withRestoreHooks runs execute between the pre-restore and the
// post-restore hooks. A failing pre-restore hook stops the run before
// execute, so nothing is written. The post-restore hooks run whatever
// execute returned, even after a cancellation (they may have to undo
// what pre-restore did), and see the exit code in BACKUP_RC; their
// failure is reported on stderr and does not change the outcome: the
// target is written by then.
func (a *app) withRestoreHooks(ctx context.Context, hk *hooks.Runner, verb string, vars hooks.Vars, execute func() error) error {
	if err := hk.Run(ctx, hooks.PreRestore, vars); err != nil {
		return preflight(fmt.Errorf("%s: a pre-restore hook failed; nothing was written: %w", verb, err))
	}
	err := execute()
	rc := exitCode(err)
	if err != nil && ctx.Err() != nil {
		rc = exitCancelled
	}
	vars.RC = &rc
	if herr := hk.Run(context.WithoutCancel(ctx), hooks.PostRestore, vars); herr != nil {
		fmt.Fprintf(a.stderr, "backupctl: warning: %s: %v\n", verb, herr)
	}
	return err
}

// ageKeys loads the identity (age-identity) and passphrase
// (encrypt-passphrase-file) that open encrypted sets; nil when neither
// is set.
func ageKeys(c *config.Config) (*payload.Keys, error) {
	k, err := payload.LoadKeys(c.AgeIdentity, c.EncryptPassFile)
	if err != nil {
		return nil, withCode(exitUsage, err)
	}
	return k, nil
}
