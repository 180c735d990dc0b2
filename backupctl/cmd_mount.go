package main

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/pibackup/pibackup/internal/config"
	"github.com/pibackup/pibackup/internal/setfs"
)

func (a *app) newMountCmd() *cobra.Command {
	var cfg *config.Flags
	cmd := &cobra.Command{
		Use:   "mount SET|HOSTDIR MOUNTPOINT",
		Short: "Show a backup set (or every set of a host) as a read-only folder",
		Long: `Mount a set read-only at MOUNTPOINT, in the foreground, until MOUNTPOINT
is unmounted (umount MOUNTPOINT) or the command is interrupted (Ctrl-C,
SIGTERM: it unmounts cleanly and exits 0; a mount point still in use is
detached lazily).

  MOUNTPOINT/root/   the backed-up root filesystem, exactly as it was
  MOUNTPOINT/boot/   the boot partition

Owners, modes, times, xattrs, ACLs, symlinks and hardlinks show as they
were. Given the folder of a host (HOSTDIR, holding its sets), every set
is a folder MOUNTPOINT/<set>/ with root/ and boot/ inside, opened when
first looked into.

Every set type works, raspiBackup's included: rsync (the tree), tar,
tgz and tar.zst (an index of the archive is built at the first mount and
kept in the cache folder; a compressed archive is kept there
decompressed, which takes its uncompressed size), dd (the image's ext4,
mounted read-only from a loop device) and ddz (decompressed once into
the cache, zero blocks left as holes). Partition-oriented sets (one
payload per partition) are not shown; restore them.

SET or HOSTDIR may be on a server: sftp://, smb:// or s3://, then the
backup folder, the host and the set (keys and passwords from the
configuration or the flags, as for verify). Nothing is downloaded
whole that can be read in place: an uncompressed tar is read at its
members' offsets over the network (the index is built by reading it
once); a compressed archive and an image are fetched into the cache
folder once, with a line saying how much.

An encrypted set (backup --encrypt-to) is opened with --age-identity
FILE (or --encrypt-passphrase-file for a passphrase); an uncompressed
encrypted tar is decrypted at the offsets read, everything else on its
way into the cache.

Examples:
  backupctl mount /mnt/usb-backup/pi/pi@debian12-tgz-backup-20261125-031500 /mnt/set
  backupctl mount /mnt/usb-backup/pi /mnt/sets
  backupctl mount --age-identity /root/age.key s3://pi-backups/fleet/pi/pi@debian12-tar-backup-20261125-031500 /mnt/set
  cp -a /mnt/set/root/etc/fstab /tmp/; umount /mnt/set
` + exitStatusHelp,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			mnt, err := filepath.Abs(args[1])
			if err != nil {
				return withCode(exitUsage, err)
			}
			l, err := a.loadConfig(cfg)
			if err != nil {
				return err
			}
			keys, err := ageKeys(l.Config)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			src, err := a.openReadFolder(ctx, args[0], l.Config, true)
			if err != nil {
				return fmt.Errorf("mount: %w", err)
			}
			defer src.close()
			srv, err := setfs.MountFS(ctx, src.fsys, src.name, src.local, mnt, setfs.Options{
				CacheDir: l.Config.MountCacheDir, Log: a.log, Out: a.stdout, Keys: keys, ManifestLast: src.manifestLast})
			if err != nil {
				if errors.Is(err, setfs.ErrUnsupported) || keyProblem(err) {
					return preflight(fmt.Errorf("mount: %w", err))
				}
				return fmt.Errorf("mount: %w", err)
			}
			fmt.Fprintf(a.stdout, "mounted %s on %s; unmount with: umount %s (or Ctrl-C)\n", src.name, mnt, mnt)
			done := make(chan struct{})
			go func() {
				srv.Wait()
				close(done)
			}()
			select {
			case <-done:
			case <-ctx.Done():
				// Interrupted: the normal way to end, like restic mount.
				// A view still in use is detached, not waited for: its
				// open files fail once this process has ended.
				if err := srv.Unmount(); err != nil {
					return fmt.Errorf("mount: %w", err)
				}
			}
			fmt.Fprintf(a.stdout, "unmounted %s\n", mnt)
			return nil
		},
	}
	cfg = config.AddFlags(cmd.Flags(), config.CmdMount)
	return cmd
}
