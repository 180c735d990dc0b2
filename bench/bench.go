package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type config struct {
	size      int64
	dir       string // fixture and outputs
	backupctl string // "" when the backup engine is not available
	self      string // this binary, for our operations
	md        string // where the markdown table goes
}

func configFromEnv() (config, error) {
	cfg := config{dir: "/var/tmp/pibackup-bench"}
	var err error
	if cfg.size, err = parseSize(envOr("BENCH_SIZE", "3G")); err != nil {
		return cfg, fmt.Errorf("BENCH_SIZE: %w", err)
	}
	if d := os.Getenv("BENCH_DIR"); d != "" {
		cfg.dir = d
	}
	if cfg.self, err = os.Executable(); err != nil {
		return cfg, err
	}
	cfg.backupctl = envOr("BENCH_BACKUPCTL", "out/backupctl")
	if _, err := os.Stat(cfg.backupctl); err != nil {
		logf("no %s (make build): skipping backupctl tar/rsync runs", cfg.backupctl)
		cfg.backupctl = ""
	} else if cfg.backupctl, err = filepath.Abs(cfg.backupctl); err != nil {
		return cfg, err
	}
	cfg.md = envOr("BENCH_MD", filepath.Join(cfg.dir, "results.md"))
	return cfg, os.MkdirAll(cfg.dir, 0o755)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// parseSize reads 3G, 1536M, 2T or plain bytes.
func parseSize(s string) (int64, error) {
	mult := int64(1)
	switch strings.ToUpper(s[len(s)-1:]) {
	case "K":
		mult = 1 << 10
	case "M":
		mult = 1 << 20
	case "G":
		mult = 1 << 30
	case "T":
		mult = 1 << 40
	}
	if mult > 1 {
		s = s[:len(s)-1]
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return int64(n*float64(mult)) / sector * sector, nil
}

// result is one measured run.
type result struct {
	Group    string  `json:"group"`
	Tool     string  `json:"tool"`
	Ours     bool    `json:"ours"`
	Secs     float64 `json:"secs"`
	Src      int64   `json:"src"`      // bytes the MB/s figure is based on
	Out      int64   `json:"out"`      // bytes allocated by the output
	Apparent int64   `json:"apparent"` // apparent size of a single-file output
	RSSKiB   int64   `json:"rss_kib"`
	Err      string  `json:"err,omitempty"`
}

type bench struct {
	cfg     config
	fx      *fixture
	outDir  string
	results []result
}

func runBench(cfg config) error {
	fx, err := buildFixture(cfg)
	if err != nil {
		return err
	}
	b := &bench{cfg: cfg, fx: fx, outDir: filepath.Join(cfg.dir, "out")}
	os.RemoveAll(b.outDir)
	if err := os.MkdirAll(b.outDir, 0o755); err != nil {
		return err
	}
	defer os.RemoveAll(b.outDir)
	o := func(name string) string { return filepath.Join(b.outDir, name) }
	img := fx.Path
	self := cfg.self
	disk := fx.Size

	// Disk images: the whole card.
	b.measure("image, raw", "pibackup used blocks (sparse file)", true, o("ours.img"), disk, self, "ours-image", "-o", o("ours.img"), img)
	b.measure("image, raw", "dd bs=4M", false, o("dd.img"), disk, "dd", "if="+img, "of="+o("dd.img"), "bs=4M", "status=none")
	b.measure("image, gzip", "pibackup used blocks + pgzip", true, o("ours.img.gz"), disk, self, "ours-image", "-z", "gzip", "-o", o("ours.img.gz"), img)
	b.measure("image, gzip", "dd bs=4M | gzip", false, o("dd.img.gz"), disk, "bash", "-o", "pipefail", "-c", fmt.Sprintf("dd if=%s bs=4M status=none | gzip > %s", img, o("dd.img.gz")))
	b.measure("image, gzip", "dd bs=4M | pigz", false, o("dd-pigz.img.gz"), disk, "bash", "-o", "pipefail", "-c", fmt.Sprintf("dd if=%s bs=4M status=none | pigz > %s", img, o("dd-pigz.img.gz")))
	os.Remove(o("dd-pigz.img.gz"))
	b.measure("image, zstd", "pibackup used blocks + zstd", true, o("ours.img.zst"), disk, self, "ours-image", "-z", "zstd", "-o", o("ours.img.zst"), img)
	b.measure("image, zstd", "dd bs=4M | zstd -T0", false, o("dd.img.zst"), disk, "bash", "-o", "pipefail", "-c", fmt.Sprintf("dd if=%s bs=4M status=none | zstd -q -T0 > %s", img, o("dd.img.zst")))

	// Root partition alone, against partclone's used-blocks clone.
	root := fx.RootSize
	b.measure("root partition", "pibackup used blocks (sparse file)", true, o("ours-root.img"), root, self, "ours-image", "-part", "2", "-o", o("ours-root.img"), img)
	os.Remove(o("ours-root.img"))
	err = withLoop(img, rootStart, fx.RootSize, func(dev string) error {
		b.measure("root partition", "partclone.ext4 -c", false, o("root.pc"), root, "partclone.ext4", "-q", "-c", "-s", dev, "-o", o("root.pc"))
		return nil
	})
	if err != nil {
		return err
	}
	os.Remove(o("root.pc"))

	// Restores of those images into a new file.
	b.measure("restore, raw", "pibackup (zero blocks as holes)", true, o("r.img"), disk, self, "ours-restore", "-i", o("ours.img"), "-o", o("r.img"))
	os.Remove(o("r.img"))
	b.measure("restore, raw", "dd bs=4M", false, o("r.img"), disk, "dd", "if="+o("dd.img"), "of="+o("r.img"), "bs=4M", "status=none")
	os.Remove(o("r.img"))
	b.measure("restore, gzip", "pibackup pgzip (holes)", true, o("r.img"), disk, self, "ours-restore", "-z", "gzip", "-i", o("ours.img.gz"), "-o", o("r.img"))
	os.Remove(o("r.img"))
	b.measure("restore, gzip", "gzip -dc | dd bs=4M", false, o("r.img"), disk, "bash", "-o", "pipefail", "-c", fmt.Sprintf("gzip -dc %s | dd of=%s bs=4M status=none iflag=fullblock", o("dd.img.gz"), o("r.img")))
	os.Remove(o("r.img"))
	b.measure("restore, gzip", "pigz -dc | dd bs=4M", false, o("r.img"), disk, "bash", "-o", "pipefail", "-c", fmt.Sprintf("pigz -dc %s | dd of=%s bs=4M status=none iflag=fullblock", o("dd.img.gz"), o("r.img")))
	os.Remove(o("r.img"))
	b.measure("restore, zstd", "pibackup zstd (holes)", true, o("r.img"), disk, self, "ours-restore", "-z", "zstd", "-i", o("ours.img.zst"), "-o", o("r.img"))
	os.Remove(o("r.img"))
	b.measure("restore, zstd", "zstd -dc | dd bs=4M", false, o("r.img"), disk, "bash", "-o", "pipefail", "-c", fmt.Sprintf("zstd -q -dc %s | dd of=%s bs=4M status=none iflag=fullblock", o("dd.img.zst"), o("r.img")))
	os.Remove(o("r.img"))
	for _, f := range []string{"ours.img", "dd.img", "ours.img.gz", "dd.img.gz", "ours.img.zst", "dd.img.zst"} {
		os.Remove(o(f))
	}

	if err := b.fileLevel(); err != nil {
		return err
	}
	return b.report()
}

// fileLevel runs the tar and rsync comparisons: the classic tools on the
// root filesystem mounted read-only, backupctl on the disk image.
func (b *bench) fileLevel() error {
	o := func(name string) string { return filepath.Join(b.outDir, name) }
	mnt := filepath.Join(b.cfg.dir, "mnt")
	used := b.fx.RootUsed
	// Each classic run gets a fresh mount, so no run reads another's cache.
	mounted := func(ro bool, fn func()) error {
		return withLoop(b.fx.Path, rootStart, b.fx.RootSize, func(dev string) error {
			opts := "ro"
			if !ro {
				opts = "rw"
			}
			return withMount(dev, mnt, opts, func() error { fn(); return nil })
		})
	}
	tarFlags := "--numeric-owner --one-file-system --xattrs --acls -cpf" // raspiBackup's tar options
	classic := []struct{ group, tool, out, script string }{
		{"tar", "tar -cpf", "root.tar", fmt.Sprintf("tar %s %s -C %s .", tarFlags, o("root.tar"), mnt)},
		{"tar + gzip", "tar | gzip", "root.tgz", fmt.Sprintf("tar %s - -C %s . | gzip > %s", tarFlags, mnt, o("root.tgz"))},
		{"tar + gzip", "tar | pigz", "root-pigz.tgz", fmt.Sprintf("tar %s - -C %s . | pigz > %s", tarFlags, mnt, o("root-pigz.tgz"))},
		{"tar + zstd", "tar -I 'zstd -T0'", "root.tar.zst", fmt.Sprintf("tar -I 'zstd -T0' %s %s -C %s .", tarFlags, o("root.tar.zst"), mnt)},
		{"rsync, first", "rsync -aHAX", "rsync1", fmt.Sprintf("rsync -aHAX --numeric-ids %s/ %s/", mnt, o("rsync1"))},
	}
	for _, c := range classic {
		if err := mounted(true, func() {
			b.measure(c.group, c.tool, false, o(c.out), used, "bash", "-o", "pipefail", "-c", c.script)
		}); err != nil {
			return err
		}
	}
	bc := b.cfg.backupctl
	if bc != "" {
		for _, c := range []struct {
			group, tool string
			args        []string
		}{
			{"tar", "backupctl -t tar", []string{"-t", "tar"}},
			{"tar + gzip", "backupctl -t tgz", []string{"-t", "tgz"}},
			{"tar + zstd", "backupctl -t tar -z zstd", []string{"-t", "tar", "-z", "zstd"}},
			{"rsync, first", "backupctl -t rsync", []string{"-t", "rsync"}},
		} {
			dst := o("bc-" + strings.ReplaceAll(c.group, " ", ""))
			if strings.HasPrefix(c.group, "rsync") {
				dst = o("bc-rsync")
			}
			os.MkdirAll(dst, 0o755)
			args := append([]string{"backup"}, c.args...)
			args = append(args, "--hostname", "bench", "--source-disk", b.fx.Path, dst)
			b.measure(c.group, c.tool, true, dst, used, bc, args...)
		}
	}
	for _, f := range []string{"root.tgz", "root-pigz.tgz", "root.tar.zst"} {
		os.Remove(o(f))
	}
	for _, d := range []string{"bc-tar", "bc-tar+gzip", "bc-tar+zstd"} {
		os.RemoveAll(o(d))
	}

	// Change 2% of the files, then the incremental runs. The fixture is
	// modified from here on: its metadata file goes, so the next run
	// rebuilds it.
	var changed int
	if err := mounted(false, func() { changed, _ = changeFiles(mnt) }); err != nil {
		return err
	}
	os.Remove(b.fx.Path + ".json")
	logf("changed %d files (2%%) for the incremental runs", changed)
	if err := mounted(true, func() {
		script := fmt.Sprintf("rsync -aHAX --numeric-ids --link-dest=%s %s/ %s/", o("rsync1"), mnt, o("rsync2"))
		b.measureNew("rsync, incremental (2% changed)", "rsync -aHAX --link-dest", false, o("rsync2"), used, "bash", "-o", "pipefail", "-c", script)
	}); err != nil {
		return err
	}
	if bc != "" {
		b.measureNew("rsync, incremental (2% changed)", "backupctl -t rsync", true, o("bc-rsync"), used, bc,
			"backup", "-t", "rsync", "--hostname", "bench", "--source-disk", b.fx.Path, o("bc-rsync"))
	}
	os.RemoveAll(o("rsync1"))
	os.RemoveAll(o("rsync2"))
	os.RemoveAll(o("bc-rsync"))

	// Restore of the tar archive into an empty directory.
	x := o("untar")
	os.MkdirAll(x, 0o755)
	b.measure("restore, tar", "tar -xpf", false, x, used, "bash", "-c", fmt.Sprintf("tar --numeric-owner --xattrs --acls -xpf %s -C %s", o("root.tar"), x))
	os.RemoveAll(x)
	os.Remove(o("root.tar"))
	return nil
}

// measure runs one operation with the fixture out of the page cache and
// records its time (including fsync of out), output size and peak RSS.
func (b *bench) measure(group, tool string, ours bool, out string, src int64, name string, args ...string) {
	b.run(group, tool, ours, out, src, out, name, args...)
}

// measureNew is measure for an incremental run next to earlier ones: the
// output size is the growth of the whole output directory, so files
// hardlinked to the previous set count once, where they already were.
func (b *bench) measureNew(group, tool string, ours bool, out string, src int64, name string, args ...string) {
	before := allocated(b.outDir)
	r := b.run(group, tool, ours, out, src, out, name, args...)
	r.Out = allocated(b.outDir) - before
	b.results[len(b.results)-1] = r
}

func (b *bench) run(group, tool string, ours bool, out string, src int64, sizeOf, name string, args ...string) result {
	dropCache(b.fx.Path)
	r := result{Group: group, Tool: tool, Ours: ours, Src: src}
	logf("%s: %s", group, tool)
	cmd := exec.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	start := time.Now()
	err := cmd.Run()
	if err == nil {
		err = fsyncPath(out)
	}
	r.Secs = time.Since(start).Seconds()
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			r.RSSKiB = ru.Maxrss
		}
	}
	if err != nil {
		r.Err = fmt.Sprintf("%v: %s", err, lastLine(stderr.String()))
		logf("  failed: %s", r.Err)
	}
	r.Out = allocated(sizeOf)
	if fi, err := os.Stat(sizeOf); err == nil && !fi.IsDir() {
		r.Apparent = fi.Size()
	}
	logf("  %.1f s, %d MiB out, peak RSS %d MiB", r.Secs, r.Out>>20, r.RSSKiB>>10)
	b.results = append(b.results, r)
	return r
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}

