package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/config"
	"github.com/pibackup/pibackup/internal/payload"
	"github.com/pibackup/pibackup/internal/size"
	"github.com/pibackup/pibackup/internal/store"
	"github.com/pibackup/pibackup/internal/verify"
)

func (a *app) newVerifyCmd() *cobra.Command {
	var verbose bool
	var flags *config.Flags
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

A set on a server is given as its URL (sftp://, smb://, s3://, then the
backup folder, the host and the set); every byte is read over the
network, with the keys and passwords of the configuration (or the flags).

Examples:
  backupctl verify /backup/pi/pi@debian12-tgz-backup-20240416-094106
  backupctl verify sftp://pi@nas.lan/srv/backup/pi/pi@debian12-tgz-backup-20240416-094106
  backupctl verify /backup/pi/*-backup-*
` + exitStatusHelp,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := a.loadConfig(flags)
			if err != nil {
				return err
			}
			return a.runVerify(cmd.Context(), args, verbose, l.Config)
		},
	}
	cmd.Flags().BoolVar(&verbose, "list", false, "list every file and tree checked")
	flags = config.AddFlags(cmd.Flags(), config.CmdVerify)
	return cmd
}

func (a *app) runVerify(ctx context.Context, dirs []string, list bool, c *config.Config) error {
	keys, err := ageKeys(c)
	if err != nil {
		return err
	}
	failed := 0
	for _, dir := range dirs {
		var rep *verify.Report
		var err error
		if store.IsURL(dir) {
			rep, err = a.verifyURL(ctx, dir, c, keys)
		} else {
			abs, aerr := filepath.Abs(dir)
			if aerr != nil {
				return withCode(exitUsage, aerr)
			}
			rep, err = verify.Dir(ctx, abs, verify.Options{Keys: keys, Log: a.log, Progress: newTextProgress(a.stderr)})
		}
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
			if len(rep.Sealed) > 0 {
				fmt.Fprintf(a.stdout, "  verify --age-identity FILE (or --encrypt-passphrase-file FILE) decrypts and checks the content of %s\n",
					strings.Join(rep.Sealed, ", "))
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
		return markAs(verify.ErrFailed, fmt.Errorf("verify: %d of %d set(s) failed", failed, len(dirs)))
	}
	return nil
}

// verifyURL verifies a set on a server (URL/HOST/SET), reading every
// byte of it over the network.
func (a *app) verifyURL(ctx context.Context, u string, c *config.Config, keys *payload.Keys) (*verify.Report, error) {
	set, err := a.openSetURL(ctx, u, c, nil)
	if errors.Is(err, errNoManifestYet) {
		rep := &verify.Report{Set: set.name, Problems: []verify.Problem{{Msg: err.Error()}}}
		return rep, verify.ErrFailed
	}
	if err != nil {
		return nil, err
	}
	defer set.st.Close()
	return verify.Set(ctx, set.fsys, set.name, verify.Options{Keys: keys, Log: a.log, Progress: newTextProgress(a.stderr)})
}

// errNoManifestYet: a set folder without a manifest on a store that
// writes it last.
var errNoManifestYet = errors.New("no manifest: the set is being written or was left by a killed run (on this server a set's manifest is written last)")

// remoteSet is a set on a server, opened from its URL.
type remoteSet struct {
	st   store.Store // the host folder (the set's parent); close it
	fsys fs.FS       // the set folder
	name string
	host string
}

// openSetURL opens the set at URL/HOST/SET: its host folder as a store
// and the set in it. On a store that writes manifests last, a set
// without one is refused with errNoManifestYet (st is closed then).
func (a *app) openSetURL(ctx context.Context, u string, c *config.Config, flags *config.Flags) (*remoteSet, error) {
	parent, name := splitURL(u)
	n, err := backupset.Parse(name)
	if err != nil {
		return nil, withCode(exitUsage, fmt.Errorf("%s does not end in a set's name: %w", store.Redact(u), err))
	}
	st, err := a.openStore(ctx, parent, c, flags)
	if err != nil {
		return nil, err
	}
	set := &remoteSet{st: st, name: name, host: n.Host}
	if _, err := backupset.FindManifest(st.FS(), name, n.Host); err != nil && !st.CanRename() {
		st.Close()
		return set, errNoManifestYet
	}
	if set.fsys, err = fs.Sub(st.FS(), name); err != nil {
		st.Close()
		return nil, err
	}
	return set, nil
}
