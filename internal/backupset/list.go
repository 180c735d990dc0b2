package backupset

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
)

// Set is one backup set found in a backup folder.
type Set struct {
	Name Name
	Dir  string // path of the set folder within the listed fs.FS
	// InProgress: under <host>/tmp/, or (ListOptions.ManifestLast) a set
	// folder without a manifest. Never valid, never restorable.
	InProgress bool
	// PartitionMode is true when the set holds a <host>-backup.blkid file,
	// which is how raspiBackup marks a partition-oriented set.
	PartitionMode bool
	HasManifest   bool
	Payload       []string // payload file names in the set folder (dd/tar)
}

// String is the set folder name.
func (s Set) String() string { return path.Base(s.Dir) }

// Stray is an entry in a host folder that looks like a set but does not
// parse. raspiBackup refuses to back up next to one; we report it.
type Stray struct {
	Dir    string
	Reason string
}

// Listing is the result of List.
type Listing struct {
	Sets   []Set // newest first
	Strays []Stray
}

// List finds the sets under root in fsys. root may be a backup folder
// holding host folders, a host folder, or a set folder itself. Sets in
// <host>/tmp/ are listed with InProgress set.
func List(fsys fs.FS, root string) (*Listing, error) {
	return ListOptions{}.List(fsys, root)
}

// ListOptions say how a backup folder's sets are told apart from sets
// being written.
type ListOptions struct {
	// ManifestLast is for stores that cannot rename (S3): a set is
	// written in place and its manifest last, so a set folder without a
	// manifest is being written (or was left by a killed run), never a
	// set. raspiBackup's sets, which have none, cannot be on such a
	// store.
	ManifestLast bool
}

// List is List with the options o.
func (o ListOptions) List(fsys fs.FS, root string) (*Listing, error) {
	var l Listing
	root = path.Clean(root)
	if n, err := Parse(path.Base(root)); err == nil && root != "." {
		s, err := o.inspect(fsys, root, n, false)
		if err != nil {
			return nil, err
		}
		l.Sets = append(l.Sets, s)
		return &l, nil
	}
	entries, err := fs.ReadDir(fsys, root)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", root, err)
	}
	hostLevel := false
	for _, e := range entries {
		if _, err := Parse(e.Name()); err == nil {
			hostLevel = true
			break
		}
	}
	if hostLevel || isHostDirWithTmpOnly(fsys, root, entries) {
		if err := o.listHost(fsys, root, entries, &l); err != nil {
			return nil, err
		}
	} else {
		for _, e := range entries {
			if !e.IsDir() || e.Name() == "lost+found" || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			dir := path.Join(root, e.Name())
			sub, err := fs.ReadDir(fsys, dir)
			if err != nil {
				continue // unreadable host folder: not ours to judge
			}
			if err := o.listHost(fsys, dir, sub, &l); err != nil {
				return nil, err
			}
		}
	}
	Sort(l.Sets)
	return &l, nil
}

func isHostDirWithTmpOnly(fsys fs.FS, root string, entries []fs.DirEntry) bool {
	for _, e := range entries {
		if e.Name() == TmpDir && e.IsDir() {
			sub, err := fs.ReadDir(fsys, path.Join(root, TmpDir))
			if err != nil {
				return false
			}
			for _, s := range sub {
				if _, err := Parse(s.Name()); err == nil {
					return true
				}
			}
		}
	}
	return false
}

func (o ListOptions) listHost(fsys fs.FS, dir string, entries []fs.DirEntry, l *Listing) error {
	for _, e := range entries {
		name := e.Name()
		if name == TmpDir && e.IsDir() {
			tmp, err := fs.ReadDir(fsys, path.Join(dir, TmpDir))
			if err != nil {
				return fmt.Errorf("list %s: %w", path.Join(dir, TmpDir), err)
			}
			for _, t := range tmp {
				n, err := Parse(t.Name())
				if err != nil || !t.IsDir() {
					continue
				}
				s, err := o.inspect(fsys, path.Join(dir, TmpDir, t.Name()), n, true)
				if err != nil {
					return err
				}
				l.Sets = append(l.Sets, s)
			}
			continue
		}
		n, err := Parse(name)
		if err != nil {
			if strings.Contains(name, "-backup-") && e.IsDir() {
				l.Strays = append(l.Strays, Stray{Dir: path.Join(dir, name), Reason: err.Error()})
			}
			continue
		}
		if !e.IsDir() {
			continue
		}
		s, err := o.inspect(fsys, path.Join(dir, name), n, false)
		if err != nil {
			return err
		}
		l.Sets = append(l.Sets, s)
	}
	return nil
}

func (o ListOptions) inspect(fsys fs.FS, dir string, n Name, inProgress bool) (Set, error) {
	s := Set{Name: n, Dir: dir, InProgress: inProgress}
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return s, fmt.Errorf("read set %s: %w", dir, err)
	}
	setName := path.Base(dir)
	for _, e := range entries {
		switch name := e.Name(); {
		case IsManifestName(n.Host, name):
			s.HasManifest = true
		case name == MetaFile(n.Host, SuffixBlkid):
			s.PartitionMode = true
		case IsImagePayload(setName, name):
			s.Payload = append(s.Payload, name)
		default:
			if base, _, ok := TarPayloadBase(name); ok && base == setName && !e.IsDir() {
				s.Payload = append(s.Payload, name)
			}
		}
	}
	if o.ManifestLast && !s.HasManifest {
		s.InProgress = true
	}
	return s, nil
}

// Sort orders sets newest first; ties by name for a stable order.
func Sort(sets []Set) {
	sort.SliceStable(sets, func(i, j int) bool {
		a, b := sets[i].Name, sets[j].Name
		if !a.Time.Equal(b.Time) {
			return a.Time.After(b.Time)
		}
		return a.String() < b.String()
	})
}

// ErrNoSet is returned by Latest when no complete set matches.
var ErrNoSet = errors.New("no complete backup set found")

// Latest returns the newest complete set of host ("" for any host).
func Latest(sets []Set, host string) (Set, error) {
	for _, s := range sets {
		if s.InProgress || (host != "" && s.Name.Host != host) {
			continue
		}
		return s, nil
	}
	return Set{}, ErrNoSet
}
