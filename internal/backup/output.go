package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/payload"
	"github.com/pibackup/pibackup/internal/readback"
	"github.com/pibackup/pibackup/internal/store"
)

// outFile is a payload or metadata file being written into a set. It
// hashes what passes through, so the manifest's checksums describe the
// bytes as written without reading them back, and it reports ENOSPC as
// ErrNoSpace.
type outFile struct {
	sf store.File
	// f is the local file under sf (store.Dir), nil on a server: there
	// holes are written as zeros and GNU tar writes through a pipe.
	f      *os.File
	rel    string
	h      hash.Hash
	n      int64 // logical size
	sparse bool  // skip writing all-zero blocks (dd images)
	holeAt int64 // file ends in a hole from here (sparse only), -1 if not
	// seal, when the payload is encrypted, takes the bytes written (h
	// and n then describe the plaintext) and writes the ciphertext to
	// sf, hashed into storedH and counted in storedN.
	seal    io.WriteCloser
	storedH hash.Hash
	storedN byteCount
	// follow reads the file back from the disk while it is written
	// (streamproof.go); proof is what that proved, once it is complete.
	follow *followedFile
	proof  *readback.Proof
	// sp records a sparse file's writes, to prove it by its data ranges
	// (sparseproof.go); nil if it is not proven so.
	sp *sparseProof
}

// byteCount counts the bytes written to it.
type byteCount int64

func (c *byteCount) Write(p []byte) (int, error) {
	*c += byteCount(len(p))
	return len(p), nil
}

// sparseBlock is the unit in which all-zero data becomes a hole.
const sparseBlock = 64 << 10

// createOut creates rel in the set's folder (through the store, which
// refuses a name that exists). rel must be a file name in the set
// folder, as every file of a set is: names are made from the host name
// and partition device names, and none of them may lead a write out of
// the set (readers refuse such manifests, see backupset.ValidName). mode
// applies to local files; a server gives its own.
func (r *runner) createOut(ctx context.Context, rel string, mode os.FileMode, sparse bool) (*outFile, error) {
	return r.create(ctx, rel, mode, sparse, nil, followNone)
}

// createPayload creates the payload file rel: encrypted to rel.age when
// the run encrypts (Options.Encrypt), else as createOut. An encrypted
// file is a stream (no holes, never written by another process).
func (r *runner) createPayload(ctx context.Context, rel string, sparse bool) (*outFile, error) {
	follow := followWrites
	if sparse {
		follow = followNone // a sparse image's holes are not written
	}
	if r.opts.Encrypt == nil {
		return r.create(ctx, rel, 0o600, sparse, nil, follow)
	}
	return r.create(ctx, rel+backupset.EncryptedExt, 0o600, false, r.opts.Encrypt, followWrites)
}

func (r *runner) create(ctx context.Context, rel string, mode os.FileMode, sparse bool, seal *payload.Sealer, follow followMode) (*outFile, error) {
	if !backupset.ValidName(rel) {
		return nil, fmt.Errorf("create %q: not a file name in the set folder; refused, it would be written outside the set", rel)
	}
	sf, err := r.st.Create(ctx, path.Join(r.tmpRel, rel))
	if err != nil {
		return nil, noSpace(fmt.Errorf("create %s: %w", rel, err))
	}
	if sf, err = r.follow(sf, rel, follow); err != nil {
		return nil, err
	}
	o := &outFile{sf: sf, rel: rel, h: sha256.New(), holeAt: -1}
	o.follow, _ = sf.(*followedFile)
	if lf, ok := sf.(interface{ OSFile() *os.File }); ok {
		o.f = lf.OSFile()
		o.sparse = sparse
		if sparse {
			o.sp = r.newSparseProof()
		}
		if err := o.f.Chmod(mode); err != nil {
			sf.Abort()
			return nil, fmt.Errorf("create %s: %w", rel, err)
		}
	}
	if seal != nil {
		o.f, o.sparse, o.sp = nil, false, nil
		o.storedH = sha256.New()
		if o.seal, err = seal.Seal(io.MultiWriter(sf, o.storedH, &o.storedN)); err != nil {
			sf.Abort()
			return nil, fmt.Errorf("encrypt %s: %w", rel, err)
		}
	}
	return o, nil
}

// sink is where the bytes of a non-sparse file go: the store file, or
// the encryption in front of it.
func (o *outFile) sink() io.Writer {
	if o.seal != nil {
		return o.seal
	}
	return o.sf
}

