package setfs

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/treelist"
)

// listedTree builds the tree of a backupctl rsync set from its listing
// and extras file, as a restore does: owners, modes, times, symlink
// targets, xattrs and hardlinks come from them, only the content of
// regular files from the set folder. So the view is exact even for a set
// kept on a server that did not keep the rest (SFTP, SMB).
//
// Both files must have the size and SHA-256 the manifest records: a
// damaged listing would show wrong owners and modes without a word.
func listedTree(t *tree, setDir string, m *backupset.Manifest, treeDir, listing, extras string) (*entry, error) {
	entries, err := readFile(setDir, m, listing, func(r io.Reader) func() (treelist.Entry, error) {
		return treelist.NewReader(r).Next
	})
	if err != nil {
		return nil, err
	}
	xs, err := readFile(setDir, m, extras, func(r io.Reader) func() (treelist.Extra, error) {
		return treelist.NewExtrasReader(r).Next
	})
	if err != nil {
		return nil, err
	}
	xtra := map[string]treelist.Extra{}
	for _, x := range xs {
		xtra[x.Path] = x
	}
	dir := filepath.Join(setDir, filepath.FromSlash(treeDir))
	files := treelist.NewContent(os.DirFS(dir), entries, nil)
	root := t.newEntry(syscall.S_IFDIR | 0o755)
	byPath := map[string]*entry{}
	for _, le := range entries {
		if le.Link != treelist.None {
			if e, ok := byPath[le.Link]; ok {
				e.nlink++
				t.put(root, le.Path, e)
				continue
			}
		}
		typ, ok := listingTypes[le.Type]
		if !ok {
			return nil, fmt.Errorf("%s: %s: unknown type %c", listing, le.Path, le.Type)
		}
		e := t.newEntry(typ | le.Mode)
		e.uid, e.gid = le.UID, le.GID
		e.mtime = time.Unix(0, le.MtimeNS)
		e.atime = e.mtime
		x := xtra[le.Path]
		if len(x.Xattrs) > 0 {
			e.xattrs = map[string][]byte{}
			for _, a := range x.Xattrs {
				e.xattrs[a.Name] = a.Value
			}
		}
		switch le.Type {
		case 'l':
			e.target, e.size = x.Target, int64(len(x.Target))
		case 'c', 'b':
			major, minor, err := treelist.ParseRdev(le.Rdev)
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %w", listing, le.Path, err)
			}
			e.rdev = uint32(unix.Mkdev(major, minor))
		case 'f':
			e.size = le.Size
			e.content = &listedFile{files: files, e: le}
		}
		t.put(root, le.Path, e)
		byPath[le.Path] = e
	}
	return root, nil
}

// listingTypes maps a listing's types to st_mode's.
var listingTypes = map[byte]uint32{'d': syscall.S_IFDIR, 'f': syscall.S_IFREG, 'l': syscall.S_IFLNK,
	'c': syscall.S_IFCHR, 'b': syscall.S_IFBLK, 'p': syscall.S_IFIFO, 's': syscall.S_IFSOCK}

// listedFile is a regular file of a listed tree, opened in the set
// folder (under another name if the server mangled its own).
type listedFile struct {
	files *treelist.Content
	e     treelist.Entry
}

func (l *listedFile) open() (reader, error) {
	f, err := l.files.Open(l.e)
	if err != nil {
		return nil, err
	}
	r, ok := f.(reader)
	if !ok {
		f.Close()
		return nil, fmt.Errorf("BUG: %s opened without ReadAt", l.e.Path)
	}
	return r, nil
}

// readFile reads every item of the set file name with the reader reader
// makes, and checks the file against its record in the manifest.
func readFile[T any](setDir string, m *backupset.Manifest, name string, reader func(io.Reader) func() (T, error)) ([]T, error) {
	var want *backupset.File
	for i := range m.Files {
		if path.Clean(m.Files[i].Path) == name {
			want = &m.Files[i]
		}
	}
	if want == nil {
		return nil, fmt.Errorf("%s is not in the manifest's file list: the set is damaged", name)
	}
	f, err := os.Open(filepath.Join(setDir, name))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	c := &counter{r: io.TeeReader(f, h)}
	next := reader(c)
	var out []T
	for {
		v, err := next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out = append(out, v)
	}
	if _, err := io.Copy(io.Discard, c); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if c.n != want.Size || hex.EncodeToString(h.Sum(nil)) != want.SHA256 {
		return nil, fmt.Errorf("%s does not match its size and SHA-256 in the manifest: the set is damaged (backupctl verify SET tells more)", name)
	}
	return out, nil
}
