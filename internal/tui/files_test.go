package tui_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/gdamore/tcell/v2"

	"github.com/pibackup/pibackup/internal/tui/model"
	"github.com/pibackup/pibackup/internal/tui/tuitest"
)

// TestGetFilesBack browses a set, marks a file in one folder and a file
// in another, copies them onto the USB disk's partition and finds
// exactly those under pibackup-files/<set>/ with their full paths; what
// the copy left out (symlinks, devices on FAT) is said with the result.
func TestGetFilesBack(t *testing.T) {
	w := newWorld(t)
	h := start(t, w, func(d *model.Deps) { d.Browser = &tuitest.Browser{Root: w.FilesRoot, Skipped: 2} })
	h.wait("Get files back")
	h.rune('f')
	h.wait("Network or other location")
	h.rune('n')
	h.wait("Location")
	h.typeText("dir:" + w.BackupDir)
	h.key(tcell.KeyEnter)
	h.wait("Backups in")
	h.down(1)
	h.key(tcell.KeyEnter)
	h.wait("/ in " + w.NewestSet)
	h.wait("etc/")
	h.rune('c') // nothing marked yet
	h.wait("nothing marked")
	h.key(tcell.KeyEnter) // etc/ is the first row
	h.wait("/etc in ")
	h.wait("fstab")
	h.rune(' ') // fstab, the first row
	h.wait("[x] fstab")
	h.wait("1 marked")
	h.key(tcell.KeyEscape) // up, not out of the set
	h.wait("/ in " + w.NewestSet)
	h.down(1)
	h.key(tcell.KeyEnter) // home/
	h.wait("/home in ")
	h.key(tcell.KeyEnter) // pi/
	h.wait("notes.txt")
	h.key(tcell.KeyEnter) // a file's Enter marks it
	h.wait("2 marked")
	h.rune('c')
	h.wait("Copy 2 marked to")
	h.wait("/dev/sda1")
	h.key(tcell.KeyEnter)
	h.wait("Copy complete")
	h.wait("copied to /dev/sda1:/pibackup-files/" + w.NewestSet)
	h.wait("2 symbolic links or device files left out: FAT cannot hold them")
	out := filepath.Join(w.Dir, "mnt", "sda1", "pibackup-files", w.NewestSet)
	for rel, want := range map[string]string{"etc/fstab": "PARTUUID=1234-02 / ext4 defaults 0 1\n", "home/pi/notes.txt": "remember the milk\n"} {
		got, err := os.ReadFile(filepath.Join(out, rel))
		if err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", rel, got, err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "etc", "hostname")); err == nil {
		t.Errorf("etc/hostname was copied but not marked")
	}
	h.key(tcell.KeyEscape)
	h.wait("Get files back")
}
