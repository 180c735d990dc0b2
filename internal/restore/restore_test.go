package restore

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"context"
	"errors"
	"github.com/pibackup/pibackup/internal/backupset"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pibackup/pibackup/internal/disklayout"
	"github.com/pibackup/pibackup/internal/testfs"
)

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

func planFor(t *testing.T, fx *fixture, kind, target string, size int64, keep bool) (*Plan, error) {
	t.Helper()
	dir := fx.sets[kind]
	return NewPlan(context.Background(), Options{
		Set: os.DirFS(dir), SetName: filepath.Base(dir), LocalDir: dir,
		Target: target, Size: size, KeepIDs: keep, Log: testLogger(t),
	})
}

func restoreInto(t *testing.T, fx *fixture, kind, target string, size int64, keep bool) *Plan {
	t.Helper()
	p, err := planFor(t, fx, kind, target, size, keep)
	if err != nil {
		t.Fatalf("NewPlan: %v", err)
	}
	t.Logf("plan:\n%s", p)
	if _, err := os.Stat(target); err == nil && p.Target.Exists == false {
		t.Fatal("BUG: plan thinks an existing target is new")
	}
	start := time.Now()
	res, err := p.Execute(context.Background())
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	t.Logf("restored %s in %v (%d bytes, verified %v); changes %q", kind, time.Since(start).Round(time.Millisecond), res.Bytes, res.Verified, res.Changes)
	if !res.Verified || res.Incomplete {
		t.Errorf("result %+v", res)
	}
	return p
}

// TestRestoreFileSets restores tar, tgz and rsync sets made the way
// raspiBackup makes them, backupctl's (b-*), and b-rsync-legacy, an rsync
// set with the file names backupctl used before <host>-backup.*, into
// blank images of the source's size, 50% larger, and just large enough;
// one too small is refused naming the bytes needed.
func TestRestoreFileSets(t *testing.T) {
	fx := getFixture(t)
	src := fx.disk
	size := src.BootStart + src.BootSize + src.RootSize
	for _, kind := range []string{"tar", "tgz", "rsync", "b-tgz", "b-tarzst", "b-rsync", "b-rsync-legacy"} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			t.Run("same size", func(t *testing.T) {
				img := filepath.Join(dir, "same.img")
				p := restoreInto(t, fx, kind, img, size, false)
				judge(t, fx, p, img, false)
			})
			t.Run("larger", func(t *testing.T) {
				img := filepath.Join(dir, "larger.img")
				p := restoreInto(t, fx, kind, img, size*3/2, false)
				if r := p.partition(2); r.Start+r.Size < size*3/2-4096 {
					t.Errorf("root not grown: ends at %d of %d", r.Start+r.Size, size*3/2)
				}
				judge(t, fx, p, img, false)
			})
			t.Run("just large enough", func(t *testing.T) {
				// Ask for a plan on a far too small disk to learn the need.
				_, err := planFor(t, fx, kind, filepath.Join(dir, "tiny.img"), 80<<20, false)
				var ts *disklayout.TooSmallError
				if !errors.As(err, &ts) {
					t.Fatalf("80 MiB target: %v; want TooSmallError", err)
				}
				t.Logf("need %d bytes (%d MiB)", ts.Need, ts.Need>>20)
				if ts.Need >= size {
					t.Errorf("need %d >= source size %d: no shrinking possible", ts.Need, size)
				}
				// One MiB less is refused with the same figure.
				_, err = planFor(t, fx, kind, filepath.Join(dir, "short.img"), ts.Need-1<<20, false)
				var ts2 *disklayout.TooSmallError
				if !errors.As(err, &ts2) || ts2.Need != ts.Need {
					t.Errorf("need-1MiB target: %v; want need %d", err, ts.Need)
				}
				img := filepath.Join(dir, "exact.img")
				p := restoreInto(t, fx, kind, img, ts.Need, false)
				judge(t, fx, p, img, false)
			})
		})
	}
}

func TestRestoreKeepIDs(t *testing.T) {
	fx := getFixture(t)
	for _, kind := range []string{"tar", "b-tgz", "b-rsync"} {
		t.Run(kind, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "keep.img")
			p := restoreInto(t, fx, kind, img, 300<<20, true)
			judge(t, fx, p, img, true)
		})
	}
}

