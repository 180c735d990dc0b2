package restore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"path"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/compress"
	"github.com/pibackup/pibackup/internal/progress"
)

// A restore of a damaged set must never look good. Every payload is read
// through a payload: the bytes as stored are counted and hashed, the
// decompressed bytes go to the consumer (tar, the image writer), and
// finish proves, before the restore may write its partition table, that
//   - the compressed stream ended properly (gzip trailer CRC and size,
//     zstd frame and checksum: the decoders report a mismatch as a read
//     error, and finish reads the stream to its end);
//   - a tar stream reached its end-of-archive marker (two zero blocks), so
//     an archive cut at a member boundary is caught too;
//   - every tar member lies inside the filesystem (TarMembers);
//   - with a manifest, the file's size and SHA-256 are the recorded ones.
// raspiBackup sets carry no checksums: only the first two checks apply.

// ErrDamaged is wrapped by every error about a payload that is not what
// the set recorded, or not a whole stream.
var ErrDamaged = errors.New("the backup set is damaged")

// payload streams one payload file of the set.
type payload struct {
	name string
	comp backupset.Compression
	f    fs.File
	raw  *hashCounter
	zr   io.ReadCloser
	want *backupset.File // the manifest's record, nil without manifest
	tar  *tarEnd         // non-nil: the stream is a tar archive

	N   int64 // decompressed bytes returned by Read
	eof bool  // Read returned io.EOF
	err error // the first read error other than io.EOF
}

// openPayload opens name for streaming. isTar checks the decompressed
// stream's tar structure on the side.
func (s *setInfo) openPayload(name string, c backupset.Compression, rep progress.Reporter, isTar bool) (*payload, error) {
	f, err := s.fsys.Open(name)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	p := &payload{name: name, comp: c, f: f, want: s.manifestFile(name)}
	p.raw = &hashCounter{r: progress.Reader{R: f, Rep: progress.OrNop(rep)}, h: sha256.New()}
	p.zr, err = compress.NewReader(p.raw, c)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w: %w", name, err, ErrDamaged)
	}
	if isTar {
		p.tar = newTarEnd()
	}
	return p, nil
}

// manifestFile returns the manifest's record of name, nil if there is
// none.
func (s *setInfo) manifestFile(name string) *backupset.File {
	if s.manifest == nil {
		return nil
	}
	for i := range s.manifest.Files {
		f := s.manifest.Files[i]
		switch path.Clean(f.Path) {
		case name:
			return &f
		case name + backupset.EncryptedExt:
			// Read decrypted (setInfo.decrypted): its content is the
			// plaintext the manifest records; age authenticated the rest.
			return &backupset.File{Path: name, Size: f.PlainSize, SHA256: f.PlainSHA256}
		}
	}
	return nil
}

// Read returns decompressed bytes.
func (p *payload) Read(b []byte) (int, error) {
	n, err := p.zr.Read(b)
	p.N += int64(n)
	if n > 0 && p.tar != nil {
		p.tar.write(b[:n])
	}
	switch {
	case err == io.EOF:
		p.eof = true
	case err != nil && p.err == nil:
		p.err = err
	}
	return n, err
}

// finish reads what the consumer left (a tar's trailing blocks, a
// compressed stream's trailer) and checks that the stream was whole and,
// with a manifest, is the recorded file. It returns nil only then.
func (p *payload) finish(ctx context.Context) error {
	if p.err == nil && !p.eof {
		if _, err := countStream(ctx, p); err != nil && p.err == nil {
			return err // cancelled
		}
	}
	if p.err != nil {
		return fmt.Errorf("read %s: %w (the file is truncated or corrupt): %w", p.name, p.err, ErrDamaged)
	}
	// Bytes after the end of the compressed stream are hashed too (the
	// manifest's hash covers the whole file).
	if _, err := countStream(ctx, p.raw); err != nil {
		return fmt.Errorf("read %s: %w", p.name, err)
	}
	if p.tar != nil {
		err := p.tar.close()
		p.tar = nil
		if err != nil {
			return fmt.Errorf("%s: %w: %w", p.name, err, ErrDamaged)
		}
	}
	if p.want != nil {
		if p.raw.n != p.want.Size {
			return fmt.Errorf("%s: %d bytes, the manifest records %d: %w", p.name, p.raw.n, p.want.Size, ErrDamaged)
		}
		if got := hex.EncodeToString(p.raw.h.Sum(nil)); got != p.want.SHA256 {
			return fmt.Errorf("%s: SHA-256 %s, the manifest records %s: the file changed after the backup: %w", p.name, got, p.want.SHA256, ErrDamaged)
		}
	}
	return nil
}

// Close releases the file and the decoder.
func (p *payload) Close() error {
	if p.tar != nil {
		p.tar.abort()
		p.tar = nil
	}
	p.zr.Close()
	return p.f.Close()
}

// hashCounter hashes and counts what passes through.
type hashCounter struct {
	r io.Reader
	h hash.Hash
	n int64
}

func (c *hashCounter) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	c.h.Write(b[:n])
	return n, err
}

// readBlock fills buf from r. Unlike io.ReadFull it returns io.EOF only
// when r itself ended, and passes every other error on as it is: a
// decompressor's io.ErrUnexpectedEOF (a truncated stream) must not look
// like the short last block of a whole one.
func readBlock(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// tarEnd checks a tar stream's structure on the side of the real
// extraction (GNU tar): archive/tar reads a copy through a pipe.
type tarEnd struct {
	pw   *io.PipeWriter
	done chan error
}

func newTarEnd() *tarEnd {
	pr, pw := io.Pipe()
	t := &tarEnd{pw: pw, done: make(chan error, 1)}
	go func() {
		err := CheckTar(pr)
		// Keep the writer unblocked whatever the checker found.
		_, _ = io.Copy(io.Discard, pr)
		t.done <- err
	}()
	return t
}

func (t *tarEnd) write(b []byte) { _, _ = t.pw.Write(b) }

// close ends the stream and returns what the checker found.
func (t *tarEnd) close() error {
	t.pw.Close()
	return <-t.done
}

func (t *tarEnd) abort() {
	t.pw.CloseWithError(errors.New("aborted"))
	<-t.done
}

// checkListedFiles checks, before anything is written, that every file
// the manifest lists is there with its recorded size, and hashes the
// small ones (layout files, listings) that the restore reads whole.
// Large payloads are hashed while they are streamed.
func (s *setInfo) checkListedFiles() error {
	if s.manifest == nil {
		return nil
	}
	for _, f := range s.manifest.Files {
		fi, err := fs.Stat(s.fsys, f.Path)
		if err != nil {
			return fmt.Errorf("set %s: %s is listed in the manifest but cannot be read: %w: %w", s.dirName, f.Path, err, ErrBadSet)
		}
		if fi.Size() != f.Size {
			return fmt.Errorf("set %s: %s is %d bytes, the manifest records %d (truncated or replaced): %w", s.dirName, f.Path, fi.Size(), f.Size, ErrBadSet)
		}
		if f.Size > 1<<20 {
			continue
		}
		b, err := fs.ReadFile(s.fsys, f.Path)
		if err != nil {
			return fmt.Errorf("set %s: %w: %w", s.dirName, err, ErrBadSet)
		}
		if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != f.SHA256 {
			return fmt.Errorf("set %s: %s does not match its SHA-256 in the manifest: %w", s.dirName, f.Path, ErrBadSet)
		}
	}
	return nil
}
