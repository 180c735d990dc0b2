//go:build !race

package qemutests

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pibackup/pibackup/internal/disklayout"
)

// TestRestoreFaults: a restore that loses its source midway must end in a
// clear error on the console and a target reported incomplete (no
// partition table, so it cannot be mistaken for a good disk), never in a
// good result.
func TestRestoreFaults(t *testing.T) {
	a := requireArtifacts(t)
	byName := map[string]source{}
	for _, s := range sources() {
		byName[s.name] = s
	}

	t.Run("network-cut/sftp", func(t *testing.T) {
		// An uncompressed image over SFTP is the slowest restore (every
		// block crosses the network), so there is time to cut it.
		res := faultCase(t, a, byName["sftp"], "dd", nil, func(vm *VM) {
			// Cut once payload bytes are flowing: a progress line whose
			// count does not start with 0.
			if _, err := vm.Expect(regexp.MustCompile(`RECOVERY-PROGRESS [a-z ]+ [1-9][0-9.]* [KMG]?i?B/`), restoreDeadline); err != nil {
				t.Fatalf("no progress before the cut: %v\nconsole:\n%s", err, tailString(vm.Console(), 4000))
			}
			out, err := vm.Monitor("set_link n0 off")
			if err != nil {
				t.Fatalf("cut the network: %v %s", err, out)
			}
			t.Logf("network cut at %s", time.Now().Format(time.TimeOnly))
		})
		if !strings.Contains(res.Error, "connection to the server lost") {
			t.Errorf("error does not say the connection was lost: %s", res.Error)
		}
	})

	t.Run("corrupt-set/usb", func(t *testing.T) {
		res := faultCase(t, a, byName["usb"], "tgz", func(t *testing.T, setDir string) {
			// Flip one byte in the middle of the root archive, as a bad
			// sector on the backup disk would.
			p := largest(t, setDir, ".tgz")
			f, err := os.OpenFile(p, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			fi, _ := f.Stat()
			b := []byte{0}
			off := fi.Size() / 2
			if _, err := f.ReadAt(b, off); err != nil {
				t.Fatal(err)
			}
			b[0] ^= 0x10
			if _, err := f.WriteAt(b, off); err != nil {
				t.Fatal(err)
			}
			t.Logf("flipped a bit at byte %d of %s (%d bytes)", off, filepath.Base(p), fi.Size())
		}, nil)
		if !strings.Contains(res.Error, "damaged") {
			t.Errorf("error does not say the set is damaged: %s", res.Error)
		}
	})
}

// faultCase backs the fixture up as typ into src, lets damage change the
// set on the host, restores it in the guest with during injecting a fault,
// and checks that the guest reports failure and leaves no partition table.
func faultCase(t *testing.T, a *artifacts, src source, typ string, damage func(t *testing.T, backupDir string), during func(vm *VM)) Result {
	c := stageCase(t, a, src, typ, damage)
	work, target := c.work, c.target
	// Something on the target before the restore: a failed restore must
	// not leave it looking like a disk with partitions either.
	run(t, "sh", "-c", "printf 'label: dos\\n,64M,c\\n' | sfdisk -q "+target)

	res := bootRecoveryDuring(t, a, work, c.rec, target, c.drives, during, c.unattended()...)
	t.Logf("result: %+v", res)
	if res.Error == "" || res.Verified {
		t.Fatalf("restore with a fault reported success: %+v", res)
	}
	if !res.Incomplete {
		t.Errorf("result does not report the target incomplete: %+v", res)
	}
	console, _ := os.ReadFile(filepath.Join(work, "recovery-console.log"))
	if !bytes.Contains(console, []byte("RESTORE FAILED: /dev/vdb is incomplete and will not boot")) {
		t.Errorf("console does not say the target is incomplete:\n%s", tailString(string(console), 4000))
	}
	if l, err := disklayout.ReadFile(target); err == nil && len(l.Partitions) > 0 {
		t.Errorf("target still has a partition table after the failed restore: %+v", l.Partitions)
	}
	return res
}

// largest returns the biggest file under dir whose name ends in suffix.
func largest(t *testing.T, dir, suffix string) string {
	t.Helper()
	var best string
	var size int64 = -1
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, suffix) {
			return err
		}
		fi, err := d.Info()
		if err == nil && fi.Size() > size {
			best, size = p, fi.Size()
		}
		return err
	})
	if err != nil || best == "" {
		t.Fatalf("no *%s under %s: %v", suffix, dir, err)
	}
	return best
}
