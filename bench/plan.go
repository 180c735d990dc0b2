package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// raspiBackup's tar options (for a restore it adds -x, p keeps modes);
// GNU tar needs --xattrs-include='*' to store more than user.* xattrs.
const (
	tarCreate  = "--numeric-owner --one-file-system --xattrs --acls -cpf"
	tarExtract = "--numeric-owner --xattrs --xattrs-include='*' --acls -xpf"
	bcHost     = "bench"
)

func runBench(cfg config) error {
	fx, err := buildFixture(cfg)
	if err != nil {
		return err
	}
	b := &bench{cfg: cfg, fx: fx, outDir: filepath.Join(cfg.dir, "out"), start: time.Now(), load0: loadAvg(), rootOnly: map[string]*row{}}
	os.RemoveAll(b.outDir)
	if err := os.MkdirAll(b.outDir, 0o700); err != nil {
		return err
	}
	defer os.RemoveAll(b.outDir)
	if cfg.backupctl == "" {
		b.notes = append(b.notes, "backupctl was not built: only the imaging-code pairs (root partition) are measured")
	}
	steps := []func() error{b.images, b.rootPartition, b.fileLevel, b.live, b.memory4}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	if cfg.recovery {
		b.rec = measureRecovery(cfg.repo)
	}
	return b.report()
}

// sh runs script with bash, failing on the first error in a pipeline.
func sh(script string) []string {
	return []string{"bash", "-o", "pipefail", "-e", "-c", script}
}

// rm returns a before-func that removes paths (outputs of an earlier run).
func rm(paths ...string) func() error {
	return func() error {
		for _, p := range paths {
			if err := os.RemoveAll(p); err != nil {
				return err
			}
		}
		return nil
	}
}

// fresh returns a before-func that makes dir a new empty folder (mode
// 0700: backupctl warns about a backup folder others can read).
func fresh(dir string) func() error {
	return func() error {
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
		return os.MkdirAll(dir, 0o700)
	}
}

// backupOp is `backupctl backup ARGS` of the fixture into the folder dir.
func (b *bench) backupOp(group, tool, dir string, src int64, args ...string) *op {
	if b.cfg.backupctl == "" {
		return nil
	}
	argv := append([]string{b.cfg.backupctl, "backup"}, args...)
	// --keep=-1: retention must not remove the set an incremental run
	// links to, or the one a restore reads.
	argv = append(argv, "--keep=-1", "--hostname", bcHost, "--source-disk", b.fx.Path, dir)
	return &op{group: group, tool: tool, ours: true, src: src, out: dir, argv: argv,
		setLog: filepath.Join(dir, bcHost), before: fresh(dir)}
}