// TestRestoreImageSets restores dd, ddz (gzip and zstd) sets into an image
// of the same size and one 50% larger (root grown), and a padded image
// onto a disk smaller than the image but not than its partitions.
func TestRestoreImageSets(t *testing.T) {
	fx := getFixture(t)
	src := fx.disk
	size := src.BootStart + src.BootSize + src.RootSize
	for _, kind := range []string{"dd", "ddz", "ddzst", "b-dd", "b-ddz"} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			t.Run("same size", func(t *testing.T) {
				img := filepath.Join(dir, "same.img")
				p := restoreInto(t, fx, kind, img, size, false)
				judge(t, fx, p, img, false)
				if kind == "dd" {
					checkSparse(t, img, size)
				}
			})
			t.Run("larger", func(t *testing.T) {
				img := filepath.Join(dir, "larger.img")
				p := restoreInto(t, fx, kind, img, size*3/2, false)
				if !p.growRoot {
					t.Error("root not grown")
				}
				judge(t, fx, p, img, false)
				got, _ := disklayout.ReadFile(img)
				if r, _ := disklayout.PartitionByNumber(got, 2); r.FSUsed == 0 || r.Start+r.Size < size*3/2-4096 {
					t.Errorf("root partition %+v not grown to the end", r)
				}
				checkFSSize(t, img, p.partition(2))
			})
			t.Run("smaller", func(t *testing.T) {
				// The root shrinks (imageshrink_test.go has the restores).
				p, err := planFor(t, fx, kind, filepath.Join(dir, "small.img"), size-1<<20, false)
				if err != nil || p.shrink == nil || p.Need >= size {
					t.Errorf("smaller target: %v; want the root shrunk", err)
				}
			})
		})
	}
	t.Run("padded onto smaller", func(t *testing.T) {
		img := filepath.Join(t.TempDir(), "p.img")
		p := restoreInto(t, fx, "ddpad", img, size, false)
		judge(t, fx, p, img, false)
	})
	t.Run("keep ids", func(t *testing.T) {
		img := filepath.Join(t.TempDir(), "k.img")
		p := restoreInto(t, fx, "dd", img, size, true)
		judge(t, fx, p, img, true)
	})
}

// checkSparse: a dd restore into a fresh image leaves zero blocks as holes.
func checkSparse(t *testing.T, img string, size int64) {
	t.Helper()
	fi, err := os.Stat(img)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if alloc := st.Blocks * 512; alloc >= size {
		t.Errorf("image allocates %d of %d bytes: zero blocks were written", alloc, size)
	} else {
		t.Logf("image allocates %d of %d bytes", alloc, size)
	}
}

