package backup

import (
	"errors"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/readback"
	"github.com/pibackup/pibackup/internal/verify"
)

// sparseRun backs up the shared Pi disk as backuprun does, with the
// raw images proven by their data ranges; change, if set, runs on each
// raw image once its pages are dropped, before it is read back.
func sparseRun(t *testing.T, typ backupset.Type, change func(f *os.File) error) (string, *verify.Report, error) {
	t.Helper()
	var deps Deps
	if change != nil {
		deps.beforeRangesRead = func(path string) error {
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			if err := change(f); err != nil {
				return err
			}
			return f.Sync()
		}
	}
	return provenRun(t, Options{Type: typ}, deps)
}

// seekFrom is lseek(SEEK_DATA or SEEK_HOLE) from off.
func seekFrom(t *testing.T, f *os.File, off int64, whence int) int64 {
	t.Helper()
	at, err := unix.Seek(int(f.Fd()), off, whence)
	if err != nil {
		t.Fatal(err)
	}
	return at
}

// TestSparseImageProof: the raw image of a dd set and the boot image of
// a tar set are proven by their data ranges before the commit (the
// verify report says so and reads neither again), and each bad write —
// a byte flipped in a range, a range punched to a hole, data where a
// hole was — fails the run with no set committed.
func TestSparseImageProof(t *testing.T) {
	for _, typ := range []backupset.Type{backupset.TypeDD, backupset.TypeTar} {
		target, rep, err := sparseRun(t, typ, nil)
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		var img string
		for _, s := range rep.Checked {
			if strings.Contains(s, ".img (") {
				img = s
			}
		}
		if !strings.Contains(img, "data ranges read back from the disk, holes checked") {
			t.Errorf("%s: the verify report does not say the image was proven by its ranges: %q", typ, rep.Checked)
		}
		t.Logf("%s: %s", typ, img)
		if n := len(sets(t, target)); n != 1 {
			t.Errorf("%s: %d sets committed, want 1", typ, n)
		}
	}
	const mib = 1 << 20
	for _, c := range []struct {
		name   string
		change func(t *testing.T, f *os.File) error
		want   string
	}{
		{"byte flipped in a range", func(t *testing.T, f *os.File) error {
			at := seekFrom(t, f, mib, unix.SEEK_DATA) + 100
			b := []byte{0}
			if _, err := f.ReadAt(b, at); err != nil {
				return err
			}
			b[0] ^= 0xff
			_, err := f.WriteAt(b, at)
			return err
		}, "bytes 4194304 to 4198400 read back with CRC-32C"},
		{"range punched to a hole", func(t *testing.T, f *os.File) error {
			at := seekFrom(t, f, mib, unix.SEEK_DATA) &^ 4095
			return unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, at, 4096)
		}, "bytes 4194304 to 4198400 read back with CRC-32C"},
		{"data where a hole was", func(t *testing.T, f *os.File) error {
			at := seekFrom(t, f, mib, unix.SEEK_HOLE)
			_, err := f.WriteAt([]byte("not a hole"), at)
			return err
		}, "data at offset 1048576, where nothing was written"},
		// verify.ImageCheck on the first MiB read back: the partition
		// table (what a restore needs first) is checked before the ranges.
		{"partition table wiped", func(t *testing.T, f *os.File) error {
			_, err := f.WriteAt(make([]byte, 512), 0)
			return err
		}, "no readable partition table"},
	} {
		t.Run(c.name, func(t *testing.T) {
			hit := false
			target, _, err := sparseRun(t, backupset.TypeDD, func(f *os.File) error {
				hit = true
				return c.change(t, f)
			})
			if !hit {
				t.Fatalf("nothing was changed (%v)", err)
			}
			if (!strings.Contains(c.want, "partition table") && !errors.Is(err, readback.ErrMismatch)) || err == nil || !strings.Contains(err.Error(), ".img: read back from the disk") || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("backup with a bad image: %v; want the read-back's error naming the image and saying %q", err, c.want)
			}
			t.Logf("the error: %v", err)
			if s := sets(t, target); len(s) != 0 {
				t.Errorf("sets left after the failed run: %q", s)
			}
		})
	}
}