// incrementalOp is a second `backupctl backup` into dir, next to the set
// the first run left there; each run removes the previous run's set.
func (b *bench) incrementalOp(group, tool, dir string, src int64, args ...string) *op {
	o := b.backupOp(group, tool, dir, src, args...)
	if o == nil {
		return nil
	}
	host := filepath.Join(dir, bcHost)
	base := newestSet(host)
	o.grow = dir
	o.before = func() error {
		if base == "" {
			return fmt.Errorf("no first set in %s", host)
		}
		for _, s := range setsIn(host) {
			if s != base {
				if err := os.RemoveAll(s); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return o
}

// restoreOp is `backupctl restore` of the newest set in dir onto a new
// image file the size of the fixture disk. --keep-ids: the classic
// commands keep them too (dd), or make new ones without rewriting
// fstab and cmdline.txt (mkfs).
func (b *bench) restoreOp(group, tool, dir string, src int64) *op {
	if b.cfg.backupctl == "" {
		return nil
	}
	set := newestSet(filepath.Join(dir, bcHost))
	if set == "" {
		b.notes = append(b.notes, fmt.Sprintf("%s: no set in %s (its backup failed), not measured", group, dir))
		return nil
	}
	return b.restoreSetOp(group, tool, set, src)
}

func (b *bench) restoreSetOp(group, tool, set string, src int64) *op {
	r := b.o("r.img")
	return &op{group: group, tool: tool, ours: true, src: src, out: r, evict: []string{set}, before: rm(r),
		argv: []string{b.cfg.backupctl, "restore", set, "--to", r, "--size", strconv.FormatInt(b.fx.Size, 10), "--yes", "--keep-ids"}}
}

// classic is a shell command of the classic tools writing out.
func classic(group, tool, out string, src int64, script string, evict ...string) *op {
	return &op{group: group, tool: tool, src: src, out: out, argv: sh(script), before: rm(out), evict: evict}
}

// images: the whole card as an image, raw and compressed, then restored.
func (b *bench) images() error {
	o, img, disk := b.o, b.fx.Path, b.fx.Size
	dd := fmt.Sprintf("dd if=%s bs=4M status=none", img)

	g := "image, raw"
	r := b.measure(
		b.backupOp(g, "backupctl -t dd", o("bc-dd"), disk, "-t", "dd"),
		classic(g, "dd bs=4M", o("dd.img"), disk, dd+" of="+o("dd.img")))
	b.pair(g, r[0], goal{ratio: 1.05}, r[1])

	g = "image, gzip"
	r = b.measure(
		b.backupOp(g, "backupctl -t ddz", o("bc-ddz"), disk, "-t", "ddz"),
		classic(g, "dd bs=4M | gzip", o("dd.img.gz"), disk, dd+" | gzip > "+o("dd.img.gz")),
		classic(g, "dd bs=4M | pigz", o("pigz.img.gz"), disk, dd+" | pigz > "+o("pigz.img.gz")))
	b.pair(g, r[0], goal{}, r[1])
	b.pair(g, r[0], goal{ratio: 1 / 0.9, note: "≥ 0.9× pigz's speed"}, r[2])
	gzipImage := r[1]
	os.Remove(o("pigz.img.gz"))

	g = "image, zstd"
	r = b.measure(
		b.backupOp(g, "backupctl -t dd -z zstd", o("bc-ddzst"), disk, "-t", "dd", "-z", "zstd"),
		classic(g, "dd bs=4M | zstd -T0", o("dd.img.zst"), disk, dd+" | zstd -q -T0 > "+o("dd.img.zst")))
	b.pair(g, r[0], goal{}, r[1])
	b.pair("image, zstd vs gzip", r[0], goal{ratio: 0.1, smaller: true, note: "≥ 10× gzip's speed, not larger"}, gzipImage)

	// Restores onto a new image file.
	ri := o("r.img")
	ddTo := fmt.Sprintf("dd of=%s bs=4M status=none iflag=fullblock", ri)
	g = "restore, raw image"
	r = b.measure(
		b.restoreOp(g, "backupctl restore (dd set)", o("bc-dd"), disk),
		classic(g, "dd bs=4M", ri, disk, fmt.Sprintf("dd if=%s of=%s bs=4M status=none", o("dd.img"), ri), o("dd.img")))
	b.pair(g, r[0], restoreGoal, r[1])

	g = "restore, gzip image"
	r = b.measure(
		b.restoreOp(g, "backupctl restore (ddz set)", o("bc-ddz"), disk),
		classic(g, "gzip -dc | dd bs=4M", ri, disk, fmt.Sprintf("gzip -dc %s | %s", o("dd.img.gz"), ddTo), o("dd.img.gz")),
		classic(g, "pigz -dc | dd bs=4M", ri, disk, fmt.Sprintf("pigz -dc %s | %s", o("dd.img.gz"), ddTo), o("dd.img.gz")))
	b.pair(g, r[0], restoreGoal, r[1])
	b.pair(g, r[0], restoreGoal, r[2])

	g = "restore, zstd image"
	r = b.measure(
		b.restoreOp(g, "backupctl restore (dd -z zstd set)", o("bc-ddzst"), disk),
		classic(g, "zstd -dc | dd bs=4M", ri, disk, fmt.Sprintf("zstd -q -dc %s | %s", o("dd.img.zst"), ddTo), o("dd.img.zst")))
	b.pair(g, r[0], restoreGoal, r[1])

	for _, p := range []string{"r.img", "dd.img", "dd.img.gz", "dd.img.zst", "bc-dd", "bc-ddz", "bc-ddzst"} {
		os.RemoveAll(o(p))
	}
	return nil
}

// rootPartition: the root partition alone, used blocks, against
// partclone. backupctl has no "image of one partition" set type, so our
// side is the imaging code the dd sets use, run by this binary.
func (b *bench) rootPartition() error {
	o, root := b.o, b.fx.RootSize
	g := "root partition, used blocks"
	ours := &op{group: g, tool: "used-blocks imaging code (bench ours-image -part 2)", ours: true, src: root, out: o("ours-root.img"),
		argv: []string{b.cfg.self, "ours-image", "-part", "2", "-o", o("ours-root.img"), b.fx.Path}, before: rm(o("ours-root.img"))}
	pc := &op{group: g, tool: "partclone.ext4 -c", src: root, out: o("root.pc")}
	pc.before = func() error {
		os.Remove(pc.out)
		dev, err := losetup(b.fx.Path, rootStart, root, true)
		if err != nil {
			return err
		}
		pc.argv = []string{"partclone.ext4", "-q", "-c", "-s", dev, "-o", pc.out}
		pc.after = func() error { return runCmd("losetup", "-d", dev) }
		return nil
	}
	r := b.measure(ours, pc)
	b.pair(g, r[0], goal{ratio: 1.1}, r[1])

	g = "restore, root partition"
	ri := o("r.img")
	r = b.measure(
		&op{group: g, tool: "used-blocks restore code (bench ours-restore)", ours: true, src: root, out: ri, evict: []string{o("ours-root.img")},
			argv: []string{b.cfg.self, "ours-restore", "-i", o("ours-root.img"), "-o", ri}, before: rm(ri)},
		classic(g, "partclone.ext4 -r", ri, root, fmt.Sprintf("truncate -s %d %s; partclone.ext4 -q -r -s %s -O %s", root, ri, o("root.pc"), ri), o("root.pc")))
	b.pair(g, r[0], restoreGoal, r[1])
	for _, p := range []string{"r.img", "ours-root.img", "root.pc"} {
		os.RemoveAll(o(p))
	}
	return nil
}

// fileLevel: tar and rsync sets. backupctl reads the fixture image (it
// mounts the root read-only itself); the classic tools read the root
// mounted read-only on a new loop device for each run, so no run reads
// another's cache. backupctl's sets also hold an image of the boot
// partition, as raspiBackup's do (raspiBackup makes it with dd): the
// classic side of a set is dd of the boot partition plus the tool on the
// root, and the root-only pairs (-P 2) compare the tools alone.
func (b *bench) fileLevel() error {
	o, used := b.o, b.fx.RootUsed
	mnt := filepath.Join(b.cfg.dir, "mnt")
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		return err
	}
	onRoot := func(group, tool, out, script string) *op {
		c := classic(group, tool, out, used, script)
		rmOut := c.before
		c.before = func() error {
			if err := rmOut(); err != nil {
				return err
			}
			undo, err := b.mountRoot(mnt, true)
			c.after = undo
			return err
		}
		return c
	}
	set := b.fx.BootUsed + used // what a set holds
	boot := classic("boot partition", "dd bs=4M", o("boot.img"), bootSize,
		fmt.Sprintf("dd if=%s of=%s bs=4M iflag=skip_bytes,count_bytes skip=%d count=%d status=none", b.fx.Path, o("boot.img"), bootStart, bootSize))
	plus := func(r *row) []*row { return []*row{r} }

	g := "tar"
	r := b.measure(
		b.backupOp(g, "backupctl -t tar", o("bc-tar"), set, "-t", "tar"),
		b.backupOp(g, "backupctl -t tar -P 2", o("bc-tarP"), used, "-t", "tar", "-P", "2"),
		boot,
		onRoot(g, "tar -cpf", o("root.tar"), fmt.Sprintf("tar %s %s -C %s .", tarCreate, o("root.tar"), mnt)))
	bootRow := r[2]
	b.rootOnly["tar"] = r[1]
	b.pair("tar set (root + boot image)", r[0], goal{ratio: 1.1}, bootRow, r[3])
	b.pair("tar, root only", r[1], goal{ratio: 1.1}, r[3])
	with := func(x *row) []*row { return append(plus(bootRow), x) }
	os.RemoveAll(o("bc-tarP"))

	g = "tar + gzip"
	r = b.measure(
		b.backupOp(g, "backupctl -t tgz", o("bc-tgz"), set, "-t", "tgz"),
		onRoot(g, "tar | gzip", o("root.tgz"), fmt.Sprintf("tar %s - -C %s . | gzip > %s", tarCreate, mnt, o("root.tgz"))),
		onRoot(g, "tar | pigz", o("root-pigz.tgz"), fmt.Sprintf("tar %s - -C %s . | pigz > %s", tarCreate, mnt, o("root-pigz.tgz"))))
	b.pair("tgz set", r[0], goal{}, with(r[1])...)
	b.pair("tgz set", r[0], goal{ratio: 1 / 0.9, note: "≥ 0.9× pigz's speed"}, with(r[2])...)
	tarGzip := r[1]
	os.Remove(o("root-pigz.tgz"))

	g = "tar + zstd"
	r = b.measure(
		b.backupOp(g, "backupctl -t tar -z zstd", o("bc-tzst"), set, "-t", "tar", "-z", "zstd"),
		onRoot(g, "tar -I 'zstd -T0'", o("root.tar.zst"), fmt.Sprintf("tar -I 'zstd -T0' %s %s -C %s .", tarCreate, o("root.tar.zst"), mnt)),
		b.backupOp(g, "backupctl -t tar -z zstd -P 2", o("bc-tzstP"), used, "-t", "tar", "-z", "zstd", "-P", "2"))
	zstdGoal := goal{ratio: 1.1, smaller: true, note: "≤ 1.10 at no larger output"}
	b.pair("tar + zstd set", r[0], zstdGoal, with(r[1])...)
	// The set's classic side is two runs timed apart (dd of the boot
	// partition, then tar of the root), so neither pays for the other's
	// writeback; backupctl writes both in one run. The root-only pair
	// compares the archive alone.
	b.pair("tar + zstd, root only", r[2], zstdGoal, r[1])
	b.pair("tar + zstd set vs gzip", r[0], goal{ratio: 0.1, smaller: true, note: "≥ 10× gzip's speed, not larger"}, with(tarGzip)...)
	os.RemoveAll(o("bc-tzstP"))

	g = "rsync, first"
	rs := o("rsync")
	r = b.measure(
		b.backupOp(g, "backupctl -t rsync", o("bc-rsync"), set, "-t", "rsync"),
		b.backupOp(g, "backupctl -t rsync -P 2", o("bc-rsyncP"), used, "-t", "rsync", "-P", "2"),
		onRoot(g, "rsync -aHAX", rs, fmt.Sprintf("mkdir -p %s; rsync -aHAX --numeric-ids %s/ %s/first/", rs, mnt, rs)))
	b.pair("rsync set, first run", r[0], goal{ratio: 1.1}, with(r[2])...)
	b.pair("rsync, root only, first run", r[1], goal{ratio: 1.1}, r[2])
	b.rootOnly["rsync"] = r[1]

	// Change 2% of the files, then the incremental runs against the
	// first runs' trees; the change is undone afterwards.
	undo, err := b.changeRoot(mnt)
	if err != nil {
		return err
	}
	g = "rsync, incremental"
	inc := onRoot(g, "rsync -aHAX --link-dest", filepath.Join(rs, "second"),
		fmt.Sprintf("rsync -aHAX --numeric-ids --link-dest=%s/first %s/ %s/second/", rs, mnt, rs))
	inc.grow = rs
	r = b.measure(
		b.incrementalOp(g, "backupctl -t rsync", o("bc-rsync"), set, "-t", "rsync"),
		b.incrementalOp(g, "backupctl -t rsync -P 2", o("bc-rsyncP"), used, "-t", "rsync", "-P", "2"),
		inc)
	b.pair("rsync set, incremental (2% changed)", r[0], goal{ratio: 1.1}, with(r[2])...)
	b.pair("rsync, root only, incremental (2% changed)", r[1], goal{ratio: 1.1}, r[2])
	if err := undo(); err != nil {
		return err
	}
	os.RemoveAll(filepath.Join(rs, "second"))
	os.RemoveAll(o("bc-rsyncP"))
	// The first sets are what the restores read.
	for _, d := range []string{"bc-rsync"} {
		host := filepath.Join(o(d), bcHost)
		sets := setsIn(host)
		for _, s := range sets[min(1, len(sets)):] {
			os.RemoveAll(s)
		}
	}

	return b.fileRestores(mnt)
}

// fileRestores: each set onto a new image file, against what
// raspiBackup's restore does with the classic tools: write the
// partition table, dd the boot image, mkfs.ext4 the root, mount it and
// unpack the archive or rsync the tree into it.
func (b *bench) fileRestores(mnt string) error {
	o, used := b.o, b.fx.RootUsed
	table := o("fixture.sfdisk")
	out, err := runOut("sfdisk", "-d", b.fx.Path)
	if err != nil {
		return err
	}
	if err := os.WriteFile(table, []byte(out), 0o644); err != nil {
		return err
	}
	ri := o("r.img")
	restore := func(group, tool, fill string, evict ...string) *op {
		script := fmt.Sprintf(`truncate -s %[1]d %[2]s
sfdisk -q %[2]s < %[3]s
boot=$(losetup --find --show --offset %[4]d --sizelimit %[5]d %[2]s)
root=$(losetup --find --show --offset %[6]d --sizelimit %[7]d %[2]s)
trap 'umount %[8]s 2>/dev/null || true; losetup -d $boot $root' EXIT
dd if=%[9]s of=$boot bs=4M status=none
mkfs.ext4 -q -F -L rootfs $root
mount $root %[8]s
%[10]s
umount %[8]s`, b.fx.Size, ri, table, bootStart, bootSize, rootStart, b.fx.RootSize, mnt, o("boot.img"), fill)
		return classic(group, tool, ri, used, script, append(evict, o("boot.img"))...)
	}
	g := "restore, tar set"
	r := b.measure(
		b.restoreOp(g, "backupctl restore (tar set)", o("bc-tar"), used),
		restore(g, "sfdisk, dd, mkfs.ext4, tar -xpf", fmt.Sprintf("tar %s %s -C %s", tarExtract, o("root.tar"), mnt), o("root.tar")))
	b.pair(g, r[0], restoreGoal, r[1])

	g = "restore, tgz set"
	r = b.measure(
		b.restoreOp(g, "backupctl restore (tgz set)", o("bc-tgz"), used),
		restore(g, "sfdisk, dd, mkfs.ext4, tar -xzpf", fmt.Sprintf("tar -z %s %s -C %s", tarExtract, o("root.tgz"), mnt), o("root.tgz")),
		restore(g, "sfdisk, dd, mkfs.ext4, tar -I pigz -xpf", fmt.Sprintf("tar -I pigz %s %s -C %s", tarExtract, o("root.tgz"), mnt), o("root.tgz")))
	b.pair(g, r[0], restoreGoal, r[1])
	b.pair(g, r[0], restoreGoal, r[2])

	g = "restore, tar + zstd set"
	r = b.measure(
		b.restoreOp(g, "backupctl restore (tar -z zstd set)", o("bc-tzst"), used),
		restore(g, "sfdisk, dd, mkfs.ext4, tar -I 'zstd -T0' -xpf", fmt.Sprintf("tar -I 'zstd -T0' %s %s -C %s", tarExtract, o("root.tar.zst"), mnt), o("root.tar.zst")))
	b.pair(g, r[0], restoreGoal, r[1])

	g = "restore, rsync set"
	r = b.measure(
		b.restoreOp(g, "backupctl restore (rsync set)", o("bc-rsync"), used),
		restore(g, "sfdisk, dd, mkfs.ext4, rsync -aHAX", fmt.Sprintf("rsync -aHAX --numeric-ids %s/first/ %s/", o("rsync"), mnt), o("rsync")))
	b.pair(g, r[0], restoreGoal, r[1])
	return nil
}

// live: the root mounted read-write, as on a running Pi, read by the
// classic tools through the mount (tar, rsync) and its loop device (dd),
// and by the used-blocks imaging code through the loop device with the
// live map a running system's dd set uses (usedblocks.OpenLive: the
// allocation bitmaps read group by group as the copy reaches them).
//
// backupctl itself cannot back up a mounted root here: without
// --source-disk it backs up the system it runs on (its / and the boot
// partition mounted at /boot/firmware, both partitions of one disk), and
// this kernel mounts no FAT and makes no partition nodes for a loop
// device. qemu-tests' TestLiveBackup runs it on a booted fixture instead.
// So the file-level live pairs set backupctl's root-only runs on the
// unmounted root (measured above) against the classic tools on the live
// mount: how much the mount costs the classic side.
func (b *bench) live() error {
	o, used, root := b.o, b.fx.RootUsed, b.fx.RootSize
	tarP, rsyncP := b.rootOnly["tar"], b.rootOnly["rsync"]
	mnt := filepath.Join(b.cfg.dir, "mnt-live")
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		return err
	}
	dev, err := losetup(b.fx.Path, rootStart, root, false)
	if err != nil {
		return err
	}
	defer runCmd("losetup", "-d", dev)
	if err := runCmd("mount", "-o", "rw", dev, mnt); err != nil {
		return err
	}
	defer runCmd("umount", mnt)
	// The mounted filesystem caches its files apart from the fixture
	// file: each run drops both, and the loop device's own cache.
	evict := []string{mnt, dev}

	g := "live root"
	ours := &op{group: g, tool: "used-blocks imaging code, live map (bench ours-image -live)", ours: true, src: root, out: o("live-ours.img"),
		argv: []string{b.cfg.self, "ours-image", "-live", "-o", o("live-ours.img"), dev}, before: rm(o("live-ours.img")), evict: evict}
	dd := classic(g, "dd bs=4M of the loop device", o("live-dd.img"), root,
		fmt.Sprintf("dd if=%s of=%s bs=4M status=none", dev, o("live-dd.img")), evict...)
	tar := classic(g, "tar -cpf of the mount", o("live.tar"), used, fmt.Sprintf("tar %s %s -C %s .", tarCreate, o("live.tar"), mnt), evict...)
	rs := classic(g, "rsync -aHAX of the mount", o("live-rsync"), used,
		fmt.Sprintf("mkdir -p %[1]s; rsync -aHAX --numeric-ids %[2]s/ %[1]s/", o("live-rsync"), mnt), evict...)
	rs.before = rm(o("live-rsync"))
	r := b.measure(ours, dd, tar, rs)
	b.pair("live root, used blocks vs dd of its device", r[0], goal{}, r[1])
	b.pair("live root: tar, root only (backupctl unmounted, tar on the rw mount)", tarP, goal{}, r[2])
	b.pair("live root: rsync, root only, first run (backupctl unmounted, rsync on the rw mount)", rsyncP, goal{}, r[3])
	for _, p := range []string{"live-ours.img", "live-dd.img", "live.tar", "live-rsync"} {
		os.RemoveAll(o(p))
	}
	return nil
}

// memory4 runs the compressing backups once more as on a 4-core Pi
// (Zero 2 W, 3, 4): internal/compress sizes its parallel compressors by
// GOMAXPROCS, so their memory grows with the cores. Only the peak RSS is
// reported.
func (b *bench) memory4() error {
	if b.cfg.backupctl == "" {
		return nil
	}
	o, disk, set := b.o, b.fx.Size, b.fx.BootUsed+b.fx.RootUsed
	var ops []*op
	for _, c := range []struct {
		tool string
		src  int64
		args []string
	}{
		{"backupctl -t ddz", disk, []string{"-t", "ddz"}},
		{"backupctl -t dd -z zstd", disk, []string{"-t", "dd", "-z", "zstd"}},
		{"backupctl -t tgz", set, []string{"-t", "tgz"}},
		{"backupctl -t tar -z zstd", set, []string{"-t", "tar", "-z", "zstd"}},
	} {
		op := b.backupOp("GOMAXPROCS=4", c.tool, o("bc-mem"), c.src, c.args...)
		op.env = []string{"GOMAXPROCS=4"}
		ops = append(ops, op)
	}
	runs := b.cfg.runs
	b.cfg.runs = 1
	rows := b.measure(ops...)
	b.cfg.runs = runs
	// Not pairs: out of the main table.
	b.rows = slices.DeleteFunc(b.rows, func(r *row) bool { return slices.Contains(rows, r) })
	b.mem4 = rows
	os.RemoveAll(o("bc-mem"))
	return nil
}

// mountRoot attaches the fixture's root partition to a new loop device
// and mounts it at dir; the returned func unmounts and detaches.
func (b *bench) mountRoot(dir string, ro bool) (func() error, error) {
	dev, err := losetup(b.fx.Path, rootStart, b.fx.RootSize, ro)
	if err != nil {
		return nil, err
	}
	opts := "rw"
	if ro {
		opts = "ro"
	}
	if err := runCmd("mount", "-o", opts, dev, dir); err != nil {
		runCmd("losetup", "-d", dev)
		return nil, err
	}
	return func() error {
		return errors.Join(runCmd("umount", dir), runCmd("losetup", "-d", dev))
	}, nil
}

// changeRoot appends to every 50th regular file of the fixture's root
// (2%) and returns the func that truncates them back (their mtimes stay
// new; sizes and contents are as before, so the fixture can be reused).
func (b *bench) changeRoot(mnt string) (func() error, error) {
	undoMount, err := b.mountRoot(mnt, false)
	if err != nil {
		return nil, err
	}
	changed, err := changeFiles(mnt)
	if err2 := undoMount(); err == nil {
		err = err2
	}
	if err != nil {
		os.Remove(b.fx.Path + ".json") // rebuild next time
		return nil, err
	}
	logf("changed %d files (2%%) for the incremental runs", len(changed))
	b.notes = append(b.notes, fmt.Sprintf("incremental runs: %d files (every 50th) had 17 bytes appended", len(changed)))
	return func() error {
		undoMount, err := b.mountRoot(mnt, false)
		if err != nil {
			return err
		}
		for _, c := range changed {
			if e := os.Truncate(filepath.Join(mnt, c.path), c.size); e != nil && err == nil {
				err = e
			}
		}
		if e := undoMount(); err == nil {
			err = e
		}
		if err != nil {
			os.Remove(b.fx.Path + ".json")
		}
		return err
	}, nil
}

func losetup(img string, off, size int64, ro bool) (string, error) {
	args := []string{"--find", "--show", "--offset", strconv.FormatInt(off, 10), "--sizelimit", strconv.FormatInt(size, 10)}
	if ro {
		args = append(args, "--read-only")
	}
	out, err := runOut("losetup", append(args, img)...)
	return strings.TrimSpace(out), err
}
