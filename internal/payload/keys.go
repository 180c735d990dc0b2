package payload

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"filippo.io/age"
	"filippo.io/age/agessh"
	"golang.org/x/crypto/ssh"

	"github.com/pibackup/pibackup/internal/backupset"
)

// Sealer encrypts payloads to the recipients of a backup.
type Sealer struct {
	recipients []age.Recipient
	info       backupset.Encryption
}

// NewSealer reads the recipients: each of to is an age X25519 recipient
// (age1…), an SSH public key line (ssh-ed25519 …, ssh-rsa …) or a file of
// such lines as `age -R` reads (# comments and blank lines skipped).
// passphraseFile, if set, holds a passphrase on its first line instead
// (scrypt); age lets a passphrase be the only recipient.
func NewSealer(to []string, passphraseFile string) (*Sealer, error) {
	s := &Sealer{info: backupset.Encryption{Scheme: "age"}}
	if passphraseFile != "" {
		if len(to) > 0 {
			return nil, errors.New("encrypt-to and encrypt-passphrase-file exclude each other: age encrypts to recipients or to one passphrase")
		}
		pass, err := ReadPassphrase(passphraseFile)
		if err != nil {
			return nil, err
		}
		r, err := age.NewScryptRecipient(pass) // fails only for an empty one
		if err != nil {
			return nil, err
		}
		s.recipients = []age.Recipient{r}
		s.info.Recipients = []backupset.Recipient{{Kind: "scrypt"}}
		return s, nil
	}
	for _, spec := range to {
		spec = strings.TrimSpace(spec)
		if strings.HasPrefix(spec, "AGE-SECRET-KEY-") {
			// Never echoed: it is the key that opens the sets.
			return nil, errors.New("encrypt-to: this is a secret key (not shown); give its public recipient, as age-keygen -y FILE prints it")
		}
		if isRecipientLine(spec) {
			if err := s.add(spec); err != nil {
				return nil, fmt.Errorf("encrypt-to %.40q: %w", spec, err)
			}
			continue
		}
		if err := s.addFile(spec); err != nil {
			return nil, err
		}
	}
	if len(s.recipients) == 0 {
		return nil, errors.New("no recipients to encrypt to")
	}
	return s, nil
}

func isRecipientLine(s string) bool {
	return strings.HasPrefix(s, "age1") || strings.HasPrefix(s, "ssh-")
}

func (s *Sealer) addFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("encrypt-to %q: neither a recipient (age1…, ssh-ed25519 …, ssh-rsa …) nor a recipients file: %w", path, err)
		}
		return fmt.Errorf("encrypt-to: %w", err)
	}
	n := 0
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if err := s.add(line); err != nil {
			return fmt.Errorf("encrypt-to: %s line %d: %w", path, i+1, err)
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("encrypt-to: %s holds no recipients", path)
	}
	return nil
}

func (s *Sealer) add(line string) error {
	if strings.HasPrefix(line, "AGE-SECRET-KEY-") {
		return errors.New("this is a secret key; give its public recipient (age-keygen -y FILE)")
	}
	if strings.HasPrefix(line, "age1") {
		r, err := age.ParseX25519Recipient(line)
		if err != nil {
			return err
		}
		s.recipients = append(s.recipients, r)
		s.info.Recipients = append(s.info.Recipients, backupset.Recipient{Kind: "x25519", ID: r.String()})
		return nil
	}
	r, err := agessh.ParseRecipient(line)
	if err != nil {
		return fmt.Errorf("not an age recipient (age1…) or supported SSH public key (ssh-ed25519, ssh-rsa): %w", err)
	}
	pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return err
	}
	s.recipients = append(s.recipients, r)
	s.info.Recipients = append(s.info.Recipients, backupset.Recipient{Kind: pk.Type(), ID: ssh.FingerprintSHA256(pk)})
	return nil
}

// Info is the manifest's encryption block.
func (s *Sealer) Info() *backupset.Encryption {
	i := s.info
	i.Recipients = append([]backupset.Recipient(nil), s.info.Recipients...)
	return &i
}

// Seal returns a writer that encrypts into w. Close writes the last
// chunk; it does not close w.
func (s *Sealer) Seal(w io.Writer) (io.WriteCloser, error) {
	return age.Encrypt(w, s.recipients...)
}

