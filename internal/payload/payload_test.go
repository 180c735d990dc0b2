package payload

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"golang.org/x/crypto/ssh"
)

func seal(t *testing.T, s *Sealer, plain []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := s.Seal(&b)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(plain)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestSealOpen: every recipient kind opens with its identity, the
// manifest's block names kinds and public ids only, and the errors say
// what is wrong: no key, the wrong key, a damaged file (named).
func TestSealOpen(t *testing.T) {
	dir := t.TempDir()
	id1, _ := age.GenerateX25519Identity()
	id2, _ := age.GenerateX25519Identity()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	spub, _ := ssh.NewPublicKey(pub)
	sshLine := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(spub)))
	rcpts := filepath.Join(dir, "recipients")
	os.WriteFile(rcpts, []byte("# team\n\n"+id2.Recipient().String()+"\n"+sshLine+"\n"), 0o644)
	s, err := NewSealer([]string{id1.Recipient().String(), rcpts}, "")
	if err != nil {
		t.Fatal(err)
	}
	info := s.Info()
	var kinds []string
	for _, r := range info.Recipients {
		kinds = append(kinds, r.Kind)
	}
	if got := strings.Join(kinds, ","); got != "x25519,x25519,ssh-ed25519" || info.Recipients[0].ID != id1.Recipient().String() || !strings.HasPrefix(info.Recipients[2].ID, "SHA256:") {
		t.Errorf("info %+v", info)
	}
	plain := bytes.Repeat([]byte("payload "), 20000) // several 64 KiB chunks
	ct := seal(t, s, plain)

	block, _ := ssh.MarshalPrivateKey(priv, "")
	sshKey := filepath.Join(dir, "id_ed25519")
	os.WriteFile(sshKey, pemEncode(block), 0o600)
	for _, src := range []string{"age", "ssh"} {
		var k *Keys
		if src == "age" {
			k, err = KeysFrom([]byte(id2.String()), "key")
		} else {
			k, err = LoadKeys(sshKey, "")
		}
		if err != nil {
			t.Fatal(err)
		}
		r, err := Open(bytes.NewReader(ct), "x.tar.age", k)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if got, err := io.ReadAll(r); err != nil || !bytes.Equal(got, plain) {
			t.Errorf("%s: %d bytes, %v", src, len(got), err)
		}
	}
	// The error says what is wrong; which flag or screen fixes it is the
	// CLI's and the recovery UI's to say.
	if _, err := Open(bytes.NewReader(ct), "x.tar.age", nil); !errors.Is(err, ErrNoKey) || !strings.Contains(err.Error(), "encrypted (age)") ||
		strings.Contains(err.Error(), "--") {
		t.Errorf("no key: %v", err)
	}
	other, _ := age.GenerateX25519Identity()
	ok, _ := KeysFrom([]byte(other.String()), "other.key")
	if _, err := Open(bytes.NewReader(ct), "x.tar.age", ok); !errors.Is(err, ErrWrongKey) || !strings.Contains(err.Error(), "other.key") {
		t.Errorf("wrong key: %v", err)
	}
	bad := bytes.Clone(ct)
	bad[len(bad)/2] ^= 1
	k, _ := KeysFrom([]byte(id1.String()), "key")
	r, err := Open(bytes.NewReader(bad), "x.tar.age", k)
	if err == nil {
		_, err = io.ReadAll(r)
	}
	if err == nil || !strings.Contains(err.Error(), "x.tar.age") {
		t.Errorf("flipped byte: %v", err)
	}
}

// TestSealerRefusals: secrets given as recipients, a passphrase next to
// recipients, a passphrase file others can read.
func TestSealerRefusals(t *testing.T) {
	dir := t.TempDir()
	id, _ := age.GenerateX25519Identity()
	pass := filepath.Join(dir, "pass")
	os.WriteFile(pass, []byte("secret\n"), 0o644)
	for _, tc := range []struct {
		to   []string
		pass string
		want string
	}{
		{[]string{id.String()}, "", "secret key"},
		{[]string{id.Recipient().String()}, pass, "exclude each other"},
		{nil, pass, "chmod 600"},
		{[]string{filepath.Join(dir, "none")}, "", "neither a recipient"},
	} {
		_, err := NewSealer(tc.to, tc.pass)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q %q: %v, want %q", tc.to, tc.pass, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "AGE-SECRET-KEY-1") {
			t.Errorf("the error shows the secret key: %v", err)
		}
	}
	os.Chmod(pass, 0o600)
	s, err := NewSealer(nil, pass)
	if err != nil {
		t.Fatal(err)
	}
	ct := seal(t, s, []byte("x"))
	k, err := LoadKeys("", pass)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Decrypt(bytes.NewReader(ct), "a.age", k); err != nil {
		t.Errorf("passphrase: %v", err)
	}
	if k, _ := KeysTyped("secret"); k == nil {
		t.Error("typed passphrase gives no keys")
	} else if _, err := Decrypt(bytes.NewReader(ct), "a.age", k); err != nil {
		t.Errorf("typed passphrase: %v", err)
	}
}

func pemEncode(b *pem.Block) []byte { return pem.EncodeToMemory(b) }
