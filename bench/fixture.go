package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

const (
	sector    = 512
	bootStart = 8192 * sector // 4 MiB, as Raspberry Pi OS images
	bootSize  = 256 << 20
	rootStart = bootStart + bootSize
	// A random "bootloader" fills the 4 MiB before the boot partition,
	// which a used-blocks image must keep byte for byte.
)

// rootSources are copied into the root filesystem, one second-level
// directory at a time, until the budget is reached: real files with real
// compressibility (libraries, docs, locales, headers).
var rootSources = []string{"/usr/lib", "/usr/share", "/usr/bin", "/usr/include", "/usr/local/go", "/usr/sbin"}

// fixtureVersion changes when buildFixture makes a different disk, so an
// older fixture is rebuilt.
const fixtureVersion = 2

// diskID is the fixture's MBR disk identifier; cmdline.txt and fstab name
// the partitions by PARTUUID=<diskID>-0N, as Raspberry Pi OS does.
const diskID = "0x5eb0c0de"

// fixture describes a built fixture disk; it is saved next to the image.
type fixture struct {
	Version  int    `json:"version"`
	Path     string `json:"path"`
	Size     int64  `json:"size"`
	RootSize int64  `json:"root_size"`
	RootUsed int64  `json:"root_used"` // bytes df reports used in the root fs
	BootUsed int64  `json:"boot_used"`
	Files    int    `json:"files"`
	Stale    int64  `json:"stale"` // bytes of random data written and deleted
}

