package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/config"
	"github.com/pibackup/pibackup/internal/size"
	"github.com/pibackup/pibackup/internal/store"
)

// listEntry is one set in `backupctl list --json`.
type listEntry struct {
	Host          string    `json:"host"`
	Set           string    `json:"set"`
	Path          string    `json:"path"`
	Type          string    `json:"type"`
	OSRelease     string    `json:"os_release,omitempty"`
	Date          time.Time `json:"date"`
	Snapshot      string    `json:"snapshot,omitempty"`
	Size          int64     `json:"size"`
	Manifest      bool      `json:"manifest"`
	Verifiable    string    `json:"verifiable"` // "checksums", "structure" or "no" (in progress, or a manifest that cannot be decoded)
	PartitionMode bool      `json:"partition_mode,omitempty"`
	Incomplete    bool      `json:"incomplete,omitempty"`
	// NotRaspiBackup says why raspiBackup's restore cannot restore the
	// set (backupset.RaspiBackupProblem); absent when it can.
	NotRaspiBackup string `json:"not_raspibackup,omitempty"`
}

func (a *app) newListCmd() *cobra.Command {
	var asJSON bool
	var flags *config.Flags
	cmd := &cobra.Command{
		Use:   "list [--json] BACKUPDIR",
		Short: "List the backup sets in a backup folder",
		Long: `List the backup sets under BACKUPDIR (a backup folder holding host
folders, a host folder, or one set): host, set, type, date, size and how
completely it can be verified ("checksums" for sets with a manifest,
"structure" for raspiBackup sets, "no" for sets still being written or
whose manifest cannot be read). Sets still in <host>/tmp/ are shown as
incomplete, and so are, on a server that cannot rename (S3), set folders
without their manifest, which is written last; a set raspiBackup's restore cannot restore (a ddz image with
zstd) is marked "not for raspiBackup". --json prints a JSON array instead
of the table, with the reason in not_raspibackup.

BACKUPDIR may be a server's folder (sftp://, smb://, s3://), opened with
the keys and passwords of the configuration (or the flags).

Examples:
  backupctl list /backup
  backupctl list --json /backup/raspberrypi
  backupctl list --json sftp://pi@nas.lan/srv/backup
` + exitStatusHelp,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := a.loadConfig(flags)
			if err != nil {
				return err
			}
			if store.IsURL(args[0]) {
				return a.runListURL(cmd.Context(), args[0], asJSON, l.Config)
			}
			return a.runList(args[0], asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	flags = config.AddFlags(cmd.Flags(), config.CmdList)
	return cmd
}

func (a *app) runList(dir string, asJSON bool) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return withCode(exitUsage, err)
	}
	fi, err := os.Stat(abs)
	if err != nil || !fi.IsDir() {
		return preflight(fmt.Errorf("list: %s is not a folder", dir))
	}
	// A set folder given directly is listed from its parent, so the set
	// keeps its own name as the last path element.
	root, rel := abs, "."
	if _, err := backupset.Parse(filepath.Base(abs)); err == nil {
		root, rel = filepath.Dir(abs), filepath.Base(abs)
	}
	return a.printList(os.DirFS(root), rel, backupset.ListOptions{}, func(dir string) string {
		return filepath.Join(root, filepath.FromSlash(dir))
	}, asJSON)
}

// runListURL lists the sets in a server's folder: a backup folder, a
// host folder or a set, as for a local one.
func (a *app) runListURL(ctx context.Context, u string, asJSON bool, c *config.Config) error {
	root, rel := u, "."
	if parent, name := splitURL(u); name != "." {
		if _, err := backupset.Parse(name); err == nil {
			root, rel = parent, name
		}
	}
	st, err := a.openStore(ctx, root, c, nil)
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	defer st.Close()
	shown := strings.TrimRight(store.Redact(root), "/")
	return a.printList(st.FS(), rel, listOptions(st), func(dir string) string { return shown + "/" + dir }, asJSON)
}

// printList lists the sets under rel in fsys; where turns a set's
// folder into what the user gives to verify or restore.
func (a *app) printList(fsys fs.FS, rel string, lo backupset.ListOptions, where func(dir string) string, asJSON bool) error {
	l, err := lo.List(fsys, rel)
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	entries := make([]listEntry, 0, len(l.Sets))
	for _, s := range l.Sets {
		e := listEntry{
			Host: s.Name.Host, Set: s.String(), Path: where(s.Dir),
			Type: string(s.Name.Type), OSRelease: s.Name.OSRelease, Date: s.Name.Time, Snapshot: s.Name.Snapshot,
			Manifest: s.HasManifest, PartitionMode: s.PartitionMode, Incomplete: s.InProgress,
			NotRaspiBackup: s.RaspiBackupProblem(),
		}
		e.Size = setSize(fsys, s)
		switch {
		case s.InProgress:
			e.Verifiable = "no"
		case s.HasManifest && !manifestDecodes(fsys, s):
			// Its checksums cannot be read: verify and restore refuse it.
			e.Verifiable = "no"
		case s.HasManifest:
			e.Verifiable = "checksums"
		default:
			e.Verifiable = "structure"
		}
		entries = append(entries, e)
	}
	if asJSON {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(entries)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tSET\tTYPE\tDATE\tSIZE\tVERIFY\tSTATE")
	for _, e := range entries {
		state := "complete"
		if e.Incomplete {
			state = "incomplete (being written, or left by a killed run)"
		}
		if e.Snapshot != "" {
			state += ", snapshot"
		}
		if e.PartitionMode {
			state += ", per partition"
		}
		if e.NotRaspiBackup != "" {
			// The reason is in --json; the table stays one line a set.
			state += ", not for raspiBackup"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Host, e.Set, e.Type, e.Date.Format("2006-01-02 15:04:05"),
			size.Format(e.Size), e.Verifiable, state)
	}
	for _, s := range l.Strays {
		fmt.Fprintf(tw, "?\t%s\t-\t-\t-\t-\tnot a set: %s\n", path.Base(s.Dir), s.Reason)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(entries) == 0 {
		fmt.Fprintln(a.stdout, "(no backup sets)")
	}
	return nil
}

// setSize is the size of a set: from its manifest when it has one (cheap,
// and rsync hardlinks to earlier sets count as the manifest says), else
// the sum of the sizes of its files.
func setSize(fsys fs.FS, s backupset.Set) int64 {
	if s.HasManifest {
		if m, _, err := backupset.ReadManifestIn(fsys, s.Dir, s.Name.Host); err == nil {
			var n int64
			for _, f := range m.Files {
				n += f.Size
			}
			for _, t := range m.Trees {
				n += t.Bytes
			}
			return n
		}
	}
	var n int64
	_ = fs.WalkDir(fsys, s.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// manifestDecodes reports whether a set's manifest (under its current
// or its old name) can be read as one.
func manifestDecodes(fsys fs.FS, s backupset.Set) bool {
	for _, name := range backupset.ManifestNames(s.Name.Host) {
		b, err := fs.ReadFile(fsys, path.Join(s.Dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return false
		}
		_, err = backupset.ReadManifest(bytes.NewReader(b))
		return err == nil
	}
	return false
}
