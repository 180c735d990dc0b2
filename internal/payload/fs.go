package payload

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"filippo.io/age"

	"github.com/pibackup/pibackup/internal/backupset"
)

// DecryptFS presents a set folder with its encrypted payloads decrypted:
// x.tgz.age is listed and opened as x.tgz, with its plaintext size, so
// code that reads sets (the restore) handles encrypted sets unchanged.
// An opened file decrypts as it is read; where the set's file allows
// random access (a local file, SFTP), so does the decrypted one (age
// authenticates each 64 KiB chunk on its own), which an uncompressed
// image needs.
//
// plainSize gives the plaintext sizes the manifest records, by stored
// name; listings use them, since without the key no size can be read.
// Opening an encrypted file without keys fails with ErrNoKey, with the
// wrong keys with ErrWrongKey.
func DecryptFS(fsys fs.FS, keys *Keys, plainSize map[string]int64) fs.FS {
	return &decFS{fsys: fsys, keys: keys, plain: plainSize}
}

type decFS struct {
	fsys  fs.FS
	keys  *Keys
	plain map[string]int64
}

func (d *decFS) Open(name string) (fs.File, error) {
	f, err := d.fsys.Open(name)
	if err == nil || !errors.Is(err, fs.ErrNotExist) || strings.HasSuffix(name, backupset.EncryptedExt) {
		return f, err
	}
	ef, eerr := d.fsys.Open(name + backupset.EncryptedExt)
	if eerr != nil {
		return nil, err
	}
	df, err := d.decrypt(ef, name+backupset.EncryptedExt)
	if err != nil {
		ef.Close()
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return df, nil
}

func (d *decFS) decrypt(ef fs.File, stored string) (*decFile, error) {
	if d.keys == nil || len(d.keys.ids) == 0 {
		return nil, fmt.Errorf("%s: %w", stored, ErrNoKey)
	}
	fi, err := ef.Stat()
	if err != nil {
		return nil, err
	}
	df := &decFile{ef: ef, stored: stored, info: fi}
	if ra, ok := ef.(io.ReaderAt); ok {
		pra, size, err := age.DecryptReaderAt(ra, fi.Size(), d.keys.ids...)
		if err != nil {
			return nil, d.keyErr(stored, err)
		}
		df.size = size
		df.sr = io.NewSectionReader(namedReaderAt{pra, stored}, 0, size)
		df.r = df.sr
		return df, nil
	}
	r, err := Decrypt(ef, stored, d.keys)
	if err != nil {
		return nil, err
	}
	df.r, df.size = r, d.plainSize(stored, fi)
	return df, nil
}

func (d *decFS) keyErr(stored string, err error) error {
	var nm *age.NoIdentityMatchError
	if errors.As(err, &nm) {
		return fmt.Errorf("%s: %w (%s)", stored, ErrWrongKey, d.keys.source)
	}
	return fmt.Errorf("decrypt %s: %w (the file is damaged or was changed)", stored, err)
}

func (d *decFS) plainSize(stored string, fi fs.FileInfo) int64 {
	if n, ok := d.plain[stored]; ok {
		return n
	}
	return fi.Size() // not recorded: the stored size is close
}

// ReadDir lists name with the encrypted files under their plain names.
func (d *decFS) ReadDir(name string) ([]fs.DirEntry, error) {
	ents, err := fs.ReadDir(d.fsys, name)
	for i, e := range ents {
		if strings.HasSuffix(e.Name(), backupset.EncryptedExt) && !e.IsDir() {
			ents[i] = decEntry{e, d}
		}
	}
	return ents, err
}

// Stat is fs.Stat beneath, with encrypted files under their plain names.
func (d *decFS) Stat(name string) (fs.FileInfo, error) {
	fi, err := fs.Stat(d.fsys, name)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return fi, err
	}
	efi, eerr := fs.Stat(d.fsys, name+backupset.EncryptedExt)
	if eerr != nil {
		return nil, err
	}
	return plainInfo{efi, d.plainSize(efi.Name(), efi)}, nil
}

type decEntry struct {
	fs.DirEntry
	d *decFS
}

func (e decEntry) Name() string { return strings.TrimSuffix(e.DirEntry.Name(), backupset.EncryptedExt) }

func (e decEntry) Info() (fs.FileInfo, error) {
	fi, err := e.DirEntry.Info()
	if err != nil {
		return nil, err
	}
	return plainInfo{fi, e.d.plainSize(e.DirEntry.Name(), fi)}, nil
}

// plainInfo is the FileInfo of an encrypted file as the plain one.
type plainInfo struct {
	fs.FileInfo
	size int64
}

func (p plainInfo) Name() string {
	return strings.TrimSuffix(p.FileInfo.Name(), backupset.EncryptedExt)
}
func (p plainInfo) Size() int64 { return p.size }

// decFile is an opened encrypted file, read as its plaintext.
type decFile struct {
	ef     fs.File
	stored string
	info   fs.FileInfo
	size   int64
	r      io.Reader
	sr     *io.SectionReader // nil when the stored file has no ReadAt
}

func (f *decFile) Stat() (fs.FileInfo, error) { return plainInfo{f.info, f.size}, nil }
func (f *decFile) Read(p []byte) (int, error) { return f.r.Read(p) }
func (f *decFile) Close() error               { return f.ef.Close() }

// ReadAt is there only when the stored file has one; callers test for
// io.ReaderAt, so it fails rather than lying.
func (f *decFile) ReadAt(p []byte, off int64) (int, error) {
	if f.sr == nil {
		return 0, fmt.Errorf("%s: no random access to this encrypted file", f.stored)
	}
	return f.sr.ReadAt(p, off)
}

func (f *decFile) Seek(off int64, whence int) (int64, error) {
	if f.sr == nil {
		return 0, fmt.Errorf("%s: no random access to this encrypted file", f.stored)
	}
	return f.sr.Seek(off, whence)
}

// namedReaderAt names the file in a decryption error.
type namedReaderAt struct {
	ra   io.ReaderAt
	name string
}

func (n namedReaderAt) ReadAt(p []byte, off int64) (int, error) {
	k, err := n.ra.ReadAt(p, off)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("decrypt %s: %w (the file is damaged or was changed)", n.name, err)
	}
	return k, err
}