// buildFixture makes (or reuses) the fixture of cfg.size bytes in cfg.dir.
func buildFixture(cfg config) (*fixture, error) {
	img := filepath.Join(cfg.dir, fmt.Sprintf("fixture-%d.img", cfg.size))
	meta := img + ".json"
	if b, err := os.ReadFile(meta); err == nil {
		var fx fixture
		if json.Unmarshal(b, &fx) == nil && fx.Size == cfg.size && fx.Version == fixtureVersion && fx.Path == img {
			logf("reusing fixture %s (delete %s to rebuild)", img, meta)
			return &fx, nil
		}
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("building the fixture needs root (loop devices, mount)")
	}
	if cfg.size < 1<<30 {
		return nil, fmt.Errorf("BENCH_SIZE %d too small: at least 1G", cfg.size)
	}
	logf("building %s (%d MiB)", img, cfg.size>>20)
	fx := &fixture{Version: fixtureVersion, Path: img, Size: cfg.size, RootSize: cfg.size - rootStart}
	f, err := os.Create(img)
	if err != nil {
		return nil, err
	}
	// The whole disk starts as random bytes, as a card that held other
	// data before: the gap before partition 1 becomes a "bootloader",
	// and blocks mkfs does not write stay stale.
	if _, err := io.CopyN(f, rand.NewChaCha8([32]byte{42}), rootStart); err != nil {
		return nil, err
	}
	if err := f.Truncate(cfg.size); err != nil {
		return nil, err
	}
	f.Close()
	script := fmt.Sprintf("label: dos\nlabel-id: %s\nstart=%d, size=%d, type=c, bootable\nstart=%d, type=83\n",
		diskID, bootStart/sector, bootSize/sector, rootStart/sector)
	if err := runIn(script, "sfdisk", "-q", img); err != nil {
		return nil, err
	}

	mnt := filepath.Join(cfg.dir, "mnt")
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		return nil, err
	}
	// Boot: FAT32 with docs as stand-ins for firmware and kernels,
	// written with mtools because the kernel may lack vfat.
	if err := buildBoot(cfg.dir, img, fx); err != nil {
		return nil, fmt.Errorf("boot partition: %w", err)
	}
	// Root: ext4 as Raspberry Pi OS makes it; nodiscard, or mkfs would
	// punch the stale data out of the image file.
	err = withLoop(img, rootStart, fx.RootSize, func(dev string) error {
		if err := runCmd("mkfs.ext4", "-q", "-F", "-L", "rootfs", "-E", "nodiscard", dev); err != nil {
			return err
		}
		return withMount(dev, mnt, "", func() error {
			free, err := dfFree(mnt)
			if err != nil {
				return err
			}
			n, err := fillDelete(mnt, free*9/10)
			fx.Stale += n
			if err != nil {
				return err
			}
			budget := min(fx.RootSize/2, 3<<29) // half the root, at most 1.5 GiB
			fx.Files, err = copyTrees(mnt, budget)
			if err != nil {
				return err
			}
			if err := piEtc(mnt); err != nil {
				return err
			}
			fx.RootUsed, err = dfUsed(mnt)
			return err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("root partition: %w", err)
	}
	if err := fsyncPath(img); err != nil {
		return nil, err
	}
	b, _ := json.MarshalIndent(fx, "", "  ")
	if err := os.WriteFile(meta, b, 0o644); err != nil {
		return nil, err
	}
	logf("fixture: root %d MiB used of %d MiB, %d files, %d MiB stale data in free space", fx.RootUsed>>20, fx.RootSize>>20, fx.Files, fx.Stale>>20)
	return fx, nil
}

// buildBoot makes the FAT32 boot filesystem in a file of its own with
// mtools (the kernel may lack vfat, and mtools' @@offset access to a
// 256 MiB FAT32 inside the disk fails with "No directory slots"), then
// writes it into the disk.
func buildBoot(dir, img string, fx *fixture) error {
	part := filepath.Join(dir, "boot.part")
	os.Remove(part)
	defer os.Remove(part)
	if err := runCmd("mkfs.vfat", "-F", "32", "-n", "BOOT", "-h", strconv.Itoa(bootStart/sector), "-C", part, strconv.Itoa(bootSize>>10)); err != nil {
		return err
	}
	stage := filepath.Join(dir, "boot-stage")
	os.RemoveAll(stage)
	defer os.RemoveAll(stage)
	if err := os.MkdirAll(stage, 0o755); err != nil {
		return err
	}
	stale := filepath.Join(stage, "stale.bin")
	f, err := os.Create(stale)
	if err != nil {
		return err
	}
	if _, err := io.CopyN(f, rand.NewChaCha8([32]byte{9}), 200<<20); err != nil {
		return err
	}
	f.Close()
	if err := runCmd("mcopy", "-i", part, stale, "::/stale.bin"); err != nil {
		return err
	}
	if err := runCmd("mdel", "-i", part, "::/stale.bin"); err != nil {
		return err
	}
	fx.Stale += 200 << 20
	os.Remove(stale)
	if err := copyRegular("/usr/share/doc", filepath.Join(stage, "doc"), 40<<20); err != nil {
		return err
	}
	for name, text := range map[string]string{
		"cmdline.txt": "console=serial0,115200 console=tty1 root=PARTUUID=" + strings.TrimPrefix(diskID, "0x") + "-02 rootfstype=ext4 fsck.repair=yes rootwait\n",
		"config.txt":  "arm_64bit=1\n",
	} {
		if err := os.WriteFile(filepath.Join(stage, name), []byte(text), 0o644); err != nil {
			return err
		}
		if err := runCmd("mcopy", "-i", part, filepath.Join(stage, name), "::/"); err != nil {
			return err
		}
	}
	fx.BootUsed, _ = treeSize(stage)
	// mcopy 4.0.33 exits 1 after copying such a tree without saying
	// why; fsck.vfat judges the result instead.
	if err := runCmd("mcopy", "-s", "-m", "-i", part, filepath.Join(stage, "doc"), "::/"); err != nil {
		logf("%v (checking with fsck.vfat)", err)
	}
	if err := runCmd("fsck.vfat", "-n", part); err != nil {
		return err
	}
	return runCmd("dd", "if="+part, "of="+img, "bs=1M", "seek="+strconv.Itoa(bootStart>>20), "conv=notrunc", "status=none")
}

// fillDelete writes up to n bytes of random data into dir, syncs, and
// deletes it: the blocks are free again but still hold the data.
func fillDelete(dir string, n int64) (int64, error) {
	p := filepath.Join(dir, "stale.bin")
	f, err := os.Create(p)
	if err != nil {
		return 0, err
	}
	w, err := io.CopyN(f, rand.NewChaCha8([32]byte{7}), n)
	if err != nil && !errorsIsNoSpace(err) {
		f.Close()
		return w, err
	}
	if err := f.Sync(); err != nil && !errorsIsNoSpace(err) {
		f.Close()
		return w, err
	}
	f.Close()
	if err := os.Remove(p); err != nil {
		return w, err
	}
	return w, fsyncPath(dir)
}

func errorsIsNoSpace(err error) bool { return strings.Contains(err.Error(), "no space") }

// copyTrees copies second-level directories of rootSources with cp -a
// (owners, modes, links, xattrs) while they fit in budget, and returns
// the number of files copied.
func copyTrees(mnt string, budget int64) (int, error) {
	var used int64
	files := 0
	for _, top := range rootSources {
		entries, err := os.ReadDir(top)
		if err != nil {
			continue
		}
		for _, e := range entries {
			src := filepath.Join(top, e.Name())
			size, n := treeSize(src)
			if size == 0 || used+size > budget {
				continue
			}
			// From / with a relative source: coreutils 9.1's cp -a
			// --parents fails on the parents of an absolute one.
			cp := exec.Command("cp", "-a", "--parents", strings.TrimPrefix(src, "/"), mnt)
			cp.Dir = "/"
			if out, err := cp.CombinedOutput(); err != nil {
				return files, fmt.Errorf("cp -a --parents %s: %w: %s", src, err, out)
			}
			used += size
			files += n
		}
	}
	logf("copied %d MiB in %d files", used>>20, files)
	return files, fsyncPath(mnt)
}

func treeSize(root string) (size int64, files int) {
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				size += fi.Size()
			}
			files++
		}
		return nil
	})
	return size, files
}