// report prints the table to stdout and writes it, with the machine's
// description and the raw results, to cfg.md.
func (b *bench) report() error {
	var w bytes.Buffer
	fmt.Fprintf(&w, "Machine: %s\n\n", machine())
	fmt.Fprintf(&w, "Fixture: %d MiB disk (MBR, %d MiB FAT32 boot with %d MiB used, ext4 root of %d MiB with %d MiB used in %d files copied from /usr; %d MiB of stale random data written and deleted in free space).\n\n",
		b.fx.Size>>20, bootSize>>20, b.fx.BootUsed>>20, b.fx.RootSize>>20, b.fx.RootUsed>>20, b.fx.Files, b.fx.Stale>>20)
	fmt.Fprintf(&w, "MB/s = bytes covered / seconds: the whole disk for image operations, the root partition for partclone, the root's used bytes for tar and rsync. Seconds include fsync of the output. Output = disk space allocated (a sparse image counts only its data). Peak RSS = the process's maximum resident set (for a pipeline, its largest member). ours/this = our time (size) divided by this row's.\n\n")
	fmt.Fprintln(&w, "| Operation | Tool | s | MB/s | Output MiB | Peak RSS MiB | time ours/this | size ours/this |")
	fmt.Fprintln(&w, "|---|---|---:|---:|---:|---:|---:|---:|")
	// Groups in the order they ran, our row first in each.
	var groups []string
	for _, r := range b.results {
		if !slices.Contains(groups, r.Group) {
			groups = append(groups, r.Group)
		}
	}
	var rows []result
	for _, g := range groups {
		for _, ours := range []bool{true, false} {
			for _, r := range b.results {
				if r.Group == g && r.Ours == ours {
					rows = append(rows, r)
				}
			}
		}
	}
	for _, r := range rows {
		var ours *result
		for i := range b.results {
			if b.results[i].Group == r.Group && b.results[i].Ours && b.results[i].Err == "" {
				ours = &b.results[i]
				break
			}
		}
		tool := strings.ReplaceAll(r.Tool, "|", `\|`)
		if r.Ours {
			tool = "**" + tool + "**"
		}
		if r.Err != "" {
			fmt.Fprintf(&w, "| %s | %s | failed: %s | | | | | |\n", r.Group, tool, strings.ReplaceAll(r.Err, "|", "/"))
			continue
		}
		rt, rs := "", ""
		if !r.Ours && ours != nil && r.Secs > 0 && r.Out > 0 {
			rt = fmt.Sprintf("%.2f", ours.Secs/r.Secs)
			rs = fmt.Sprintf("%.2f", float64(ours.Out)/float64(r.Out))
		}
		out := fmt.Sprintf("%.0f", float64(r.Out)/(1<<20))
		if r.Apparent > 0 && r.Apparent-r.Out > 1<<20 {
			out += fmt.Sprintf(" (%.0f apparent)", float64(r.Apparent)/(1<<20))
		}
		fmt.Fprintf(&w, "| %s | %s | %.1f | %.0f | %s | %.0f | %s | %s |\n", r.Group, tool, r.Secs,
			float64(r.Src)/1e6/r.Secs, out, float64(r.RSSKiB)/1024, rt, rs)
	}
	os.Stdout.Write(w.Bytes())
	raw, _ := json.MarshalIndent(b.results, "", "  ")
	if err := os.WriteFile(strings.TrimSuffix(b.cfg.md, ".md")+".json", raw, 0o644); err != nil {
		return err
	}
	return os.WriteFile(b.cfg.md, w.Bytes(), 0o644)
}

// machine names the CPU, cores, RAM, kernel and the disk the outputs go to.
func machine() string {
	model := "unknown CPU"
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	var si syscall.Sysinfo_t
	syscall.Sysinfo(&si)
	var un syscall.Utsname
	syscall.Uname(&un)
	rel := make([]byte, 0, 65)
	for _, c := range un.Release {
		if c == 0 {
			break
		}
		rel = append(rel, byte(c))
	}
	load := float64(si.Loads[0]) / 65536
	return fmt.Sprintf("%s, %d cores (runtime.NumCPU), %d GiB RAM, Linux %s, %s, load average %.1f at the end of the run",
		model, runtime.NumCPU(), si.Totalram*uint64(si.Unit)>>30, rel, runtime.Version(), load)
}
