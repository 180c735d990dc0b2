// Package tuitest has test doubles and fixtures for the recovery UI: an
// engine that really copies a set's payload onto an image file, a disk
// lister with fixed disks, an opener that counts, and a writer of backup
// sets in raspiBackup's layout. It is not a _test package so that the
// model, the views and the recovery main can share it.
package tuitest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/payload"
	"github.com/pibackup/pibackup/internal/progress"
	"github.com/pibackup/pibackup/internal/source"
	"github.com/pibackup/pibackup/internal/tui/model"
)

// SetSpec describes a set to write with WriteSet.
type SetSpec struct {
	Host     string
	OS       string // "debian12"
	Type     backupset.Type
	Time     time.Time
	Files    map[string][]byte // payload and metadata files, by name in the set folder
	Manifest bool              // write <host>-backup.manifest.json over Files
	Tmp      bool              // put it under <host>/tmp/ (in progress)
}

// Name is the set folder name.
func (s SetSpec) Name() string {
	return backupset.Name{Host: s.Host, OSRelease: s.OS, Type: s.Type, Time: s.Time}.String()
}

// WriteSet writes the set under backupDir/<host>/ and returns its folder.
func WriteSet(backupDir string, s SetSpec) (string, error) {
	dir := filepath.Join(backupDir, s.Host, s.Name())
	if s.Tmp {
		dir = filepath.Join(backupDir, s.Host, backupset.TmpDir, s.Name())
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	man := &backupset.Manifest{FormatVersion: backupset.ManifestVersion, Tool: "tuitest", Host: s.Host,
		OSRelease: s.OS, Type: s.Type, Started: s.Time, Finished: s.Time}
	for name, data := range s.Files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return "", err
		}
		sum := sha256.Sum256(data)
		man.Files = append(man.Files, backupset.File{Path: name, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])})
	}
	if s.Manifest {
		f, err := os.Create(filepath.Join(dir, backupset.ManifestName(s.Host)))
		if err != nil {
			return "", err
		}
		defer f.Close()
		if err := backupset.WriteManifest(f, man); err != nil {
			return "", err
		}
		return dir, f.Close()
	}
	return dir, nil
}

// Disks is a fixed DiskLister.
type Disks struct {
	mu   sync.Mutex
	List []source.Disk
	Err  error
}

// Disks implements source.DiskLister.
func (d *Disks) Disks() ([]source.Disk, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]source.Disk(nil), d.List...), d.Err
}

// Set replaces the list: a disk plugged in or pulled.
func (d *Disks) Set(list []source.Disk) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.List = list
}

// ImageDisk makes an image file of size bytes under dir, as a Disk named
// name.
func ImageDisk(dir, name string, size int64) (source.Disk, error) {
	p := filepath.Join(dir, name+".img")
	f, err := os.Create(p)
	if err != nil {
		return source.Disk{}, err
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return source.Disk{}, err
	}
	return source.Disk{Name: name, Path: p, Model: "Test Image", Size: size}, nil
}

// Opener opens dir: specs with the local folder of a named source, and
// can fail or ask for a host key like an SFTP server.
type Opener struct {
	mu sync.Mutex
	// Dirs maps a Spec's String() to a local folder.
	Dirs map[string]string
	// Device is what the opened sources report as Device().
	Device string
	// HostKey, when set, is demanded for sftp specs (a HostKeyError
	// until Spec.KnownHost matches).
	HostKey string
	// Password, when set, is demanded for sftp specs.
	Password string
	Opened   int
}

// Open implements model.Opener.
func (o *Opener) Open(_ context.Context, sp source.Spec) (source.Source, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if sp.Kind == source.KindSFTP {
		if o.HostKey != "" && sp.KnownHost != o.HostKey {
			if sp.KnownHost != "" {
				return nil, source.ErrHostKeyMismatch
			}
			return nil, &source.HostKeyError{Addr: sp.Addr(), KeyType: "ssh-ed25519", Fingerprint: o.HostKey}
		}
		if o.Password != "" && sp.Password != o.Password {
			return nil, fmt.Errorf("sftp %s: %w", sp.Addr(), source.ErrAuth)
		}
	}
	dir, ok := o.Dirs[sp.String()]
	if !ok {
		return nil, fmt.Errorf("%s: %w", sp, source.ErrUnreachable)
	}
	o.Opened++
	d, err := source.OpenDir(dir, o.Device)
	if err != nil {
		return nil, err
	}
	return named{d, sp.String()}, nil
}

// named reports the spec as its name, as the real network sources do.
type named struct {
	*source.Dir
	name string
}

func (n named) String() string { return n.name }

// ErrTooSmall is the fake engine's "target too small".
var ErrTooSmall = errors.New("target disk too small")

// Engine plans by checking every payload file of the set against its
// manifest, and runs by copying the payload files one after the other
// onto the target image. It is a stand-in for internal/restore with the
// same failure modes: missing or corrupt files, small targets, a target
// that goes away.
type Engine struct {
	// Hold, when not nil, makes Run wait for it to be closed (or for
	// the context) before writing, so tests can look at Running.
	Hold chan struct{}
	// FailAfter, when > 0, makes Run fail with "disk removed" after that
	// many bytes.
	FailAfter int64
	// Key, when set, makes every set encrypted, opened only by this key
	// (Request.Key): Plan fails with payload.ErrNoKey without one and
	// payload.ErrWrongKey with another, as internal/restore does.
	Key string

	mu    sync.Mutex
	Plans int
	Runs  int
}

type plan struct {
	text  string
	files []backupset.File
	total int64
}

func (p *plan) String() string { return p.text }

