package payload

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/pibackup/pibackup/internal/backupset"
)

// SetFS is the set folder fsys (of a set made for host) with its
// encrypted payloads decrypted (DecryptFS), the plaintext sizes taken
// from its manifest. A set that holds encrypted files but no keys were
// given for is refused at once with ErrNoKey, so a command says what
// is missing before it reads anything; a wrong key fails the first
// open of a payload with ErrWrongKey. A set without encrypted files is
// fsys itself.
func SetFS(fsys fs.FS, host string, keys *Keys) (fs.FS, error) {
	ents, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, err
	}
	var encrypted string
	for _, e := range ents {
		if !e.IsDir() && backupset.IsEncrypted(e.Name()) {
			encrypted = e.Name()
			break
		}
	}
	if encrypted == "" {
		return fsys, nil
	}
	if keys == nil || len(keys.ids) == 0 {
		return nil, fmt.Errorf("%s: %w", encrypted, ErrNoKey)
	}
	plain := map[string]int64{}
	m, _, err := backupset.ReadManifestIn(fsys, ".", host)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if m != nil {
		for _, f := range m.Files {
			if backupset.IsEncrypted(f.Path) {
				plain[f.Path] = f.PlainSize
			}
		}
	}
	return DecryptFS(fsys, keys, plain), nil
}
