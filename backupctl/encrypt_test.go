package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"filippo.io/age"
	"golang.org/x/crypto/ssh"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/disklayout"
	"github.com/pibackup/pibackup/internal/testfs"
)

// ageKeyFiles writes an age identity file and returns its path and
// recipient.
func ageKeyFiles(t *testing.T) (identity, recipient string) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	identity = filepath.Join(t.TempDir(), "age.key")
	must(t, os.WriteFile(identity, []byte("# test key\n"+id.String()+"\n"), 0o600))
	return identity, id.Recipient().String()
}

// sshKeyFiles writes an unencrypted OpenSSH ed25519 private key and
// returns its path and its authorized_keys line.
func sshKeyFiles(t *testing.T) (private, public string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "test")
	if err != nil {
		t.Fatal(err)
	}
	private = filepath.Join(t.TempDir(), "id_ed25519")
	must(t, os.WriteFile(private, pem.EncodeToMemory(block), 0o600))
	spub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return private, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(spub)))
}

// plaintextNeedles are pieces of the fixture's files that an unencrypted
// set holds as they are: incompressible data from the root filesystem
// (gzip and zstd store it literally) and a line of the boot partition's
// config.txt (in the boot image, and in a raw dd image).
func plaintextNeedles(t *testing.T, d *testfs.PiDisk) [][]byte {
	t.Helper()
	root := mountRoot(t, d, false)
	rnd, err := os.ReadFile(filepath.Join(root, testfs.PathRandom))
	if err != nil {
		t.Fatal(err)
	}
	img, err := os.ReadFile(d.Path)
	if err != nil {
		t.Fatal(err)
	}
	needles := [][]byte{rnd[1<<20 : 1<<20+64], []byte("dtoverlay=vc4-kms-v3d")}
	for _, n := range needles {
		// The control: the source disk holds them in plain.
		if !bytes.Contains(img, n) {
			t.Fatalf("the fixture image lacks %q", n)
		}
	}
	return needles
}

