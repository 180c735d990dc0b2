// Command mkdeb builds the backupctl Debian packages (amd64, arm64, armhf)
// with nfpm as a library: `make deb` runs it.
//
//	go run ./packaging/mkdeb -version v1.2.3 -commit abc1234 -date 2026-11-25T03:15:00Z -o out
//
// For each architecture it cross-compiles backupctl (CGO_ENABLED=0), and
// packs it with what it documents itself: man pages and bash/zsh/fish
// completions from `backupctl gendocs` (the real command tree), the
// default config rendered from internal/config's option table, the
// systemd units of packaging/systemd, and the maintainer scripts,
// copyright and changelog of packaging/mkdeb/debian.
//
// Why nfpm: it is the packager GoReleaser uses, writes real .deb files
// (conffiles, md5sums, Installed-Size, maintainer scripts) without dpkg-deb
// or fakeroot, and runs on any build machine. The same date gives the same
// bytes: every mtime is -date.
package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"embed"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
)

//go:embed debian
var debianFiles embed.FS

const (
	pkgName     = "backupctl"
	binPath     = "/usr/bin/backupctl"
	unitDir     = "/lib/systemd/system" // Debian 12's place for packaged units; /usr/lib from 13 on, same files
	confPath    = "/etc/backupctl/backupctl.conf"
	docDir      = "/usr/share/doc/" + pkgName
	homepage    = "https://github.com/pibackup/pibackup"
	description = `back up and restore Raspberry Pi systems (raspiBackup-compatible)
backupctl backs up a running Raspberry Pi into raspiBackup's backup layout
(dd, ddz, tar, tgz and rsync sets, each with a SHA-256 manifest) on a USB
disk, a NAS or an SFTP server, and verifies, lists, restores and clones
them. A systemd timer runs the backup daily once a target is configured.
.
Restoring onto a new card needs no second Linux machine: the pibackup
recovery image boots the Pi and restores from the same targets.`
)

// The packaged unit files are the ones of packaging/systemd with the path
// of the packaged binary; they name the /usr/local one of a hand install.
const unitBinary = "/usr/local/bin/backupctl"

type options struct {
	version, commit, date string
	arches                []string
	out, root             string
	goarm                 string // GOARM of the armhf package
	maintainer            string
	log                   io.Writer
}

// pkgResult is one written package.
type pkgResult struct {
	Arch, Path string
	Size       int64
}

// goTarget is the Go side of a Debian architecture.
type goTarget struct{ goarch, goarm string }

func targetFor(debArch, goarm string) (goTarget, error) {
	switch debArch {
	case "amd64", "arm64":
		return goTarget{goarch: debArch}, nil
	case "armhf":
		return goTarget{goarch: "arm", goarm: goarm}, nil
	}
	return goTarget{}, fmt.Errorf("architecture %q: want amd64, arm64 or armhf", debArch)
}

func main() {
	var o options
	var arches string
	flag.StringVar(&o.version, "version", "dev", "version, as `git describe --tags --always --dirty` prints it; mapped to a Debian version")
	flag.StringVar(&o.commit, "commit", "", "commit, for backupctl --version")
	flag.StringVar(&o.date, "date", "", "build date, RFC 3339 (default now); also every file's mtime, for reproducible packages")
	flag.StringVar(&arches, "arch", "amd64,arm64,armhf", "comma-separated Debian architectures")
	flag.StringVar(&o.out, "o", "out", "folder for the .deb files")
	flag.StringVar(&o.root, "root", ".", "root of the pibackup module")
	flag.StringVar(&o.goarm, "goarm", "6", "GOARM of the armhf package: 6 runs on every Pi (Raspberry Pi OS armhf is ARMv6), 7 only on Pi 2 and later")
	flag.StringVar(&o.maintainer, "maintainer", "pibackup developers <pibackup@users.noreply.github.com>", "Maintainer field")
	flag.Parse()
	o.arches = strings.Split(arches, ",")
	o.log = os.Stderr
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := build(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkdeb:", err)
		os.Exit(1)
	}
	for _, r := range res {
		fmt.Printf("%s  %.1f MiB\n", r.Path, float64(r.Size)/(1<<20))
	}
}

