package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/size"
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
	cmd := &cobra.Command{
		Use:   "list [--json] BACKUPDIR",
		Short: "List the backup sets in a backup folder",
		Long: `List the backup sets under BACKUPDIR (a backup folder holding host
folders, a host folder, or one set): host, set, type, date, size and how
completely it can be verified ("checksums" for sets with a manifest,
"structure" for raspiBackup sets, "no" for sets still being written or
whose manifest cannot be read). Sets still in <host>/tmp/ are shown as
incomplete; a set raspiBackup's restore cannot restore (a ddz image with
zstd) is marked "not for raspiBackup". --json prints a JSON array instead
of the table, with the reason in not_raspibackup.

Examples:
  backupctl list /backup
  backupctl list --json /backup/raspberrypi
` + exitStatusHelp,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runList(args[0], asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	return cmd
}

func (a *app) runList(dir string, asJSON bool) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return withCode(exitUsage, err)
	}
	fi, err := os.Stat(abs)
	if err != nil || !fi.IsDir() {
		return withCode(exitPreflight, fmt.Errorf("list: %s is not a folder", dir))
	}
	// A set folder given directly is listed from its parent, so the set
	// keeps its own name as the last path element.
	root, rel := abs, "."
	if _, err := backupset.Parse(filepath.Base(abs)); err == nil {
		root, rel = filepath.Dir(abs), filepath.Base(abs)
	}
	fsys := os.DirFS(root)
	l, err := backupset.List(fsys, rel)
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	entries := make([]listEntry, 0, len(l.Sets))
	for _, s := range l.Sets {
		e := listEntry{
			Host: s.Name.Host, Set: s.String(), Path: filepath.Join(root, filepath.FromSlash(s.Dir)),
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
			state = "incomplete (in tmp/)"
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
