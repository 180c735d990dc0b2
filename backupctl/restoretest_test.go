package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pibackup/pibackup/internal/notify"
)

// TestRestoreTest runs `backupctl restore-test` on a set of every type
// and on a raspiBackup set: each restores into a scratch image, passes
// every check, is recorded for status, and leaves the work folder empty.
func TestRestoreTest(t *testing.T) {
	d := fixture(t)
	backups := t.TempDir()
	work := t.TempDir()
	var sets []string
	for _, typ := range [][]string{{"-t", "dd"}, {"-t", "ddz", "-z", "zstd"}, {"-t", "tar"}, {"-t", "tgz"}, {"-t", "rsync"}} {
		sets = append(sets, backupOK(t, backups, append([]string{"--source-disk", d.Path}, typ...)...))
	}
	sets = append(sets, asRaspiBackupSet(t, sets[3], t.TempDir()))
	for _, set := range sets {
		t.Run(filepath.Base(set), func(t *testing.T) {
			code, out, errOut := cli(context.Background(), "restore-test", "--work-dir", work, set)
			t.Logf("exit %d:\n%s", code, out)
			if code != 0 || !strings.Contains(out, "passed") || strings.Contains(out, "FAILED") {
				t.Fatalf("restore-test: exit %d\n%s\n%s", code, out, errOut)
			}
			for _, want := range []string{"e2fsck partition 2", "fsck.vfat partition 1", "/etc/fstab: ", "cmdline.txt: "} {
				if !strings.Contains(out, want) {
					t.Errorf("no %q check in:\n%s", want, out)
				}
			}
			if strings.Contains(set, "-rsync-") && !strings.Contains(out, "files equal their hashes") {
				t.Errorf("the rsync set's files were not sampled:\n%s", out)
			}
			if es, _ := os.ReadDir(work); len(es) > 0 {
				t.Errorf("the work folder is not empty: %v", es)
			}
		})
	}
	// A host folder stands for its newest set, and status shows the test.
	code, out, _ := cli(context.Background(), "restore-test", "--work-dir", work, filepath.Join(backups, "testpi"))
	if code != 0 || !strings.Contains(out, filepath.Base(sets[4])) {
		t.Errorf("restore-test of the host folder: exit %d, want the newest set %s:\n%s", code, filepath.Base(sets[4]), out)
	}
	_, out, _ = cli(context.Background(), "status", backups)
	if !strings.Contains(out, "last test restore: ") || !strings.Contains(out, filepath.Base(sets[4])) {
		t.Errorf("status does not show the restore test:\n%s", out)
	}
}

