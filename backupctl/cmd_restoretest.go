package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/pibackup/pibackup/internal/backup"
	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/config"
	"github.com/pibackup/pibackup/internal/i18n"
	"github.com/pibackup/pibackup/internal/notify"
	"github.com/pibackup/pibackup/internal/restoretest"
	"github.com/pibackup/pibackup/internal/size"
	"github.com/pibackup/pibackup/internal/store"
	"github.com/pibackup/pibackup/internal/verify"
)

type restoreTestOptions struct {
	cfg      *config.Flags
	conf     *config.Config // merged from cfg
	workDir  string
	sample   int
	maxSpace string
	jsonOut  bool
}

func (a *app) newRestoreTestCmd() *cobra.Command {
	var o restoreTestOptions
	cmd := &cobra.Command{
		Use:   "restore-test [SET|HOSTDIR|BACKUPDIR]",
		Short: "Restore a set into a scratch image and prove the result would start",
		Long: `Restore a backup set into a sparse image file in a work folder, then check
it as the test suite checks a restore, and remove the image:

  - the restore itself (the set's checksums are checked while it is read);
  - the partition table: a FAT boot and an ext2/3/4 root partition;
  - e2fsck -fn on every ext filesystem, fsck.vfat -n on every FAT one;
  - every PARTUUID=, UUID= and LABEL= that cmdline.txt and /etc/fstab name
    exists on the restored disk (the ids are kept as in the set);
  - a random sample of files (--sample, always /etc/fstab) against the
    hashes of the set's listing (rsync sets; tar and dd payloads are
    checked whole while they are restored).

Without an argument the newest set of this host in backup-path is tested;
with a host folder or a backup folder, its newest set (of this host, when
the folder holds several). The work image needs about the used space of
the backed-up filesystems; it is checked first, and an image a killed run
left is removed by the next run. A restore test never runs while a backup
of the host runs (it takes the same lock).

The result is recorded in the host folder (` + "`backupctl status`" + ` shows it)
and sent by the e-mail and webhook settings of the configuration, as a
backup's result is: a failure is an error notice.

SET, HOSTDIR or BACKUPDIR may be on a server (sftp://, smb://, s3://):
the set is read over the network, the host's lock is the one a backup
into that server takes, and the result goes into its state file there.

Examples:
  backupctl restore-test
  backupctl restore-test /mnt/usb-backup/pi
  backupctl restore-test --work-dir /mnt/usb-backup/scratch /mnt/usb-backup/pi/pi@debian12-rsync-backup-20261125-031500
` + exitStatusHelp,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := a.loadConfig(o.cfg)
			if err != nil {
				return err
			}
			arg := ""
			if len(args) == 1 {
				arg = args[0]
			} else {
				if l.Origins["backup-path"] == config.OriginDefault {
					return withCode(exitUsage, errors.New("restore-test: give SET, HOSTDIR or BACKUPDIR, or set backup-path in the configuration"))
				}
				arg = l.Config.BackupPath
			}
			o.conf = l.Config
			o.workDir, o.sample, o.maxSpace = l.Config.RestoreTestWorkDir, l.Config.RestoreTestSample, l.Config.RestoreTestMaxSpace
			lang, err := i18n.Pick(l.Config.Lang, os.Getenv)
			if err != nil {
				return withCode(exitUsage, err)
			}
			// The backup's e-mail and webhook settings report the result;
			// a failure is an error notice.
			notifiers, err := l.Config.Notifiers()
			if err != nil {
				return withCode(exitUsage, fmt.Errorf("restore-test: notifications: %w", err))
			}
			return a.runRestoreTest(cmd.Context(), arg, o, notifiers, i18n.New(lang))
		},
	}
	f := cmd.Flags()
	o.cfg = config.AddFlags(f, config.CmdRestoreTest)
	f.BoolVar(&o.jsonOut, "json", false, "print the result as JSON")
	return cmd
}

