package testfs

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pibackup/pibackup/internal/backupset"
)

// MakeLegacySet turns the complete set folder dir, written by this
// backupctl, into a set as backupctl wrote it before it named its own
// files <host>-backup.*: the manifest becomes pibackup-manifest.json, an
// rsync tree's listing and extras file pibackup-tree[.<part>].list and
// pibackup-extras[.<part>].list (renamed in the manifest too), the run
// log backupctl.log. Nothing else changes, and the folder keeps its
// times, which an rsync set's listing records for the tree's root. Tests
// use it to prove old sets still verify and restore.
func MakeLegacySet(dir string) error {
	n, err := backupset.Parse(filepath.Base(dir))
	if err != nil {
		return fmt.Errorf("legacy set: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("legacy set: %w", err)
	}
	mp := filepath.Join(dir, backupset.ManifestName(n.Host))
	f, err := os.Open(mp)
	if err != nil {
		return fmt.Errorf("legacy set: %w", err)
	}
	m, err := backupset.ReadManifest(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("legacy set %s: %w", mp, err)
	}
	prefix := n.Host + "-backup."
	// legacy maps a current tree file name (<host>-backup.tree.list) to
	// its old one (pibackup-tree.list).
	legacy := func(name string) string { return "pibackup-" + strings.TrimPrefix(name, prefix) }
	renamed := map[string]string{}
	for i, t := range m.Trees {
		for _, p := range []*string{&m.Trees[i].Listing, &m.Trees[i].Extras} {
			if *p == "" {
				continue
			}
			old := legacy(*p)
			if err := os.Rename(filepath.Join(dir, *p), filepath.Join(dir, old)); err != nil {
				return fmt.Errorf("legacy set, tree %s: %w", t.Root, err)
			}
			renamed[*p], *p = old, old
		}
	}
	for i, f := range m.Files {
		if old, ok := renamed[f.Path]; ok {
			m.Files[i].Path = old
		}
	}
	if err := os.Rename(filepath.Join(dir, backupset.RunLogName(n.Host)), filepath.Join(dir, backupset.LegacyRunLogFile)); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("legacy set: %w", err)
	}
	var b bytes.Buffer
	if err := backupset.WriteManifest(&b, m); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, backupset.LegacyManifestFile), b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("legacy set: %w", err)
	}
	if err := os.Remove(mp); err != nil {
		return fmt.Errorf("legacy set: %w", err)
	}
	if err := os.Chtimes(dir, fi.ModTime(), fi.ModTime()); err != nil {
		return fmt.Errorf("legacy set: %w", err)
	}
	return nil
}

// ManifestPath is the manifest of the set folder dir under the name a set
// written now gives it (<host>-backup.manifest.json).
func ManifestPath(t testing.TB, dir string) string {
	t.Helper()
	n, err := backupset.Parse(filepath.Base(dir))
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, backupset.ManifestName(n.Host))
}