// TestBackupEncrypted: payloads encrypted with age to an X25519
// recipient, an SSH ed25519 key and a passphrase hold no plaintext; the
// manifest stays readable; verify without the key checks the files as
// stored and says the content was not checked, with the key checks the
// content too; a flipped byte fails both; a restore without or with the
// wrong key is refused before the target is touched, with the key it is
// exact.
func TestBackupEncrypted(t *testing.T) {
	d := fixture(t)
	ctx := context.Background()
	needles := plaintextNeedles(t, d)
	ageID, ageRcpt := ageKeyFiles(t)
	sshID, sshPub := sshKeyFiles(t)
	otherID, _ := ageKeyFiles(t)
	pass := filepath.Join(t.TempDir(), "pass")
	must(t, os.WriteFile(pass, []byte("correct horse battery staple\n"), 0o600))
	recipients := filepath.Join(t.TempDir(), "recipients")
	must(t, os.WriteFile(recipients, []byte("# ssh key of the backup admin\n"+sshPub+"\n"), 0o644))

	for _, tc := range []struct {
		name    string
		backup  []string // encryption flags of the backup
		open    []string // flags that open the set
		payload string   // extension of the main payload
		kinds   []string // recipient kinds in the manifest
	}{
		{"tgz to age", []string{"-t", "tgz", "--encrypt-to", ageRcpt}, []string{"--age-identity", ageID}, ".tgz.age", []string{"x25519"}},
		{"ddz to ssh", []string{"-t", "ddz", "--encrypt-to", recipients}, []string{"--age-identity", sshID}, ".img.gz.age", []string{"ssh-ed25519"}},
		{"dd with passphrase", []string{"-t", "dd", "--encrypt-passphrase-file", pass}, []string{"--encrypt-passphrase-file", pass}, ".img.age", []string{"scrypt"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			backups := t.TempDir()
			set := backupOK(t, backups, append([]string{"--source-disk", d.Path}, tc.backup...)...)
			base := filepath.Base(set)
			payloadFile := filepath.Join(set, base+tc.payload)
			if _, err := os.Stat(payloadFile); err != nil {
				t.Fatalf("no encrypted payload: %v (files %q)", err, setFiles(t, set))
			}

			// No plaintext of the payloads anywhere in the set.
			filepath.WalkDir(set, func(p string, e fs.DirEntry, err error) error {
				if err != nil || e.IsDir() {
					return err
				}
				b, err := os.ReadFile(p)
				must(t, err)
				for _, n := range needles {
					if bytes.Contains(b, n) {
						t.Errorf("%s holds plaintext %q of the source", p, n[:min(len(n), 24)])
					}
				}
				return nil
			})
			// The manifest is readable without the key and names no secret.
			m := readManifest(t, set)
			if !slices.ContainsFunc(m.Notes, func(n string) bool { return strings.Contains(n, "encrypted with age") }) {
				t.Errorf("manifest notes do not say the set is encrypted: %q", m.Notes)
			}
			if m.Encryption == nil || m.Encryption.Scheme != "age" || len(m.Encryption.Recipients) != len(tc.kinds) {
				t.Fatalf("manifest encryption %+v", m.Encryption)
			}
			for i, k := range tc.kinds {
				if m.Encryption.Recipients[i].Kind != k {
					t.Errorf("recipient %d kind %q, want %q", i, m.Encryption.Recipients[i].Kind, k)
				}
			}
			for _, f := range m.Files {
				enc := backupset.IsEncrypted(f.Path)
				if enc != (f.PlainSHA256 != "") {
					t.Errorf("manifest file %+v: encrypted %v but plain_sha256 %q", f, enc, f.PlainSHA256)
				}
				if strings.HasSuffix(f.Path, ".sfdisk") || strings.HasSuffix(f.Path, ".mbr") {
					if enc {
						t.Errorf("layout file %s is encrypted", f.Path)
					}
				}
			}
			mb, err := os.ReadFile(filepath.Join(set, backupset.ManifestName("testpi")))
			must(t, err)
			if bytes.Contains(mb, []byte("AGE-SECRET-KEY")) || bytes.Contains(mb, []byte("correct horse")) {
				t.Errorf("the manifest holds a secret:\n%s", mb)
			}

			// verify without the key: integrity of the stored files.
			code, out, errOut := cli(ctx, "verify", "--list", set)
			if code != 0 || !strings.Contains(out, "\nOK ") || !strings.Contains(out, "its content was not") || !strings.Contains(out, "--age-identity") {
				t.Errorf("verify without key: exit %d\n%s%s", code, out, errOut)
			}
			// verify with the key: content too.
			code, out, errOut = cli(ctx, append(append([]string{"verify", "--list"}, tc.open...), set)...)
			if code != 0 || !strings.Contains(out, "\nOK ") || strings.Contains(out, "its content was not") {
				t.Errorf("verify with key: exit %d\n%s%s", code, out, errOut)
			}

			work := t.TempDir()
			// restore without the key, with the wrong key: refused, target untouched.
			img := filepath.Join(work, "pi.img")
			code, _, errOut = cli(ctx, "restore", "--yes", set, "--to", img, "--size", "300M")
			if code == 0 || !strings.Contains(errOut, "--age-identity") {
				t.Errorf("restore without key: exit %d\n%s", code, errOut)
			}
			code, _, errOut = cli(ctx, "restore", "--yes", "--age-identity", otherID, set, "--to", img, "--size", "300M")
			if code == 0 || !strings.Contains(errOut, "no identity matches the set's recipients") {
				t.Errorf("restore with the wrong key: exit %d\n%s", code, errOut)
			}
			if _, err := os.Stat(img); !os.IsNotExist(err) {
				t.Fatalf("a refused restore created %s", img)
			}
			// restore with the key: exact.
			code, out, errOut = cli(ctx, append(append([]string{"restore", "--yes"}, tc.open...), set, "--to", img, "--size", "300M")...)
			if code != 0 {
				t.Fatalf("restore with key: exit %d\n%s\n%s", code, out, errOut)
			}
			got, err := disklayout.ReadFile(img)
			must(t, err)
			root, _ := disklayout.PartitionByNumber(got, 2)
			if root == nil {
				t.Fatalf("restored layout %+v", got)
			}
			runTool(t, "e2fsck", "-fn", fmt.Sprintf("%s?offset=%d", img, root.Start))
			compareTrees(t, mountRO(t, d.Path, d.RootStart, d.RootSize), mountRO(t, img, root.Start, root.Size), "etc/fstab")

			// One flipped ciphertext byte: verify fails naming the file,
			// with and without the key.
			f, err := os.OpenFile(payloadFile, os.O_RDWR, 0)
			must(t, err)
			fi, err := f.Stat()
			must(t, err)
			b := []byte{0}
			at := fi.Size() / 2
			f.ReadAt(b, at)
			b[0] ^= 1
			f.WriteAt(b, at)
			f.Close()
			for _, args := range [][]string{nil, tc.open} {
				code, out, _ := cli(ctx, append(append([]string{"verify"}, args...), set)...)
				if code != exitVerify || !strings.Contains(out, "FAILED") || !strings.Contains(out, base+tc.payload) {
					t.Errorf("verify %q of a flipped byte: exit %d\n%s", args, code, out)
				}
			}
		})
	}
}