func (a *app) runRestoreTest(ctx context.Context, arg string, o restoreTestOptions, notifiers []notify.Notifier, msg *i18n.Printer) error {
	maxBytes, err := size.Parse(o.maxSpace)
	if err != nil {
		return withCode(exitUsage, fmt.Errorf("restore-test: --max-space: %w", err))
	}
	// The set, the host lock and where the result is recorded: a local
	// folder, or a server's.
	var (
		topt   = restoretest.Options{WorkDir: o.workDir, Sample: o.sample, MaxBytes: maxBytes, Log: a.log}
		host   string
		unlock func()
		update func(change func(*backupset.State)) error
	)
	if o.conf != nil {
		if topt.Keys, err = ageKeys(o.conf); err != nil {
			return err
		}
	}
	if store.IsURL(arg) {
		st, hostRel, setRel, err := a.pickSetURL(ctx, arg, o.conf)
		if err != nil {
			return err
		}
		defer st.Close()
		if topt.Set, err = fs.Sub(st.FS(), setRel); err != nil {
			return err
		}
		topt.SetName, host = path.Base(setRel), hostOf(setRel)
		if unlock, err = backup.LockServer("", st, host); err != nil {
			return lockError(err)
		}
		update = func(change func(*backupset.State)) error { return updateHostStateIn(ctx, st, hostRel, change) }
	} else {
		setDir, err := pickSet(arg)
		if err != nil {
			return withCode(exitUsage, fmt.Errorf("restore-test: %w", err))
		}
		hostDir := filepath.Dir(setDir)
		if unlock, err = backup.LockHost(hostDir); err != nil {
			return lockError(err)
		}
		topt.SetDir, topt.SetName, host = setDir, filepath.Base(setDir), filepath.Base(hostDir)
		update = func(change func(*backupset.State)) error { return updateHostState(hostDir, change) }
	}
	defer unlock()
	fmt.Fprintf(a.stderr, "restore test of %s in %s\n", topt.SetName, o.workDir)
	rep := newTextProgress(a.stderr)
	topt.Progress = rep
	res, err := restoretest.Run(ctx, topt)
	rep.done()
	if err != nil {
		return fmt.Errorf("restore-test: %w", err) // restoretest.ErrNoSpace: exit 3
	}
	passed := res.OK()
	var problems []string
	for _, c := range res.Failed() {
		problems = append(problems, c.Name+": "+c.Detail)
	}
	if err := update(func(s *backupset.State) {
		s.LastRestoreTest = &backupset.RestoreRecord{Time: a.now(), Set: res.Set, How: "backupctl restore-test",
			Passed: &passed, Problems: problems, Seconds: res.Duration.Seconds()}
	}); err != nil {
		a.log.Warn("record the restore test", "error", err)
	}
	if o.jsonOut {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			*restoretest.Result
			Passed bool `json:"passed"`
		}{res, passed}); err != nil {
			return err
		}
	} else {
		for _, c := range res.Checks {
			mark := "ok    "
			if !c.OK {
				mark = "FAILED"
			}
			fmt.Fprintf(a.stdout, "  %s %s: %s\n", mark, c.Name, c.Detail)
		}
	}
	m := notify.Message{Host: host, OK: passed, Subject: msg.Sprintf(i18n.SubjectTestOK, host),
		Body: fmt.Sprintf("restore test of %s passed in %s (%d checks)\n", res.Set, res.Duration.Round(100*time.Millisecond), len(res.Checks))}
	if !passed {
		m.Subject = msg.Sprintf(i18n.SubjectTestFailed, host)
		m.Body = fmt.Sprintf("restore test of %s FAILED:\n  %s\n", res.Set, strings.Join(problems, "\n  "))
	}
	if nerr := notify.Send(context.WithoutCancel(ctx), a.log, notifiers, m); nerr != nil {
		fmt.Fprintln(a.stderr, "backupctl: "+msg.Sprintf(i18n.NotifyFailed, nerr))
	}
	if !passed {
		return markAs(verify.ErrFailed, fmt.Errorf("restore test of %s FAILED: %s", res.Set, strings.Join(problems, "; ")))
	}
	fmt.Fprint(a.stdout, m.Body)
	return nil
}