func build(ctx context.Context, o options) ([]pkgResult, error) {
	if o.log == nil {
		o.log = io.Discard
	}
	debVer, err := debVersion(o.version)
	if err != nil {
		return nil, err
	}
	mtime := time.Now().UTC().Truncate(time.Second)
	if o.date != "" {
		if mtime, err = time.Parse(time.RFC3339, o.date); err != nil {
			return nil, fmt.Errorf("-date: %w", err)
		}
	}
	o.date = mtime.UTC().Format(time.RFC3339)
	if o.root, err = filepath.Abs(o.root); err != nil {
		return nil, err
	}
	targets := map[string]goTarget{}
	for _, a := range o.arches {
		t, err := targetFor(strings.TrimSpace(a), o.goarm)
		if err != nil {
			return nil, err
		}
		targets[strings.TrimSpace(a)] = t
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return nil, err
	}
	stage, err := os.MkdirTemp("", "mkdeb-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(stage)

	// The binaries, then the docs from whichever of them runs here.
	bins := map[string]string{}
	var hostBin string
	for _, a := range sortedKeys(targets) {
		t := targets[a]
		bins[a] = filepath.Join(stage, "bin-"+a, "backupctl")
		fmt.Fprintf(o.log, "mkdeb: building backupctl for %s (GOARCH=%s GOARM=%s)\n", a, t.goarch, t.goarm)
		if err := goBuild(ctx, o, t, bins[a]); err != nil {
			return nil, err
		}
		if runtime.GOOS == "linux" && t.goarch == runtime.GOARCH {
			hostBin = bins[a]
		}
	}
	if hostBin == "" {
		hostBin = filepath.Join(stage, "bin-host", "backupctl")
		if err := goBuild(ctx, o, goTarget{goarch: runtime.GOARCH}, hostBin); err != nil {
			return nil, err
		}
	}
	common, err := stageCommon(ctx, o, debVer, mtime, hostBin, stage)
	if err != nil {
		return nil, err
	}

	var res []pkgResult
	for _, a := range sortedKeys(targets) {
		r, err := writePackage(o, a, debVer, mtime, bins[a], common, stage)
		if err != nil {
			return nil, err
		}
		res = append(res, r)
	}
	return res, nil
}

func goBuild(ctx context.Context, o options, t goTarget, out string) error {
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if p, err := exec.LookPath("go"); err == nil {
		gobin = p
	}
	ldflags := fmt.Sprintf("-s -w -X main.version=%s -X main.commit=%s -X main.date=%s", o.version, o.commit, o.date)
	cmd := exec.CommandContext(ctx, gobin, "build", "-trimpath", "-ldflags", ldflags, "-o", out, "./backupctl")
	cmd.Dir = o.root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+t.goarch)
	if t.goarm != "" {
		cmd.Env = append(cmd.Env, "GOARM="+t.goarm)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build for %s: %v\n%s", t.goarch, err, out)
	}
	return nil
}