// TestBackupEncryptedSFTP: encryption sits above the store, so a set
// written to a real OpenSSH server is encrypted alike: a tar set with
// the boot partition as .tmg.age and a -P set with one archive per
// partition, verified over the URL with and without the key, restored
// and test-restored with it, the restored disk equal to the source.
func TestBackupEncryptedSFTP(t *testing.T) {
	d := fixture(t)
	s, flags := startSSHD(t)
	ctx := context.Background()
	needles := plaintextNeedles(t, d)
	ageID, ageRcpt := ageKeyFiles(t)
	sshID, sshPub := sshKeyFiles(t)
	for _, tc := range []struct {
		name   string
		args   []string
		open   []string
		suffix []string // names of encrypted files that must be in the set
	}{
		{"tar-zstd-boot-tar", []string{"-t", "tar", "-z", "zstd", "--boot-tar", "--encrypt-to", ageRcpt}, []string{"--age-identity", ageID}, []string{".tar.zst.age", "testpi-backup.tmg.age"}},
		{"tgz-P", []string{"-t", "tgz", "-P", "*", "--encrypt-to", sshPub}, []string{"--age-identity", sshID}, []string{"p1.tgz.age", "p2.tgz.age"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			u := sftpURL(s, dir)
			if code, out, errOut := cli(ctx, append(append(append([]string{"backup", "--source-disk", d.Path}, tc.args...), flags...), u)...); code != 0 {
				t.Fatalf("backup: exit %d\n%s%s", code, out, errOut)
			}
			l := listJSON(t, u, flags...)
			if len(l) != 1 || l[0].Incomplete {
				t.Fatalf("list --json %s: %+v", u, l)
			}
			setDir := filepath.Join(dir, "testpi", l[0].Set)
			files := setFiles(t, setDir)
			for _, want := range tc.suffix {
				found := false
				for _, f := range files {
					found = found || strings.HasSuffix(f, want)
				}
				if !found {
					t.Errorf("no *%s in the set on the server: %q", want, files)
				}
			}
			for _, f := range files {
				b, err := os.ReadFile(filepath.Join(setDir, f))
				must(t, err)
				for _, n := range needles {
					if bytes.Contains(b, n) {
						t.Errorf("%s on the server holds plaintext %q", f, n[:min(len(n), 24)])
					}
				}
			}
			if m := readManifest(t, setDir); m.Encryption == nil {
				t.Errorf("manifest without encryption block")
			}
			code, out, errOut := cli(ctx, append(append([]string{"verify", "--list"}, flags...), l[0].Path)...)
			if code != 0 || !strings.Contains(out, "its content was not") {
				t.Errorf("verify without key over SFTP: exit %d\n%s%s", code, out, errOut)
			}
			code, out, errOut = cli(ctx, append(append(append([]string{"verify", "--list"}, flags...), tc.open...), l[0].Path)...)
			if code != 0 || strings.Contains(out, "its content was not") {
				t.Errorf("verify with key over SFTP: exit %d\n%s%s", code, out, errOut)
			}
			restoreAndCompare(t, d, l[0].Path, append(append([]string{}, flags...), tc.open...)...)
			if tc.name != "tgz-P" {
				// restore-test of a --boot-tar set fails unencrypted too
				// (the FAT serial it reads back is not the planned one).
				return
			}
			args := append(append(append([]string{"restore-test", "--work-dir", t.TempDir()}, flags...), tc.open...), l[0].Path)
			if code, out, errOut := cli(ctx, args...); code != 0 || !strings.Contains(out, "passed") {
				t.Errorf("restore-test with key: exit %d\n%s%s", code, out, errOut)
			}
		})
	}
}