// TestRestoreTestFails: a set with one flipped byte in its payload, and
// one whose /etc/fstab names a UUID no partition has, fail with exit 4 and
// name the problem; status then says the last restore test failed.
func TestRestoreTestFails(t *testing.T) {
	d := fixture(t)
	work := t.TempDir()
	t.Run("flipped-byte", func(t *testing.T) {
		backups := t.TempDir()
		set := backupOK(t, backups, "-t", "tgz", "--source-disk", d.Path)
		payload := filepath.Join(set, filepath.Base(set)+".tgz")
		f, err := os.OpenFile(payload, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := f.Stat()
		b := make([]byte, 1)
		f.ReadAt(b, fi.Size()/2)
		f.WriteAt([]byte{b[0] ^ 0x01}, fi.Size()/2)
		f.Close()
		// The failure is an error notice through the configured webhook.
		notices := make(chan notify.Payload, 4)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var p notify.Payload
			json.NewDecoder(r.Body).Decode(&p)
			notices <- p
		}))
		defer srv.Close()
		conf := filepath.Join(t.TempDir(), "backupctl.conf")
		if err := os.WriteFile(conf, []byte(fmt.Sprintf("[webhook]\nurl = %q\n", srv.URL)), 0o600); err != nil {
			t.Fatal(err)
		}
		code, out, errOut := cli(context.Background(), "restore-test", "-f", conf, "--work-dir", work, set)
		t.Logf("exit %d:\n%s%s", code, out, errOut)
		if code != exitVerify || !strings.Contains(out, "FAILED restore") || !strings.Contains(out+errOut, filepath.Base(payload)) {
			t.Errorf("flipped byte: exit %d; want %d, a failed restore check naming %s", code, exitVerify, filepath.Base(payload))
		}
		select {
		case p := <-notices:
			if p.OK || !strings.Contains(p.Title, "restore test") || !strings.Contains(p.Title, "FAILED") || !strings.Contains(p.Message, filepath.Base(payload)) {
				t.Errorf("notice: %+v; want a failed restore test naming %s", p, filepath.Base(payload))
			}
		default:
			t.Errorf("no notice reached the webhook")
		}
		_, status, _ := cli(context.Background(), "status", backups)
		if !strings.Contains(status, "LAST TEST RESTORE FAILED") {
			t.Errorf("status does not show the failed restore test:\n%s", status)
		}
	})
	t.Run("fstab-missing-uuid", func(t *testing.T) {
		src := copyFixture(t)
		const ghost = "UUID=0badc0de-0000-4000-8000-00000000dead"
		t.Run("edit", func(t *testing.T) { // unmounted when it ends
			fstab := filepath.Join(mountRoot(t, src, true), "etc", "fstab")
			b, err := os.ReadFile(fstab)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(fstab, append(b, []byte(ghost+"  /srv/data  ext4  defaults  0  2\n")...), 0o644); err != nil {
				t.Fatal(err)
			}
		})
		set := backupOK(t, t.TempDir(), "-t", "rsync", "--source-disk", src.Path)
		code, out, errOut := cli(context.Background(), "restore-test", "--work-dir", work, set)
		t.Logf("exit %d:\n%s%s", code, out, errOut)
		if code != exitVerify || !strings.Contains(out, "FAILED /etc/fstab") || !strings.Contains(out, ghost) {
			t.Errorf("fstab with a missing UUID: exit %d; want %d and a failed /etc/fstab check naming %s", code, exitVerify, ghost)
		}
	})
	if es, _ := os.ReadDir(work); len(es) > 0 {
		t.Errorf("the work folder is not empty after failed tests: %v", es)
	}
}

// TestRestoreTestKilled kills a restore test while it writes its image:
// the image stays (nothing can clean up after SIGKILL), the next run
// removes it. A restore test also refuses to run while the host's backup
// lock is held.
func TestRestoreTestKilled(t *testing.T) {
	d := fixture(t)
	faultBinary(t)
	backups := t.TempDir()
	set := backupOK(t, backups, "-t", "tgz", "--source-disk", d.Path)
	work := t.TempDir()
	cmd, out, done := startBin(t, "restore-test", "--work-dir", work, set)
	faultWait(t, "the work image", func() bool {
		m, _ := filepath.Glob(filepath.Join(work, "pibackup-restore-test-*.img"))
		return len(m) > 0
	})
	signalBin(cmd, syscall.SIGKILL)
	<-done
	t.Logf("killed: %s", out)
	left, _ := filepath.Glob(filepath.Join(work, "pibackup-restore-test-*.img"))
	code, out2, errOut := cli(context.Background(), "restore-test", "--work-dir", work, set)
	if code != 0 {
		t.Fatalf("the run after the killed one: exit %d\n%s%s", code, out2, errOut)
	}
	for _, l := range left {
		if _, err := os.Stat(l); err == nil {
			t.Errorf("the killed run's image %s is still there", l)
		}
	}

	f, err := os.OpenFile(filepath.Join(backups, "testpi", ".backupctl.lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	code, _, errOut = cli(context.Background(), "restore-test", "--work-dir", work, set)
	if code != exitLocked || !strings.Contains(errOut, "lock") {
		t.Errorf("restore-test while a backup holds the lock: exit %d %q; want %d", code, errOut, exitLocked)
	}
	t.Logf("refused in %s", time.Since(start))
}