// checkFSSize: the ext4 on the partition fills it (resize2fs ran).
func checkFSSize(t *testing.T, img string, part backupset.Partition) {
	t.Helper()
	out, err := exec.Command("dumpe2fs", "-h", fmt.Sprintf("%s?offset=%d", img, part.Start)).CombinedOutput()
	if err != nil {
		t.Fatalf("dumpe2fs: %v\n%s", err, out)
	}
	var blocks, bsize int64
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(l, "Block count:"); ok {
			blocks, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
		if v, ok := strings.CutPrefix(l, "Block size:"); ok {
			bsize, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	if blocks*bsize < part.Size-int64(bsize) {
		t.Errorf("filesystem %d bytes in a %d-byte partition", blocks*bsize, part.Size)
	}
}

// TestRestoreOntoLoopDisk restores onto a block device (a whole-disk loop
// device), the path real SD cards take: O_EXCL open, partitions attached
// by offset on the device, the table written last and re-read.
func TestRestoreOntoLoopDisk(t *testing.T) {
	fx := getFixture(t)
	for _, kind := range []string{"tgz", "ddz"} {
		t.Run(kind, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "card.img")
			if err := os.WriteFile(img, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(img, 320<<20); err != nil {
				t.Fatal(err)
			}
			dev := testfs.AttachLoop(t, img, 0, 0, false)
			if _, err := planFor(t, fx, kind, dev, 1<<30, false); !errors.Is(err, ErrTarget) {
				t.Errorf("--size with a disk: %v", err)
			}
			p := restoreInto(t, fx, kind, dev, 0, false)
			if p.Target.IsFile || p.Target.Size != 320<<20 {
				t.Errorf("target %+v", p.Target)
			}
			judge(t, fx, p, img, false)
		})
	}
}

// TestRestoreFailureLeavesNoTable: a payload that breaks half-way fails
// the restore, marks it incomplete, and leaves a target without a
// partition table.
func TestRestoreFailureLeavesNoTable(t *testing.T) {
	fx := getFixture(t)
	dir := t.TempDir()
	name := fxHost + "@debian12-tgz-backup-20240416-094159"
	set := filepath.Join(dir, name)
	if err := os.Mkdir(set, 0o755); err != nil {
		t.Fatal(err)
	}
	src := fx.sets["tgz"]
	for _, f := range []string{"-backup.img", "-backup.mbr", "-backup.sfdisk"} {
		if err := copyFile(filepath.Join(src, fxHost+f), filepath.Join(set, fxHost+f), backupset.CompressNone); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(filepath.Join(src, filepath.Base(src)+".tgz"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(set, name+".tgz"), b[:len(b)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	// The target held a valid disk before.
	img := filepath.Join(dir, "t.img")
	if err := copyFile(fx.disk.Path, img, backupset.CompressNone); err != nil {
		t.Fatal(err)
	}
	p, err := NewPlan(context.Background(), Options{Set: os.DirFS(set), SetName: name, LocalDir: set, Target: img, Log: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Execute(context.Background())
	if !errors.Is(err, ErrIncomplete) || !res.Incomplete {
		t.Fatalf("Execute = %+v, %v; want ErrIncomplete", res, err)
	}
	t.Logf("error: %v", err)
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mbr := make([]byte, 512)
	if _, err := f.ReadAt(mbr, 0); err != nil {
		t.Fatal(err)
	}
	if mbr[510] == 0x55 || mbr[511] == 0xaa {
		t.Error("target still has an MBR after a failed restore")
	}
}

// TestRestoreGPTSet restores a tar set whose sfdisk dump describes a GPT
// disk (Pi 5 / NVMe / >2 TB layouts): the table is written natively as a
// GPT with new GUIDs, and cmdline.txt and fstab follow.
func TestRestoreGPTSet(t *testing.T) {
	fx := getFixture(t)
	dir := t.TempDir()
	name := fxHost + "@debian12-tar-backup-20240416-094158"
	set := filepath.Join(dir, name)
	if err := os.Mkdir(set, 0o755); err != nil {
		t.Fatal(err)
	}
	src := fx.sets["tar"]
	for _, f := range []string{"-backup.img", "-backup.mbr"} {
		if err := copyFile(filepath.Join(src, fxHost+f), filepath.Join(set, fxHost+f), backupset.CompressNone); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Link(filepath.Join(src, filepath.Base(src)+".tar"), filepath.Join(set, name+".tar")); err != nil {
		t.Fatal(err)
	}
	d := fx.disk
	dump := fmt.Sprintf("label: gpt\nlabel-id: 3F2504E0-4F89-41D3-9A0C-0305E82C3301\ndevice: /dev/nvme0n1\nunit: sectors\nfirst-lba: 34\nlast-lba: %d\nsector-size: 512\n\n"+
		"/dev/nvme0n1p1 : start=%d, size=%d, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=11111111-2222-4333-8444-555555555555, name=\"boot\"\n"+
		"/dev/nvme0n1p2 : start=%d, size=%d, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=66666666-7777-4888-8999-AAAAAAAAAAAA, name=\"root\"\n",
		(d.RootStart+d.RootSize+(1<<20))/512-34, d.BootStart/512, d.BootSize/512, d.RootStart/512, d.RootSize/512)
	if err := os.WriteFile(filepath.Join(set, fxHost+"-backup.sfdisk"), []byte(dump), 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "gpt.img")
	p, err := NewPlan(context.Background(), Options{Set: os.DirFS(set), SetName: name, LocalDir: set, Target: img, Size: 400 << 20, Log: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("plan:\n%s", p)
	res, err := p.Execute(context.Background())
	if err != nil || !res.Verified {
		t.Fatalf("Execute = %+v, %v", res, err)
	}
	got, err := disklayout.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if got.Table != "gpt" || strings.EqualFold(got.DiskID, "3F2504E0-4F89-41D3-9A0C-0305E82C3301") {
		t.Errorf("restored table %s %s", got.Table, got.DiskID)
	}
	judge(t, fx, p, img, false)
}