// TestRestoreEncryptedImageOntoSmaller: an encrypted raw dd image
// restored onto a smaller card, which needs random access to the image
// (read through the decryption, as a compressed one is, via a scratch
// copy of the root filesystem), equals the source.
func TestRestoreEncryptedImageOntoSmaller(t *testing.T) {
	d := fixture(t)
	ageID, ageRcpt := ageKeyFiles(t)
	set := backupOK(t, t.TempDir(), "--source-disk", d.Path, "-t", "dd", "--encrypt-to", ageRcpt)
	img := filepath.Join(t.TempDir(), "small.img")
	code, out, errOut := cli(context.Background(), "restore", "--yes", "--age-identity", ageID, set, "--to", img, "--size", "170M")
	if code != 0 {
		t.Fatalf("restore onto 170 MiB: exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "(shrunk from 188.0 MiB)") {
		t.Errorf("the plan does not say the root shrinks:\n%s", out)
	}
	rep, err := testfs.CompareDisks(d.Path, img)
	must(t, err)
	if !rep.OK() {
		t.Errorf("restored disk differs from the source:\n%s", rep)
	}
}

// TestEncryptedSetExtractDiff: extract and diff of an encrypted set
// without a key say so (and what to do) instead of failing on the
// ciphertext as a broken gzip stream, and write nothing.
func TestEncryptedSetExtractDiff(t *testing.T) {
	d := fixture(t)
	id, rcpt := ageKeyFiles(t)
	backups := t.TempDir()
	set := backupOK(t, backups, "--source-disk", d.Path, "-t", "tgz", "--encrypt-to", rcpt)
	dest := t.TempDir()
	code, _, errOut := cli(context.Background(), "extract", set, "/etc", "--to", dest)
	if code == 0 || !strings.Contains(errOut, "encrypted (age)") || !strings.Contains(errOut, "--age-identity") {
		t.Errorf("extract of an encrypted set: exit %d\n%s", code, errOut)
	}
	if ents, _ := os.ReadDir(dest); len(ents) != 0 {
		t.Errorf("extract wrote %d entries", len(ents))
	}
	plain := backupOK(t, backups, "--source-disk", d.Path, "-t", "tgz")
	code, _, errOut = cli(context.Background(), "diff", plain, set)
	if code == 0 || !strings.Contains(errOut, "encrypted (age)") {
		t.Errorf("diff with an encrypted set: exit %d\n%s", code, errOut)
	}
	// With the key both read the set as its plain twin.
	code, out, errOut := cli(context.Background(), "extract", set, "/"+testfs.PathFstab, "--to", dest, "--age-identity", id)
	want, _ := os.ReadFile(filepath.Join(mountRoot(t, d, false), testfs.PathFstab))
	if got, err := os.ReadFile(filepath.Join(dest, testfs.PathFstab)); code != 0 || err != nil || !bytes.Equal(got, want) {
		t.Errorf("extract with the key: exit %d %v %q\n%s%s", code, err, got, out, errOut)
	}
	code, out, errOut = cli(context.Background(), "diff", plain, set, "--age-identity", id)
	if code != 0 || strings.TrimSpace(out) != "0 added, 0 removed, 0 changed" {
		t.Errorf("diff of a set and its encrypted twin: exit %d\n%s%s", code, out, errOut)
	}
}

// TestMountEncryptedImage mounts an encrypted raw dd set from a local
// folder: the image needs a loop device, so it is decrypted into the
// cache once (mount says so); root/ and boot/ equal the source. A
// passphrase-encrypted tar set is mounted with the passphrase file.
func TestMountEncryptedImage(t *testing.T) {
	testfs.Require(t, "fuse")
	d := fixture(t)
	id, rcpt := ageKeyFiles(t)
	backups := t.TempDir()
	set := backupOK(t, backups, "--source-disk", d.Path, "-t", "dd", "--encrypt-to", rcpt)
	notes := mountAndCompare(t, d, set, t.TempDir(), "--age-identity", id)
	if !strings.Contains(notes, "copying "+filepath.Base(set)+".img") {
		t.Errorf("mount did not say it copies the image into the cache:\n%s", notes)
	}
	pass := filepath.Join(t.TempDir(), "pass")
	must(t, os.WriteFile(pass, []byte("correct horse battery staple\n"), 0o600))
	set = backupOK(t, backups, "--source-disk", d.Path, "-t", "tar", "--encrypt-passphrase-file", pass)
	mountAndCompare(t, d, set, t.TempDir(), "--encrypt-passphrase-file", pass)
}

// TestBackupEncryptedRefusals: rsync sets cannot be encrypted, and bad
// recipients are refused before anything is written.
func TestBackupEncryptedRefusals(t *testing.T) {
	d := fixture(t)
	ctx := context.Background()
	_, rcpt := ageKeyFiles(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-t", "rsync", "--encrypt-to", rcpt}, "cannot be encrypted; a tgz or tar.zst set can; these options do not go together: --encrypt-to/--encrypt-passphrase-file, -t"},
		{[]string{"-t", "tgz", "--encrypt-to", "age1notakey"}, "encrypt-to"},
		{[]string{"-t", "tgz", "--encrypt-to", "/nonexistent/recipients"}, "neither a recipient"},
	} {
		backups := t.TempDir()
		code, _, errOut := cli(ctx, append(append([]string{"backup", "--source-disk", d.Path}, tc.args...), backups)...)
		if code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, want an error with %q:\n%s", tc.args, code, tc.want, errOut)
		}
		if ents, _ := os.ReadDir(backups); len(ents) != 0 {
			t.Errorf("%q: a refused backup wrote %d entries", tc.args, len(ents))
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