// SetKey sets Key while the UI may be planning.
func (e *Engine) SetKey(k string) {
	e.mu.Lock()
	e.Key = k
	e.mu.Unlock()
}

// Plan implements model.Engine.
func (e *Engine) Plan(_ context.Context, r model.Request) (model.PlanText, error) {
	e.mu.Lock()
	e.Plans++
	key := e.Key
	e.mu.Unlock()
	if r.Task == model.TaskClone {
		if r.Target.Size < r.From.Size {
			return nil, fmt.Errorf("%s has %d bytes, %s needs %d: %w", r.Target.Path, r.Target.Size, r.From.Path, r.From.Size, ErrTooSmall)
		}
		return &plan{text: fmt.Sprintf("clone %s onto %s", r.From.Path, r.Target.Path), total: r.From.Size}, nil
	}
	switch {
	case key != "" && r.Key == "":
		return nil, fmt.Errorf("set %s: %w", r.Set, payload.ErrNoKey)
	case key != "" && r.Key != key:
		return nil, fmt.Errorf("set %s: %w", r.Set, payload.ErrWrongKey)
	}
	fsys := r.Source.FS()
	files, err := payloadFiles(fsys, r.Set)
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	var total int64
	fmt.Fprintf(&b, "%s %s onto %s\n", r.Task, r.Set, r.Target.Path)
	for _, f := range files {
		fi, err := fs.Stat(fsys, path.Join(r.Set.Dir, f.Path))
		if err != nil {
			return nil, fmt.Errorf("set %s: %w", r.Set, err)
		}
		if f.SHA256 != "" && fi.Size() != f.Size {
			return nil, fmt.Errorf("set %s: %s has %d bytes, manifest says %d: corrupt set", r.Set, f.Path, fi.Size(), f.Size)
		}
		fmt.Fprintf(&b, "  write %s (%d bytes) at offset %d\n", f.Path, fi.Size(), total)
		total += fi.Size()
	}
	if r.Task == model.TaskRestore && total > r.Target.Size {
		return nil, fmt.Errorf("%s has %d bytes, the set needs %d: %w", r.Target.Path, r.Target.Size, total, ErrTooSmall)
	}
	return &plan{text: b.String(), files: files, total: total}, nil
}

func payloadFiles(fsys fs.FS, s backupset.Set) ([]backupset.File, error) {
	if s.HasManifest {
		m, _, err := backupset.ReadManifestIn(fsys, s.Dir, s.Name.Host)
		if err != nil {
			return nil, fmt.Errorf("set %s: %w", s, err)
		}
		return m.Files, nil
	}
	if len(s.Payload) == 0 {
		return nil, fmt.Errorf("set %s: no payload files: corrupt set", s)
	}
	var out []backupset.File
	for _, p := range s.Payload {
		out = append(out, backupset.File{Path: p})
	}
	return out, nil
}

// Run implements model.Engine.
func (e *Engine) Run(ctx context.Context, pt model.PlanText, r model.Request, rep progress.Reporter) (model.Outcome, error) {
	e.mu.Lock()
	e.Runs++
	e.mu.Unlock()
	p := pt.(*plan)
	if e.Hold != nil {
		select {
		case <-e.Hold:
		case <-ctx.Done():
			return model.Outcome{}, ctx.Err()
		}
	}
	start := time.Now()
	var out model.Outcome
	var w io.Writer = io.Discard
	if r.Task != model.TaskVerify {
		f, err := os.OpenFile(r.Target.Path, os.O_WRONLY, 0)
		if err != nil {
			return out, fmt.Errorf("open target: %w", err)
		}
		defer f.Close()
		w = f
	}
	if r.Task == model.TaskClone {
		from, err := os.Open(r.From.Path)
		if err != nil {
			return out, err
		}
		defer from.Close()
		rep.Phase("clone", p.total)
		n, err := copyCtx(ctx, w, from, rep, e.FailAfter)
		out.Bytes = n
		if err != nil {
			out.Incomplete = true
			return out, err
		}
		out.Duration = time.Since(start)
		return out, nil
	}
	fsys := r.Source.FS()
	for _, f := range p.files {
		in, err := fsys.Open(path.Join(r.Set.Dir, f.Path))
		if err != nil {
			out.Incomplete = true
			return out, fmt.Errorf("set %s: %w", r.Set, err)
		}
		rep.Phase(f.Path, f.Size)
		h := sha256.New()
		n, err := copyCtx(ctx, io.MultiWriter(w, h), in, rep, e.FailAfter-out.Bytes)
		in.Close()
		out.Bytes += n
		if err != nil {
			out.Incomplete = r.Task != model.TaskVerify
			return out, err
		}
		if f.SHA256 != "" && hex.EncodeToString(h.Sum(nil)) != f.SHA256 {
			out.Incomplete = r.Task != model.TaskVerify
			return out, fmt.Errorf("set %s: %s: checksum mismatch: corrupt set", r.Set, f.Path)
		}
	}
	out.Verified = r.Set.HasManifest
	out.Duration = time.Since(start)
	return out, nil
}

// ErrDiskRemoved is what Run fails with after FailAfter bytes.
var ErrDiskRemoved = errors.New("write target: no such device (disk removed?)")

func copyCtx(ctx context.Context, w io.Writer, r io.Reader, rep progress.Reporter, failAfter int64) (int64, error) {
	buf := make([]byte, 64<<10)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		k, rerr := r.Read(buf)
		if k > 0 {
			if failAfter > 0 && n+int64(k) > failAfter {
				return n, ErrDiskRemoved
			}
			if _, err := w.Write(buf[:k]); err != nil {
				return n, err
			}
			n += int64(k)
			rep.Add(int64(k))
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}
