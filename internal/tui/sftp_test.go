package tui_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/gdamore/tcell/v2"

	"github.com/pibackup/pibackup/internal/source"
	"github.com/pibackup/pibackup/internal/testfs"
	"github.com/pibackup/pibackup/internal/testsrv"
	"github.com/pibackup/pibackup/internal/tui/model"
)

// keyOpener is the real source.Opener with an SSH identity added, as the
// recovery adds identity= from recovery.conf (the test sshd takes keys
// only).
type keyOpener struct {
	o   *source.Opener
	key []byte
}

func (k keyOpener) Open(ctx context.Context, sp source.Spec) (source.Source, error) {
	if sp.Kind == source.KindSFTP {
		sp.Identity = k.key
	}
	return k.o.Open(ctx, sp)
}

// TestRestoreOverRealSFTP drives the UI through a whole restore from a
// real OpenSSH server: host key shown and accepted, sets listed and the
// payload read over SFTP onto the target image.
func TestRestoreOverRealSFTP(t *testing.T) {
	testfs.Require(t, "sftp")
	w := newWorld(t)
	s := testsrv.StartSSHD(t)
	key, err := os.ReadFile(s.KeyPath)
	if err != nil {
		t.Fatal(err)
	}
	h := start(t, w, func(d *model.Deps) { d.Opener = keyOpener{o: &source.Opener{}, key: key} })
	url := fmt.Sprintf("sftp://%s@127.0.0.1:%d%s", s.User, s.Port, w.BackupDir)
	h.wait("Restore a backup")
	h.rune('r')
	h.wait("Network or other location")
	h.rune('n')
	h.wait("Location")
	h.typeText(url)
	h.key(tcell.KeyEnter) // to the password field
	h.key(tcell.KeyEnter) // no password: the key is used
	h.wait(s.Fingerprint)
	h.key(tcell.KeyTab) // Reject → Accept
	h.key(tcell.KeyEnter)
	h.wait("Backups in " + url)
	h.down(1)
	h.key(tcell.KeyEnter)
	h.wait("Restore " + w.NewestSet + " onto")
	h.down(2) // sdb; over SFTP the set's disk (sda) is not protected
	h.key(tcell.KeyEnter)
	h.wait("Nothing has been written yet")
	h.key(tcell.KeyEnter)
	h.wait("Type sdb")
	h.typeText("sdb")
	h.key(tcell.KeyEnter)
	h.wait("Restore complete")
	got, err := w.TargetContent(int(w.Target.Size))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(got, w.Payload) {
		t.Errorf("target image does not hold the payload read over SFTP")
	}
}

func TestRealSFTPWrongKey(t *testing.T) {
	testfs.Require(t, "sftp")
	w := newWorld(t)
	s := testsrv.StartSSHD(t)
	h := start(t, w, func(d *model.Deps) { d.Opener = keyOpener{o: &source.Opener{}} })
	h.wait("Restore a backup")
	h.rune('r')
	h.wait("Network or other location")
	h.rune('n')
	h.wait("Location")
	h.typeText(fmt.Sprintf("sftp://%s@127.0.0.1:%d%s", s.User, s.Port, w.BackupDir))
	h.key(tcell.KeyEnter)
	h.typeText("not-the-password")
	h.key(tcell.KeyEnter)
	h.wait(s.Fingerprint)
	h.key(tcell.KeyTab)
	h.key(tcell.KeyEnter)
	h.wait("authentication failed")
	h.wait("Network or other location")
}
