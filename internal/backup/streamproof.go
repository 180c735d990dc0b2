package backup

import (
	"fmt"
	"os"
	"strings"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/readback"
	"github.com/pibackup/pibackup/internal/store"
)

// A payload written to a local folder is read back from the disk while
// it is written (readback.Follower): each chunk is forced to the disk,
// dropped from the page cache and read through a descriptor of its own,
// compared with what was written and fed to verify's content check for
// its kind (Deps.ContentCheck). The proof goes to the verify before the
// commit (Staged.Proofs), which then need not read the file again, and
// proves more than that read did: it came from the page cache. Sparse
// images and files on a server are verified as before.

// followMode is how a file is followed while it is written.
type followMode int

const (
	followNone   followMode = iota
	followWrites            // written through outFile: its writes are compared
	followGrowth            // written by another process (GNU tar): hashed as read back
)

// provenHow is the proof's How, in the verify report.
const provenHow = "read back from the disk while written"

// followedFile is a store file whose writes a Follower reads back.
type followedFile struct {
	store.File
	f  *os.File // the local file under File
	fl *readback.Follower
	// grows: another process writes the file; the manifest takes its size
	// and SHA-256 from the read-back.
	grows bool
	// proves: the content check ran (Deps.ContentCheck was set), so the
	// read-back can stand for verify's.
	proves bool
}

// OSFile is the local file, as store.Dir's files give it.
func (f *followedFile) OSFile() *os.File { return f.f }

func (f *followedFile) Write(p []byte) (int, error) {
	n, err := f.File.Write(p)
	f.fl.Wrote(p[:n])
	return n, err
}

func (f *followedFile) Close() error {
	err := f.File.Close()
	if err != nil {
		f.fl.Abort()
	}
	return err
}

func (f *followedFile) Abort() error {
	f.fl.Abort()
	return f.File.Abort()
}

// follow wraps the new store file sf of rel in a followedFile when mode
// asks for one and sf is a local file. Without Deps.ContentCheck only a
// file GNU tar writes is followed (its checksum comes from the
// read-back), and no proof is recorded.
func (r *runner) follow(sf store.File, rel string, mode followMode) (store.File, error) {
	lf, ok := sf.(interface{ OSFile() *os.File })
	if mode == followNone || !ok || (mode == followWrites && r.deps.ContentCheck == nil) {
		return sf, nil
	}
	path := lf.OSFile().Name()
	o := readback.Options{Grows: mode == followGrowth, How: provenHow}
	if r.deps.ContentCheck != nil {
		check, err := r.deps.ContentCheck(r.name.String(), rel, r.man.ImageSize)
		if err != nil {
			return nil, err
		}
		o.Check = check
	}
	if o.Grows && backupset.CompressionOf(rel) == backupset.CompressNone {
		// GNU tar's progress: of a compressed archive it comes from
		// tar's checkpoints (tarToFile).
		o.OnRead = r.rep.Add
	}
	if hook := r.deps.afterWriteback; hook != nil {
		o.AfterWriteback = func(off, n int64) error { return hook(path, off, n) }
	}
	fl, err := readback.Follow(path, o)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", rel, err)
	}
	return &followedFile{File: sf, f: lf.OSFile(), fl: fl, grows: o.Grows, proves: r.deps.ContentCheck != nil}, nil
}

// proven ends the read-back of o (its file is complete and synced),
// whose manifest entry is f: the bytes read back must be those written,
// and a file another process wrote takes its size and checksum from
// them.
func (o *outFile) proven(f backupset.File) (backupset.File, error) {
	if o.follow == nil {
		return f, nil
	}
	p, err := o.follow.fl.Finish()
	if err != nil {
		return backupset.File{}, fmt.Errorf("read back from the disk while written: %w", err)
	}
	if o.follow.grows {
		f.Size, f.SHA256 = p.Size, p.SHA256
	} else if p.Size != f.Size || !strings.EqualFold(p.SHA256, f.SHA256) {
		return backupset.File{}, fmt.Errorf("read back from the disk as %d bytes with SHA-256 %s, written as %d bytes with %s", p.Size, p.SHA256, f.Size, f.SHA256)
	}
	if o.follow.proves {
		o.proof = &p
	}
	return f, nil
}

// recordProof keeps the proof of the file f for the verify before the
// commit.
func (r *runner) recordProof(o *outFile, f backupset.File) {
	if o.proof == nil {
		return
	}
	if r.proofs == nil {
		r.proofs = map[string]readback.Proof{}
	}
	r.proofs[f.Path] = *o.proof
}