// pickSet returns the set folder arg names: the set itself, or the newest
// complete set under a host or backup folder (of this host when the
// folder holds several hosts).
func pickSet(arg string) (string, error) {
	abs, err := filepath.Abs(arg)
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(abs)
	if err != nil || !fi.IsDir() {
		return "", fmt.Errorf("%s is not a folder", arg)
	}
	if _, err := backupset.Parse(filepath.Base(abs)); err == nil {
		return abs, nil
	}
	l, err := backupset.List(os.DirFS(abs), ".")
	if err != nil {
		return "", err
	}
	// Names carry the second a run started; sets of one second (two
	// types in a row) are told apart by the inode change time of their
	// folder: the rename that moved the complete set into place. (Not
	// its mtime: an rsync set's folder is the tree's root and carries the
	// source root's mtime.)
	newest, err := newestSet(l.Sets, arg, func(s backupset.Set) int64 {
		var st unix.Stat_t
		if unix.Stat(filepath.Join(abs, filepath.FromSlash(s.Dir)), &st) != nil {
			return 0
		}
		return st.Ctim.Nano()
	})
	if err != nil {
		return "", err
	}
	return filepath.Join(abs, filepath.FromSlash(newest.Dir)), nil
}

// newestSet is the newest complete set of sets (of this host when they
// are of several), arg the folder they are in, for messages. order
// tells sets of the same second apart.
func newestSet(all []backupset.Set, arg string, order func(backupset.Set) int64) (backupset.Set, error) {
	var sets []backupset.Set
	hosts := map[string]bool{}
	for _, s := range all {
		if !s.InProgress {
			sets = append(sets, s)
			hosts[s.Name.Host] = true
		}
	}
	if len(hosts) > 1 {
		me, _ := os.Hostname()
		sets = slices.DeleteFunc(sets, func(s backupset.Set) bool { return s.Name.Host != me })
		if len(sets) == 0 {
			var names []string
			for h := range hosts {
				names = append(names, h)
			}
			slices.Sort(names)
			return backupset.Set{}, fmt.Errorf("%s holds sets of %s but not of this host (%s): give the host's folder", arg, strings.Join(names, ", "), me)
		}
	}
	if len(sets) == 0 {
		return backupset.Set{}, fmt.Errorf("no complete backup set in %s", arg)
	}
	return slices.MaxFunc(sets, func(a, b backupset.Set) int {
		if c := a.Name.Time.Compare(b.Name.Time); c != 0 {
			return c
		}
		return cmp.Compare(order(a), order(b))
	}), nil
}

// pickSetURL opens the server's folder arg names (a set, a host folder
// or a backup folder) and picks the set as pickSet does: its names in
// the store (the host folder's, the set's).
func (a *app) pickSetURL(ctx context.Context, arg string, c *config.Config) (st store.Store, hostRel, setRel string, err error) {
	root, rel := arg, "."
	if parent, name := splitURL(arg); name != "." {
		if _, err := backupset.Parse(name); err == nil {
			root, rel = parent, name
		}
	}
	if st, err = a.openStore(ctx, root, c, nil); err != nil {
		return nil, "", "", fmt.Errorf("restore-test: %w", err)
	}
	l, err := listOptions(st).List(st.FS(), rel)
	if err == nil {
		var s backupset.Set
		// A server keeps no change time; the folder's mtime (the
		// rename, or the manifest written last) orders sets of a second.
		s, err = newestSet(l.Sets, store.Redact(arg), func(s backupset.Set) int64 {
			if fi, err := fs.Stat(st.FS(), s.Dir); err == nil {
				return fi.ModTime().UnixNano()
			}
			return 0
		})
		setRel = s.Dir
	}
	if err != nil {
		st.Close()
		return nil, "", "", withCode(exitUsage, fmt.Errorf("restore-test: %w", err))
	}
	return st, path.Dir(setRel), setRel, nil
}

// lockError is the exit of a restore-test that did not get the host's
// lock.
func lockError(err error) error {
	if errors.Is(err, backup.ErrLocked) {
		return fmt.Errorf("restore-test: %w; try again when it has finished", err)
	}
	return preflight(fmt.Errorf("restore-test: %w", err))
}

// hostOf is the host of the set folder named rel ("" if it names none).
func hostOf(rel string) string {
	n, err := backupset.Parse(path.Base(rel))
	if err != nil {
		return ""
	}
	return n.Host
}