// stageCommon writes the architecture-independent files into stage and
// returns them as package contents.
func stageCommon(ctx context.Context, o options, debVer string, mtime time.Time, hostBin, stage string) (files.Contents, error) {
	var c files.Contents
	add := func(src, dst string, mode os.FileMode, typ string) {
		c = append(c, &files.Content{Source: src, Destination: dst, Type: typ,
			FileInfo: &files.ContentFileInfo{Owner: "root", Group: "root", Mode: mode, MTime: mtime}})
	}

	// Man pages and completions, from the command tree of the binary.
	man, compl := filepath.Join(stage, "man"), filepath.Join(stage, "completions")
	cmd := exec.CommandContext(ctx, hostBin, "gendocs", "--man", man, "--completions", compl)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("backupctl gendocs: %v\n%s(is a.newGendocsCmd() registered in backupctl/commands.go?)", err, out)
	}
	pages, err := filepath.Glob(filepath.Join(man, "*.1"))
	if err != nil || len(pages) == 0 {
		return nil, fmt.Errorf("backupctl gendocs wrote no man pages into %s", man)
	}
	for _, p := range pages {
		gz := p + ".gz"
		if err := gzipFile(p, gz); err != nil {
			return nil, err
		}
		add(gz, "/usr/share/man/man1/"+filepath.Base(gz), 0o644, "")
	}
	add(filepath.Join(compl, "backupctl.bash"), "/usr/share/bash-completion/completions/backupctl", 0o644, "")
	add(filepath.Join(compl, "_backupctl"), "/usr/share/zsh/vendor-completions/_backupctl", 0o644, "")
	add(filepath.Join(compl, "backupctl.fish"), "/usr/share/fish/vendor_completions.d/backupctl.fish", 0o644, "")

	// The default config: 0600, it is where secrets go.
	conf, err := defaultConfig()
	if err != nil {
		return nil, err
	}
	confFile := filepath.Join(stage, "backupctl.conf")
	if err := os.WriteFile(confFile, conf, 0o600); err != nil {
		return nil, err
	}
	add(confFile, confPath, 0o600, files.TypeConfigNoReplace)

	// systemd units.
	for _, u := range []string{"backupctl.service", "backupctl.timer"} {
		data, err := os.ReadFile(filepath.Join(o.root, "packaging", "systemd", u))
		if err != nil {
			return nil, err
		}
		data = bytes.ReplaceAll(data, []byte(unitBinary), []byte(binPath))
		p := filepath.Join(stage, u)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return nil, err
		}
		add(p, unitDir+"/"+u, 0o644, "")
	}

	// /usr/share/doc: copyright, changelog, the usage guide.
	cp, err := debianFiles.ReadFile("debian/copyright")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(stage, "copyright"), cp, 0o644); err != nil {
		return nil, err
	}
	add(filepath.Join(stage, "copyright"), docDir+"/copyright", 0o644, "")
	ov, err := debianFiles.ReadFile("debian/lintian-overrides")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(stage, "lintian-overrides"), ov, 0o644); err != nil {
		return nil, err
	}
	add(filepath.Join(stage, "lintian-overrides"), "/usr/share/lintian/overrides/"+pkgName, 0o644, "")
	changelog := fmt.Sprintf("%s (%s) unstable; urgency=medium\n\n  * Built from pibackup %s (commit %s).\n\n -- %s  %s\n",
		pkgName, debVer, o.version, orDash(o.commit), o.maintainer, mtime.Format(time.RFC1123Z))
	if err := os.WriteFile(filepath.Join(stage, "changelog"), []byte(changelog), 0o644); err != nil {
		return nil, err
	}
	// A version without a Debian revision makes this a native package,
	// whose changelog is changelog.gz (Debian policy 12.7).
	if err := gzipFile(filepath.Join(stage, "changelog"), filepath.Join(stage, "changelog.gz")); err != nil {
		return nil, err
	}
	add(filepath.Join(stage, "changelog.gz"), docDir+"/changelog.gz", 0o644, "")
	usage := filepath.Join(o.root, "README.md") // the user guide, installed as USAGE.md
	if _, err := os.Stat(usage); err == nil {
		if err := gzipFile(usage, filepath.Join(stage, "USAGE.md.gz")); err != nil {
			return nil, err
		}
		add(filepath.Join(stage, "USAGE.md.gz"), docDir+"/USAGE.md.gz", 0o644, "")
	}

	// Maintainer scripts.
	scripts := filepath.Join(stage, "scripts")
	if err := os.MkdirAll(scripts, 0o755); err != nil {
		return nil, err
	}
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		data, err := debianFiles.ReadFile("debian/" + s)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(scripts, s), data, 0o755); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func writePackage(o options, debArch, debVer string, mtime time.Time, bin string, common files.Contents, stage string) (pkgResult, error) {
	contents := files.Contents{{Source: bin, Destination: binPath,
		FileInfo: &files.ContentFileInfo{Owner: "root", Group: "root", Mode: 0o755, MTime: mtime}}}
	for _, c := range common {
		cc := *c
		fi := *c.FileInfo
		cc.FileInfo = &fi
		contents = append(contents, &cc)
	}
	scripts := filepath.Join(stage, "scripts")
	info := &nfpm.Info{
		Name:          pkgName,
		Arch:          debArch,
		Platform:      "linux",
		Version:       debVer,
		VersionSchema: "none", // debVersion made it a Debian version already
		Section:       "admin",
		Priority:      "optional",
		Maintainer:    o.maintainer,
		Description:   description,
		Homepage:      homepage,
		MTime:         mtime,
		Overridables: nfpm.Overridables{
			// tar is Essential; losetup is in mount; e2fsck, resize2fs,
			// tune2fs and mkfs.ext4 in e2fsprogs.
			Depends: []string{"rsync", "e2fsprogs", "mount"},
			// With zstd, GNU tar compresses a local tar.zst set on
			// every core (internal/backup/tar.go); without it backupctl's
			// Go encoder does, on one.
			Recommends: []string{"zstd"},
			Suggests:   []string{"sshfs", "nfs-common", "cifs-utils"},
			Contents:   contents,
			Umask:      0o022,
			Scripts: nfpm.Scripts{
				PostInstall: filepath.Join(scripts, "postinst"),
				PreRemove:   filepath.Join(scripts, "prerm"),
				PostRemove:  filepath.Join(scripts, "postrm"),
			},
			Deb: nfpm.Deb{Compression: "xz"},
		},
	}
	info = nfpm.WithDefaults(info)
	if err := nfpm.Validate(info); err != nil {
		return pkgResult{}, fmt.Errorf("%s: %w", debArch, err)
	}
	path := filepath.Join(o.out, deb.Default.ConventionalFileName(info))
	tmp := path + ".partial"
	f, err := os.Create(tmp)
	if err != nil {
		return pkgResult{}, err
	}
	err = deb.Default.Package(info, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return pkgResult{}, fmt.Errorf("package %s: %w", debArch, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return pkgResult{}, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return pkgResult{}, err
	}
	fmt.Fprintf(o.log, "mkdeb: wrote %s (%.1f MiB)\n", path, float64(fi.Size())/(1<<20))
	return pkgResult{Arch: debArch, Path: path, Size: fi.Size()}, nil
}

// gzipFile compresses like gzip -9n: no name and no timestamp in the
// header, so the result depends on the content only.
func gzipFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	zw, err := gzip.NewWriterLevel(&b, gzip.BestCompression)
	if err != nil {
		return err
	}
	if _, err := zw.Write(data); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return os.WriteFile(dst, b.Bytes(), 0o644)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
