package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/md5"
	"debug/buildinfo"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pibackup/pibackup/internal/config"
)

func TestDebVersion(t *testing.T) {
	for in, want := range map[string]string{
		"v1.2.3":                  "1.2.3",
		"1.2.3":                   "1.2.3",
		"v1.2.3-rc1":              "1.2.3~rc1",
		"v1.2.3-rc.1-4-gabc1234":  "1.2.3~rc.1+4.gabc1234",
		"v1.2.3-4-gabc1234":       "1.2.3+4.gabc1234",
		"v1.2.3-4-gabc1234-dirty": "1.2.3+4.gabc1234.dirty",
		"v1.2.3-dirty":            "1.2.3+dirty",
		"abc1234":                 "0.0.0+gabc1234",
		"5939886-dirty":           "0.0.0+g5939886.dirty", // an all-digit hash is no version
		"dev":                     "0.0.0+dev",
		"":                        "0.0.0+dev",
	} {
		got, err := debVersion(in)
		if err != nil || got != want {
			t.Errorf("debVersion(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"release one", "v1.2.3_beta", "-1"} {
		if got, err := debVersion(in); err == nil {
			t.Errorf("debVersion(%q) = %q, want an error", in, got)
		}
	}
}

// The packaged config changes nothing as shipped, and every line of it is
// a valid setting with the default value once uncommented.
func TestDefaultConfig(t *testing.T) {
	conf, err := defaultConfig()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	load := func(name string, data []byte) *config.Loaded {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		l, err := config.Load(config.Sources{Explicit: p}, nil)
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, data)
		}
		if len(l.Warnings) > 0 {
			t.Errorf("%s: warnings %v", name, l.Warnings)
		}
		return l
	}
	shipped := load("shipped.conf", conf)
	for k, origin := range shipped.Origins {
		if origin != config.OriginDefault {
			t.Errorf("the shipped file sets %s; it should only document it", k)
		}
	}
	setting := regexp.MustCompile(`(?m)^#([a-z][a-z0-9.-]*) = `)
	seen := map[string]bool{}
	for _, m := range setting.FindAllSubmatch(conf, -1) {
		seen[string(m[1])] = true
	}
	for _, k := range config.Keys() {
		if !seen[k] {
			t.Errorf("the config file does not list %s", k)
		}
	}
	uncommented := setting.ReplaceAll(conf, []byte("$1 = "))
	all := load("uncommented.conf", uncommented)
	// %+v: an empty list in the file is an empty slice, the default nil.
	if fmt.Sprintf("%+v", *all.Config) != fmt.Sprintf("%+v", *config.Defaults()) {
		t.Errorf("the values in the file are not the defaults:\n got %+v\nwant %+v", all.Config, config.Defaults())
	}
	for _, k := range config.Keys() {
		if all.Origins[k] == config.OriginDefault {
			t.Errorf("uncommenting did not set %s", k)
		}
	}
}

// debField reads one control field with dpkg-deb.
func debField(t *testing.T, deb, field string) string {
	t.Helper()
	out, err := exec.Command("dpkg-deb", "--field", deb, field).Output()
	if err != nil {
		t.Fatalf("dpkg-deb --field %s %s: %v", deb, field, err)
	}
	return strings.TrimSpace(string(out))
}

