package main

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"filippo.io/age"

	"github.com/pibackup/pibackup/internal/payload"
)

// TestAgeKeys: recovery.conf's age_identity= opens a set encrypted to
// its recipient, given inline or as a file on the boot partition; a
// missing file or a line that is no key gives no keys (the restore then
// asks for --age-identity) and never logs the key.
func TestAgeKeys(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	var sealed bytes.Buffer
	w, err := age.Encrypt(&sealed, id.Recipient())
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "payload")
	w.Close()

	boot := t.TempDir()
	if err := os.WriteFile(filepath.Join(boot, "pibackup.key"), []byte("# created by age-keygen\n"+id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logged, nil))
	for _, tc := range []struct {
		name, value string
		ok          bool
	}{
		{"inline", id.String(), true},
		{"file", "pibackup.key", true},
		{"missing file", "nokey", false},
		{"not a key", "AGE-SECRET-KEY-1NOTAKEY", false},
	} {
		k := ageKeys(tc.value, boot, log)
		if (k != nil) != tc.ok {
			t.Errorf("%s: keys %v, want ok=%v", tc.name, k, tc.ok)
			continue
		}
		if k == nil {
			continue
		}
		r, err := payload.Decrypt(bytes.NewReader(sealed.Bytes()), "x.tgz.age", k)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if b, err := io.ReadAll(r); err != nil || string(b) != "payload" {
			t.Errorf("%s: decrypted %q, %v", tc.name, b, err)
		}
	}
	if bytes.Contains(logged.Bytes(), []byte(id.String())) || bytes.Contains(logged.Bytes(), []byte("NOTAKEY")) {
		t.Errorf("the log holds a key:\n%s", logged.String())
	}
}