// copyRegular copies regular files of src into dst (FAT: no owners, no
// symlinks) until limit bytes.
func copyRegular(src, dst string, limit int64) error {
	var done int64
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || done >= limit {
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, _ := filepath.Rel(src, p)
		b, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		q := filepath.Join(dst, rel)
		if err := os.MkdirAll(filepath.Dir(q), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(q, b, 0o644); err != nil {
			return nil // a name FAT refuses
		}
		done += int64(len(b))
		return nil
	})
}

// piEtc gives the root what a restore looks for in a Raspberry Pi OS
// root: /etc with fstab (naming the partitions by PARTUUID), hostname and
// os-release, and the mount points of the kernel filesystems.
func piEtc(mnt string) error {
	id := strings.TrimPrefix(diskID, "0x")
	files := map[string]string{
		"etc/fstab": "proc /proc proc defaults 0 0\n" +
			"PARTUUID=" + id + "-01 /boot/firmware vfat defaults 0 2\n" +
			"PARTUUID=" + id + "-02 / ext4 defaults,noatime 0 1\n",
		"etc/hostname": "bench\n",
	}
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		files["etc/os-release"] = string(b)
	}
	for _, d := range []string{"etc", "proc", "sys", "dev", "run", "tmp", "boot/firmware", "home/pi"} {
		if err := os.MkdirAll(filepath.Join(mnt, d), 0o755); err != nil {
			return err
		}
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(mnt, name), []byte(text), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// changedFile is a file changeFiles appended to, and its size before.
type changedFile struct {
	path string // relative to the root
	size int64
}

// changeFiles appends 17 bytes to every 50th regular file under root (2%).
func changeFiles(root string) ([]changedFile, error) {
	i := 0
	var changed []changedFile
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		i++
		if i%50 != 0 {
			return nil
		}
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		changed = append(changed, changedFile{rel, fi.Size()})
		_, err = f.Write([]byte("changed by bench\n"))
		return err
	})
	return changed, err
}

func withLoop(img string, off, size int64, fn func(dev string) error) error {
	out, err := exec.Command("losetup", "--find", "--show", "--offset", strconv.FormatInt(off, 10),
		"--sizelimit", strconv.FormatInt(size, 10), img).CombinedOutput()
	if err != nil {
		return fmt.Errorf("losetup: %w: %s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	defer func() {
		if err := runCmd("losetup", "-d", dev); err != nil {
			logf("detach %s: %v", dev, err)
		}
	}()
	return fn(dev)
}

func withMount(dev, dir, opts string, fn func() error) error {
	args := []string{dev, dir}
	if opts != "" {
		args = append([]string{"-o", opts}, args...)
	}
	if err := runCmd("mount", args...); err != nil {
		return err
	}
	err := fn()
	if uerr := runCmd("umount", dir); uerr != nil && err == nil {
		err = uerr
	}
	return err
}

func dfUsed(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Blocks-st.Bfree) * st.Bsize, nil
}

func dfFree(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * st.Bsize, nil
}

// dropCache evicts a file's clean pages, so the next read comes from the
// disk rather than RAM.
func dropCache(path string) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
}

// dropTree evicts the clean pages of a file or of every file of a tree.
func dropTree(root string) {
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			dropCache(p)
		}
		return nil
	})
}

// fsyncPath flushes a file, or a directory tree's filesystem.
func fsyncPath(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return unix.Syncfs(int(f.Fd()))
	}
	return f.Sync()
}

// allocated is the disk space a file or tree takes (hard links once).
func allocated(p string) int64 {
	var total int64
	seen := map[[2]uint64]bool{}
	filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		var st syscall.Stat_t
		if syscall.Lstat(q, &st) != nil {
			return nil
		}
		k := [2]uint64{st.Dev, st.Ino}
		if !seen[k] {
			seen[k] = true
			total += st.Blocks * 512
		}
		return nil
	})
	return total
}

func runCmd(name string, args ...string) error { return runIn("", name, args...) }

// runOut runs a command and returns its standard output.
func runOut(name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

func runIn(stdin, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1") // mtools: a FAT in an image, no geometry
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

func logf(format string, args ...any) { fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...) }