// Keys are the identities a reader opens encrypted payloads with.
type Keys struct {
	ids    []age.Identity
	source string // for messages: where the identities came from
}

// LoadKeys reads identityFile (an age identity file as age-keygen
// writes, or an unencrypted OpenSSH private key) and passphraseFile (a
// passphrase on its first line); either may be "". It returns nil when
// both are.
func LoadKeys(identityFile, passphraseFile string) (*Keys, error) {
	if identityFile == "" && passphraseFile == "" {
		return nil, nil
	}
	k := &Keys{}
	var from []string
	if identityFile != "" {
		b, err := os.ReadFile(identityFile)
		if err != nil {
			return nil, fmt.Errorf("age-identity: %w", err)
		}
		fk, err := KeysFrom(b, identityFile)
		if err != nil {
			return nil, fmt.Errorf("age-identity %w", err)
		}
		k.ids = append(k.ids, fk.ids...)
		from = append(from, fk.source)
	}
	if passphraseFile != "" {
		pass, err := ReadPassphrase(passphraseFile)
		if err != nil {
			return nil, err
		}
		id, err := age.NewScryptIdentity(pass) // fails only for an empty one
		if err != nil {
			return nil, err
		}
		k.ids = append(k.ids, id)
		from = append(from, "tried the passphrase in "+passphraseFile)
	}
	k.source = strings.Join(from, ", ")
	return k, nil
}

// KeysFrom makes Keys of identities read from b (ParseIdentities);
// source names where they came from, for messages.
func KeysFrom(b []byte, source string) (*Keys, error) {
	ids, err := ParseIdentities(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	return &Keys{ids: ids, source: "tried " + source}, nil
}

// ParseIdentities reads identities from b: AGE-SECRET-KEY-1 lines (age
// identity file; also one such line alone, as recovery.conf may hold it)
// or an SSH private key in PEM/OpenSSH form.
func ParseIdentities(b []byte) ([]age.Identity, error) {
	if bytes.Contains(b, []byte("PRIVATE KEY-----")) {
		id, err := agessh.ParseIdentity(b)
		if err != nil {
			var pm *ssh.PassphraseMissingError
			if errors.As(err, &pm) {
				return nil, errors.New("the SSH key is protected by a passphrase; use a key without one or an age identity file (age-keygen)")
			}
			return nil, fmt.Errorf("SSH private key: %w", err)
		}
		return []age.Identity{id}, nil
	}
	ids, err := age.ParseIdentities(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("not an age identity file (AGE-SECRET-KEY-1… lines, see age-keygen) or SSH private key: %w", err)
	}
	return ids, nil
}

// ReadPassphrase reads the first line of file, which must not be
// readable by others (it opens every set encrypted with it).
func ReadPassphrase(file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", fmt.Errorf("encrypt-passphrase-file: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("encrypt-passphrase-file %s has mode %04o; run: chmod 600 %s", file, fi.Mode().Perm(), file)
	}
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", fmt.Errorf("encrypt-passphrase-file %s: %w", file, err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", fmt.Errorf("encrypt-passphrase-file %s: the first line is empty; it must hold the passphrase", file)
	}
	return line, nil
}

// KeysTyped makes Keys of what a person typed for an encrypted set (the
// recovery's Key screen): an AGE-SECRET-KEY-1 line, the path of an
// identity file (age or SSH), or else a passphrase.
func KeysTyped(typed string) (*Keys, error) {
	switch {
	case strings.HasPrefix(typed, "AGE-SECRET-KEY-"):
		return KeysFrom([]byte(typed), "the key typed")
	case strings.HasPrefix(typed, "/"):
		if b, err := os.ReadFile(typed); err == nil {
			return KeysFrom(b, typed)
		}
	}
	id, err := age.NewScryptIdentity(typed) // fails only for an empty one
	if err != nil {
		return nil, err
	}
	return &Keys{ids: []age.Identity{id}, source: "tried the passphrase typed"}, nil
}

// With returns k and o together (either may be nil).
func (k *Keys) With(o *Keys) *Keys {
	if k == nil || o == nil {
		return cmpKeys(k, o)
	}
	return &Keys{ids: append(append([]age.Identity(nil), k.ids...), o.ids...), source: k.source + ", " + o.source}
}

func cmpKeys(k, o *Keys) *Keys {
	if k != nil {
		return k
	}
	return o
}
