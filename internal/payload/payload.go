// Package payload opens and seals the payload files of a set: age
// encryption (filippo.io/age) beneath the compression. A writer
// compresses first and encrypts the compressed stream (x.tgz becomes
// x.tgz.age); a reader decrypts, then decompresses, in one place (Open),
// so every command that reads payloads handles encrypted sets alike.
//
// Everything streams: age works in 64 KiB chunks, each authenticated, so
// a corrupted byte fails the read of its chunk and nothing of a set is
// held in memory.
package payload

import (
	"errors"
	"fmt"
	"io"

	"filippo.io/age"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/compress"
)

// ErrNoKey: an encrypted payload was to be read without an identity.
var ErrNoKey = errors.New("the set is encrypted (age) and no identity or passphrase was given to open it")

// ErrWrongKey: none of the identities given opens the payload.
var ErrWrongKey = errors.New("no identity matches the set's recipients")

// Open returns the content of the payload file name read from r: the
// decrypted (name ends in .age) and decompressed stream. keys may be nil
// for a set that is not encrypted. Close releases the decoder, not r.
func Open(r io.Reader, name string, keys *Keys) (io.ReadCloser, error) {
	plain, err := Decrypt(r, name, keys)
	if err != nil {
		return nil, err
	}
	zr, err := compress.NewReader(plain, backupset.CompressionOf(name))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return zr, nil
}

// Decrypt returns the stored stream of name (still compressed): r itself
// for a file that is not encrypted.
func Decrypt(r io.Reader, name string, keys *Keys) (io.Reader, error) {
	if !backupset.IsEncrypted(name) {
		return r, nil
	}
	if keys == nil || len(keys.ids) == 0 {
		return nil, fmt.Errorf("%s: %w", name, ErrNoKey)
	}
	plain, err := age.Decrypt(r, keys.ids...)
	if err != nil {
		var nm *age.NoIdentityMatchError
		if errors.As(err, &nm) {
			return nil, fmt.Errorf("%s: %w (%s)", name, ErrWrongKey, keys.source)
		}
		return nil, fmt.Errorf("decrypt %s: %w", name, err)
	}
	return namedReader{plain, name}, nil
}

// namedReader names the file in a read error: a flipped ciphertext byte
// fails the chunk it is in, deep inside a restore.
type namedReader struct {
	r    io.Reader
	name string
}

func (n namedReader) Read(p []byte) (int, error) {
	k, err := n.r.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("decrypt %s: %w (the file is damaged or was changed)", n.name, err)
	}
	return k, err
}