func (o *outFile) Write(p []byte) (int, error) {
	o.h.Write(p)
	if !o.sparse {
		n, err := o.sink().Write(p)
		o.n += int64(n)
		if err != nil {
			return n, noSpace(fmt.Errorf("write %s: %w", o.rel, err))
		}
		return n, nil
	}
	done := 0
	for done < len(p) {
		// Work in blocks aligned to the file offset, so holes line up with
		// filesystem blocks.
		chunk := min(len(p)-done, int(sparseBlock-o.n%sparseBlock))
		b := p[done : done+chunk]
		if chunk == sparseBlock && allZero(b) {
			if o.holeAt < 0 {
				o.holeAt = o.n
			}
			o.n += int64(chunk)
			done += chunk
			continue
		}
		if o.holeAt >= 0 {
			if _, err := o.f.Seek(o.n, io.SeekStart); err != nil {
				return done, fmt.Errorf("seek %s: %w", o.rel, err)
			}
			o.holeAt = -1
		}
		n, err := o.f.Write(b)
		o.wroteAt(b[:n], o.n)
		o.n += int64(n)
		done += n
		if err != nil {
			return done, noSpace(fmt.Errorf("write %s: %w", o.rel, err))
		}
	}
	return done, nil
}

// WriteAt writes p at off of a sparse file whose bytes before off that
// were not written read as zeros: the hash takes those zeros, then p.
// Writes must come in increasing order, as imageio.CopySparse makes them.
func (o *outFile) WriteAt(p []byte, off int64) (int, error) {
	if off < o.n {
		return 0, fmt.Errorf("BUG: write of %s at %d after %d written", o.rel, off, o.n)
	}
	if !o.sparse {
		// A server file is a stream: the gap is sent as zeros.
		if err := o.writeZeros(off - o.n); err != nil {
			return 0, err
		}
		return o.Write(p)
	}
	hashZeros(o.h, off-o.n)
	o.h.Write(p)
	n, err := o.f.WriteAt(p, off)
	o.wroteAt(p[:n], off)
	o.n = off + int64(n)
	o.holeAt = -1
	if err != nil {
		return n, noSpace(fmt.Errorf("write %s: %w", o.rel, err))
	}
	return n, nil
}

// extend makes a sparse file size bytes long, the rest reading as zeros.
func (o *outFile) extend(size int64) error {
	if size < o.n {
		return fmt.Errorf("BUG: extend %s to %d after %d written", o.rel, size, o.n)
	}
	if !o.sparse {
		return o.writeZeros(size - o.n)
	}
	if size > o.n {
		hashZeros(o.h, size-o.n)
		o.holeAt = o.n
		o.n = size
	}
	return nil
}

var zeroBlock [1 << 20]byte

// writeZeros writes n zero bytes through Write (hashed like any data).
func (o *outFile) writeZeros(n int64) error {
	for n > 0 {
		k := min(n, int64(len(zeroBlock)))
		if _, err := o.Write(zeroBlock[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

func hashZeros(h hash.Hash, n int64) {
	for n > 0 {
		k := min(n, int64(len(zeroBlock)))
		h.Write(zeroBlock[:k])
		n -= k
	}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// Close completes the file (size, fsync or the upload) and returns its
// manifest entry.
func (o *outFile) Close() (backupset.File, error) {
	if o.sf == nil {
		return backupset.File{}, errors.New("BUG: outFile closed twice")
	}
	sf := o.sf
	o.sf = nil
	var err error
	if o.holeAt >= 0 {
		err = o.f.Truncate(o.n)
	}
	if o.seal != nil && err == nil {
		err = o.seal.Close() // the last chunk
	}
	if err != nil {
		sf.Abort()
	} else {
		err = sf.Close()
	}
	if err != nil {
		return backupset.File{}, noSpace(fmt.Errorf("complete %s: %w", o.rel, err))
	}
	f := backupset.File{Path: o.rel, Size: o.n, SHA256: hex.EncodeToString(o.h.Sum(nil))}
	if o.storedH != nil {
		f.PlainSize, f.PlainSHA256 = f.Size, f.SHA256
		f.Size, f.SHA256 = int64(o.storedN), hex.EncodeToString(o.storedH.Sum(nil))
	}
	if err := o.provenRanges(f); err != nil {
		return backupset.File{}, err
	}
	return o.proven(f)
}

// Abort discards the file (a partial upload is not left behind); the
// set folder is removed by the caller.
func (o *outFile) Abort() {
	if o.sf != nil {
		o.sf.Abort()
		o.sf = nil
	}
}

// finishOut closes out and records it in the manifest, or, if writing it
// failed with err, discards it.
func (r *runner) finishOut(out *outFile, err error) (backupset.File, error) {
	if err != nil {
		out.Abort()
		return backupset.File{}, noSpace(err)
	}
	f, err := out.Close()
	if err != nil {
		return backupset.File{}, err
	}
	r.recordProof(out, f)
	r.man.Files = append(r.man.Files, f)
	return f, nil
}

// noSpace marks a write error caused by a full target with ErrNoSpace.
func noSpace(err error) error {
	if err != nil && isNoSpace(err) && !errors.Is(err, ErrNoSpace) {
		return fmt.Errorf("%w: %w", ErrNoSpace, err)
	}
	return err
}