// TestPackages builds the packages as `make deb` does and checks them with
// Debian's own tools: dpkg-deb's view of the control data and the files,
// md5sums, the binaries' architecture and build settings, lintian when it
// is installed, dpkg --root installs for every architecture and, as root,
// a real dpkg -i / --purge of the native package.
func TestPackages(t *testing.T) {
	for _, tool := range []string{"dpkg-deb", "dpkg"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (a Debian system)", tool)
		}
	}
	arches := []string{"amd64", "arm64", "armhf"}
	if testing.Short() {
		arches = []string{"amd64"} // cross builds take minutes on a cold cache
	}
	out := t.TempDir()
	const date = "2026-11-25T03:15:00Z"
	o := options{version: "v1.2.3-4-gabc1234", commit: "abc1234", date: date, arches: arches,
		out: out, root: filepath.Join("..", ".."), goarm: "6",
		maintainer: "pibackup developers <pibackup@users.noreply.github.com>", log: &testLog{t}}
	res, err := build(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(arches) {
		t.Fatalf("built %d packages, want %d", len(res), len(arches))
	}
	wantConf, err := defaultConfig()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		t.Run(r.Arch, func(t *testing.T) {
			t.Logf("%s: %.1f MiB", filepath.Base(r.Path), float64(r.Size)/(1<<20))
			if want := "backupctl_1.2.3+4.gabc1234_" + r.Arch + ".deb"; filepath.Base(r.Path) != want {
				t.Errorf("file name %s, want %s", filepath.Base(r.Path), want)
			}
			for field, want := range map[string]string{
				"Package": "backupctl", "Version": "1.2.3+4.gabc1234", "Architecture": r.Arch,
				"Section": "admin", "Priority": "optional", "Depends": "rsync, e2fsprogs, mount",
				"Recommends": "zstd", "Maintainer": o.maintainer,
			} {
				if got := debField(t, r.Path, field); got != want {
					t.Errorf("%s: %q, want %q", field, got, want)
				}
			}
			if !regexp.MustCompile(`^[0-9]+$`).MatchString(debField(t, r.Path, "Installed-Size")) {
				t.Error("no numeric Installed-Size")
			}

			ctrl, root := t.TempDir(), t.TempDir()
			if out, err := exec.Command("dpkg-deb", "--control", r.Path, ctrl).CombinedOutput(); err != nil {
				t.Fatalf("dpkg-deb --control: %v\n%s", err, out)
			}
			if out, err := exec.Command("dpkg-deb", "--extract", r.Path, root).CombinedOutput(); err != nil {
				t.Fatalf("dpkg-deb --extract: %v\n%s", err, out)
			}
			if got, _ := os.ReadFile(filepath.Join(ctrl, "conffiles")); string(got) != confPath+"\n" {
				t.Errorf("conffiles = %q, want %s", got, confPath)
			}
			for _, s := range []string{"postinst", "prerm", "postrm"} {
				p := filepath.Join(ctrl, s)
				if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o755 {
					t.Errorf("maintainer script %s: %v, mode %v", s, err, fi.Mode())
				}
				if out, err := exec.Command("sh", "-n", p).CombinedOutput(); err != nil {
					t.Errorf("sh -n %s: %v\n%s", s, err, out)
				}
			}
			checkMD5sums(t, filepath.Join(ctrl, "md5sums"), root)
			checkContents(t, r.Path)

			// The binary: the package's architecture, static, with the version.
			bin := filepath.Join(root, "usr", "bin", "backupctl")
			checkBinary(t, bin, r.Arch, o)

			// The units run the packaged binary.
			svc, err := os.ReadFile(filepath.Join(root, "lib", "systemd", "system", "backupctl.service"))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(svc, []byte("ExecStart="+binPath+" backup")) || bytes.Contains(svc, []byte("/usr/local/bin")) {
				t.Errorf("backupctl.service does not run %s:\n%s", binPath, svc)
			}
			if _, err := os.Stat(filepath.Join(root, "lib", "systemd", "system", "backupctl.timer")); err != nil {
				t.Error(err)
			}
			conf, err := os.ReadFile(filepath.Join(root, "etc", "backupctl", "backupctl.conf"))
			if err != nil || !bytes.Equal(conf, wantConf) {
				t.Errorf("backupctl.conf is not the generated default config (%v)", err)
			}
			page := gunzip(t, filepath.Join(root, "usr", "share", "man", "man1", "backupctl-backup.1.gz"))
			if !bytes.Contains(page, []byte(`.TH "BACKUPCTL" "1" "Nov 2026" "backupctl v1.2.3-4-gabc1234"`)) {
				t.Errorf("backupctl-backup.1: unexpected header:\n%.300s", page)
			}
			for _, p := range []string{"usr/share/bash-completion/completions/backupctl",
				"usr/share/zsh/vendor-completions/_backupctl", "usr/share/fish/vendor_completions.d/backupctl.fish"} {
				if data, err := os.ReadFile(filepath.Join(root, p)); err != nil || !bytes.Contains(data, []byte("backupctl")) {
					t.Errorf("completion %s: %v", p, err)
				}
			}

			if os.Geteuid() == 0 {
				dpkgRootInstall(t, r.Path)
			}
		})
	}
	lintian(t, res)
	if os.Geteuid() == 0 && !t.Failed() {
		for _, r := range res {
			if r.Arch == "amd64" && hostArch(t) == "amd64" {
				realInstall(t, r.Path, o)
			}
		}
	}
}

type testLog struct{ t *testing.T }

func (l *testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func checkMD5sums(t *testing.T, md5sums, root string) {
	t.Helper()
	f, err := os.Open(md5sums)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		sum, path, ok := strings.Cut(sc.Text(), "  ")
		if !ok {
			t.Fatalf("md5sums line %q", sc.Text())
		}
		data, err := os.ReadFile(filepath.Join(root, path))
		if err != nil {
			t.Errorf("md5sums names %s: %v", path, err)
			continue
		}
		if got := md5.Sum(data); hex.EncodeToString(got[:]) != sum {
			t.Errorf("md5sums: %s does not match", path)
		}
		n++
	}
	if n < 10 {
		t.Errorf("md5sums lists %d files", n)
	}
}

// checkContents reads the data archive's listing: owners, modes, paths.
func checkContents(t *testing.T, deb string) {
	t.Helper()
	out, err := exec.Command("dpkg-deb", "--contents", deb).Output()
	if err != nil {
		t.Fatal(err)
	}
	type entry struct{ mode, owner string }
	got := map[string]entry{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 {
			t.Fatalf("dpkg-deb --contents line %q", line)
		}
		got[strings.TrimPrefix(f[5], ".")] = entry{f[0], f[1]}
		if f[1] != "root/root" {
			t.Errorf("%s is owned by %s", f[5], f[1])
		}
	}
	for path, mode := range map[string]string{
		binPath:                              "-rwxr-xr-x",
		confPath:                             "-rw-------",
		unitDir + "/backupctl.service":       "-rw-r--r--",
		unitDir + "/backupctl.timer":         "-rw-r--r--",
		"/usr/share/man/man1/backupctl.1.gz": "-rw-r--r--",
		"/usr/share/man/man1/backupctl-config-import.1.gz":    "-rw-r--r--",
		"/usr/share/bash-completion/completions/backupctl":    "-rw-r--r--",
		"/usr/share/zsh/vendor-completions/_backupctl":        "-rw-r--r--",
		"/usr/share/fish/vendor_completions.d/backupctl.fish": "-rw-r--r--",
		docDir + "/copyright":                                 "-rw-r--r--",
		docDir + "/changelog.gz":                              "-rw-r--r--",
		docDir + "/USAGE.md.gz":                               "-rw-r--r--",
		"/usr/share/lintian/overrides/backupctl":              "-rw-r--r--",
	} {
		e, ok := got[path]
		if !ok {
			t.Errorf("the package lacks %s", path)
			continue
		}
		if e.mode != mode {
			t.Errorf("%s has mode %s, want %s", path, e.mode, mode)
		}
	}
	for path := range got {
		if strings.Contains(path, "gendocs") {
			t.Errorf("the package has %s, a page of the hidden gendocs command", path)
		}
	}
}

func checkBinary(t *testing.T, bin, debArch string, o options) {
	t.Helper()
	ef, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	machine := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64, "armhf": elf.EM_ARM}[debArch]
	if ef.Machine != machine {
		t.Errorf("binary is %v, want %v", ef.Machine, machine)
	}
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("binary has a program interpreter: not static (CGO_ENABLED=0?)")
		}
	}
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"CGO_ENABLED": "0", "GOOS": "linux", "-trimpath": "true"}
	if debArch == "armhf" {
		want["GOARM"] = o.goarm
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	for k, v := range want {
		if settings[k] != v {
			t.Errorf("build setting %s = %q, want %q", k, settings[k], v)
		}
	}
	// -trimpath keeps -ldflags out of the build info; the -X string is in
	// the binary's data.
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{o.version, o.commit, o.date} {
		if !bytes.Contains(data, []byte(s)) {
			t.Errorf("the binary does not contain %q: -X main.* not set?", s)
		}
	}
}

func gunzip(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	if !zr.ModTime.IsZero() || zr.Name != "" {
		t.Errorf("%s: gzip header has a name or time; not reproducible", path)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func hostArch(t *testing.T) string {
	out, err := exec.Command("dpkg", "--print-architecture").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// dpkgRootInstall installs, then purges, the package into an empty root
// with its own dpkg database: dpkg unpacks it, registers the conffile and
// runs the maintainer scripts (with DPKG_ROOT set, they leave the host
// alone). Dependencies are not there, and the root may be another
// architecture: forced.
func dpkgRootInstall(t *testing.T, deb string) {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "var/lib/dpkg/status"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	dpkg := func(args ...string) string {
		t.Helper()
		all := append([]string{"--root=" + root, "--force-script-chrootless", "--force-depends",
			"--force-architecture", "--force-not-root", "--log=/dev/null"}, args...)
		out, err := exec.Command("dpkg", all...).CombinedOutput()
		if err != nil {
			t.Fatalf("dpkg %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	dpkg("--install", deb)
	status := dpkg("--status", "backupctl")
	if !strings.Contains(status, "Status: install ok installed") || !strings.Contains(status, confPath) {
		t.Errorf("dpkg --root: not installed with its conffile:\n%s", status)
	}
	if fi, err := os.Stat(filepath.Join(root, confPath)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("installed config: %v (mode %v), want 0600", err, fi.Mode())
	}
	if out := dpkg("--verify", "backupctl"); out != "" {
		t.Errorf("dpkg --verify after install:\n%s", out)
	}
	dpkg("--purge", "backupctl")
	for _, p := range []string{binPath, confPath, unitDir + "/backupctl.service"} {
		if _, err := os.Lstat(filepath.Join(root, p)); err == nil {
			t.Errorf("dpkg --purge left %s", p)
		}
	}
}

// lintian checks a package with Debian's policy checker: no error and no
// warning beyond the package's own overrides.
func lintian(t *testing.T, res []pkgResult) {
	if _, err := exec.LookPath("lintian"); err != nil {
		t.Log("lintian not installed (apt-get install lintian): skipping the policy check")
		return
	}
	if testing.Short() {
		return
	}
	// One package: the others differ in the binary only, and lintian
	// takes a minute per package on a busy machine.
	args := []string{"--tag-display-limit", "0", "--fail-on", "none", res[0].Path}
	out, err := exec.Command("lintian", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("lintian: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "E: ") || strings.HasPrefix(line, "W: ") {
			t.Errorf("lintian: %s", line)
		}
	}
}

// realInstall installs the package on this machine as an admin would,
// runs the installed backupctl, and purges it again. It only runs where
// nothing is lost: backupctl not installed by any means, and the
// dependencies present (dpkg -i does not fetch them).
func realInstall(t *testing.T, deb string, o options) {
	t.Run("dpkg-i", func(t *testing.T) {
		if os.Getenv("PIBACKUP_NO_DPKG_INSTALL") != "" {
			t.Skip("PIBACKUP_NO_DPKG_INSTALL is set")
		}
		if out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", "backupctl").Output(); err == nil && strings.Contains(string(out), "installed") {
			t.Skip("backupctl is installed on this machine already; not touching it")
		}
		for _, p := range []string{binPath, confPath} {
			if _, err := os.Lstat(p); err == nil {
				t.Skipf("%s exists on this machine; not touching it", p)
			}
		}
		for _, dep := range []string{"rsync", "e2fsprogs", "mount"} {
			if out, _ := exec.Command("dpkg-query", "-W", "-f=${Status}", dep).Output(); !strings.Contains(string(out), "install ok installed") {
				t.Skipf("dependency %s is not installed (make deps)", dep)
			}
		}
		run := func(name string, args ...string) string {
			t.Helper()
			out, err := exec.Command(name, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
			}
			return string(out)
		}
		t.Cleanup(func() {
			if out, err := exec.Command("dpkg", "--purge", "backupctl").CombinedOutput(); err != nil {
				t.Errorf("dpkg --purge backupctl: %v\n%s", err, out)
			}
		})
		run("dpkg", "--install", deb)
		got := run(binPath, "--version")
		want := fmt.Sprintf("backupctl %s (commit %s, built %s)\n", o.version, o.commit, o.date)
		if got != want {
			t.Errorf("backupctl --version = %q, want %q", got, want)
		}
		if out := run("dpkg", "--verify", "backupctl"); out != "" {
			t.Errorf("dpkg --verify:\n%s", out)
		}
		// The installed binary reads the installed config: nothing set.
		show := run(binPath, "config", "show")
		if !strings.Contains(show, "# read, in order: "+confPath) {
			t.Errorf("config show does not read %s:\n%s", confPath, show)
		}
		run("dpkg", "--purge", "backupctl")
		for _, p := range []string{binPath, confPath} {
			if _, err := os.Lstat(p); err == nil {
				t.Errorf("dpkg --purge left %s", p)
			}
		}
	})
}
