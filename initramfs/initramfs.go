// Package initramfs builds the recovery card's initramfs: u-root's init and a
// small set of u-root core commands (one busybox-style binary built by the
// u-root tool), our recovery program as u-root's uinit, and real e2fsprogs,
// GNU tar and rsync binaries with their shared libraries from Debian's
// packages for the target architecture.
//
// The result is two newc cpio archives back to back (the kernel unpacks
// concatenated archives in order), compressed as one zstd or gzip stream;
// all our kernels have CONFIG_RD_ZSTD and CONFIG_RD_GZIP.
package initramfs

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/pibackup/pibackup/internal/debpkg"
	"github.com/u-root/u-root/pkg/cpio"
)

// VersionFile holds the release version in the initramfs (Options.Version).
const VersionFile = "etc/pibackup-version"

// Options configures Build.
type Options struct {
	// GOARCH of the initramfs: "arm64" or "amd64".
	GOARCH string
	// ModuleDir is the root of our Go module; the u-root tool and all Go
	// packages are built from there so go.mod decides every version.
	ModuleDir string
	// Recovery is the Go package started as uinit ("./recovery"). The
	// command name is its last path element.
	Recovery string
	// CacheDir holds the host u-root binary and the Debian packages
	// (default: the user cache dir + "/pibackup").
	CacheDir string
	// Compression is "zstd" (default) or "gzip".
	Compression string
	// RefreshDebs downloads the Debian packages even when cached.
	RefreshDebs bool
	// Version goes into /etc/pibackup-version, where the recovery reads
	// the release it belongs to (u-root builds it without our ldflags).
	Version string
	Log     *slog.Logger
}

// Result describes a built initramfs.
type Result struct {
	CpioBytes       int64 // uncompressed, both archives
	URootCpioBytes  int64 // the u-root part
	CompressedBytes int64
	Debian          *DebianInfo
	Commands        []string // u-root command packages
	Duration        time.Duration
}

// UInitName is the command name u-root's init starts; it is the last element
// of Options.Recovery.
func (o *Options) UInitName() string { return filepath.Base(o.Recovery) }

// URootCommands are the u-root core commands in the initramfs: a shell and the
// tools for looking around and fixing things by hand. Keep initramfs/tools.go
// in step (it keeps them in go.mod). u-root's own tar is left out on purpose:
// GNU tar is in /usr/bin.
func URootCommands() []string {
	const core = "github.com/u-root/u-root/cmds/core/"
	var cmds []string
	for _, c := range []string{
		"init", "gosh", "ls", "cat", "cp", "mv", "rm", "mkdir", "ln", "more", "grep", "echo", "sleep",
		"mount", "umount", "df", "free", "sync", "uname", "dmesg", "ps", "kill",
		"ip", "dhclient", "wget", "poweroff", "shutdown",
	} {
		cmds = append(cmds, core+c)
	}
	return cmds
}

// selftestPkg is our check of the Debian tools, see cmd/selftest.
const selftestPkg = "./initramfs/cmd/selftest"

// Build writes the compressed initramfs to w.
func Build(ctx context.Context, opts Options, w io.Writer) (*Result, error) {
	start := time.Now()
	if err := opts.fill(); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "pibackup-initramfs-")
	if err != nil {
		return nil, fmt.Errorf("create temp dir: %w", err)
	}
	defer os.RemoveAll(tmp)

	// One build at a time per cache: parallel builds (make -j) would race on
	// the u-root binary and on apt's lists directory.
	unlock, err := lockDir(opts.CacheDir)
	if err != nil {
		return nil, err
	}
	defer unlock()

	res := &Result{Commands: URootCommands()}
	tool, err := opts.buildURootTool(ctx)
	if err != nil {
		return nil, err
	}
	base, err := opts.uRootArchive(ctx, tool, tmp)
	if err != nil {
		return nil, err
	}

	cache := &debpkg.Cache{Dir: filepath.Join(opts.CacheDir, "debian"), Log: opts.Log}
	recs, info, err := debianRecords(ctx, cache, opts.GOARCH, opts.RefreshDebs)
	if err != nil {
		return nil, err
	}
	res.Debian = info

	cw := &countingWriter{}
	comp, err := newCompressor(opts.Compression, io.MultiWriter(w, cw))
	if err != nil {
		return nil, err
	}
	raw := &countingWriter{}
	out := io.MultiWriter(comp, raw)
	f, err := os.Open(base)
	if err != nil {
		return nil, fmt.Errorf("open u-root archive: %w", err)
	}
	defer f.Close()
	if res.URootCpioBytes, err = io.Copy(out, f); err != nil {
		return nil, fmt.Errorf("copy u-root archive: %w", err)
	}
	// A second archive after u-root's TRAILER!!!: the kernel's unpacker
	// skips the zero padding and carries on (Documentation/driver-api/early-userspace).
	if opts.Version != "" {
		recs = append(recs, cpio.StaticFile(VersionFile, opts.Version+"\n", 0o644))
	}
	rw := cpio.Newc.Writer(out)
	if err := cpio.WriteRecordsAndDirs(rw, recs); err != nil {
		return nil, fmt.Errorf("write Debian archive: %w", err)
	}
	if err := cpio.WriteTrailer(rw); err != nil {
		return nil, fmt.Errorf("write Debian archive: %w", err)
	}
	if err := comp.Close(); err != nil {
		return nil, fmt.Errorf("compress initramfs: %w", err)
	}
	res.CpioBytes = raw.n
	res.CompressedBytes = cw.n
	res.Duration = time.Since(start)
	opts.Log.Info("initramfs built", "arch", opts.GOARCH, "cpio", res.CpioBytes, "u-root", res.URootCpioBytes,
		opts.Compression, res.CompressedBytes, "debs", info.DebBytes, "took", res.Duration.Round(time.Millisecond))
	return res, nil
}

func (o *Options) fill() error {
	switch o.GOARCH {
	case "arm64", "amd64":
	default:
		return fmt.Errorf("initramfs GOARCH %q: want arm64 or amd64", o.GOARCH)
	}
	if o.ModuleDir == "" {
		return fmt.Errorf("BUG: initramfs.Options.ModuleDir is empty")
	}
	if o.Recovery == "" {
		o.Recovery = "./recovery"
	}
	if o.Compression == "" {
		o.Compression = "zstd"
	}
	if o.CacheDir == "" {
		d, err := os.UserCacheDir()
		if err != nil {
			return fmt.Errorf("find a cache dir (set -cache): %w", err)
		}
		o.CacheDir = filepath.Join(d, "pibackup")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return nil
}

// buildURootTool builds the u-root command for the host from our module, so
// its version is the one in go.mod. Go's build cache makes this ~1 s when
// nothing changed. (GOARCH=arm64 go tool u-root would cross-compile the tool
// itself and fail with "exec format error".)
func (o *Options) buildURootTool(ctx context.Context) (string, error) {
	bin := filepath.Join(o.CacheDir, "bin", "u-root")
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return "", fmt.Errorf("create tool dir: %w", err)
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/u-root/u-root")
	cmd.Dir = o.ModuleDir
	cmd.Env = append(os.Environ(), "GOOS="+runtime.GOOS, "GOARCH="+runtime.GOARCH, "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the u-root tool: %w\n%s", err, out)
	}
	return bin, nil
}

// uRootArgs is the u-root command line (without the tool) for an archive at out.
func (o *Options) uRootArgs(out string) []string {
	args := []string{
		"-o", out,
		// Build mode "bb": one busybox binary, the smallest archive (~6.7 MB).
		"-build=bb",
		"-uinitcmd=" + o.UInitName(),
		"-defaultsh=gosh",
	}
	args = append(args, URootCommands()...)
	return append(args, selftestPkg, o.Recovery)
}

func (o *Options) runURoot(ctx context.Context, tool, out string) error {
	args := o.uRootArgs(out)
	o.Log.Info("u-root", "arch", o.GOARCH, "uinit", o.Recovery)
	cmd := exec.CommandContext(ctx, tool, args...)
	cmd.Dir = o.ModuleDir
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+o.GOARCH, "CGO_ENABLED=0")
	var buf bytes.Buffer
	cmd.Stdout = &buf
	cmd.Stderr = &buf
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("u-root %s: %w\n%s", strings.Join(args, " "), err, buf.String())
	}
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		o.Log.Debug("u-root", "out", sc.Text())
	}
	return nil
}

// uRootArchive returns the path of the u-root archive, from the cache when
// none of its inputs changed (the bb build takes 40 s on an idle 2-core box
// and minutes on a busy one, and every board of an arch shares it).
func (o *Options) uRootArchive(ctx context.Context, tool, tmp string) (string, error) {
	key, err := o.uRootKey(ctx)
	if err != nil {
		return "", err
	}
	cached := filepath.Join(o.CacheDir, "u-root", o.GOARCH+"-"+key+".cpio")
	if _, err := os.Stat(cached); err == nil {
		o.Log.Info("u-root archive from cache", "path", cached)
		return cached, nil
	}
	out := filepath.Join(tmp, "u-root.cpio")
	if err := o.runURoot(ctx, tool, out); err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(cached), 0o755); err != nil {
		return "", fmt.Errorf("create u-root cache: %w", err)
	}
	// Older archives of this arch are stale now; keep the cache small.
	old, _ := filepath.Glob(filepath.Join(o.CacheDir, "u-root", o.GOARCH+"-*.cpio"))
	for _, p := range old {
		os.Remove(p)
	}
	if err := os.Rename(out, cached); err != nil {
		return "", fmt.Errorf("cache u-root archive: %w", err)
	}
	return cached, nil
}

// uRootKey hashes everything the u-root build reads: the Go version, the
// u-root arguments, and the content of every non-standard-library source
// file of every package in the build, as go list reports them for the
// target.
func (o *Options) uRootKey(ctx context.Context) (string, error) {
	pkgs := append(URootCommands(), selftestPkg, o.Recovery)
	args := append([]string{"list", "-deps", "-f",
		"{{.ImportPath}}\t{{.Standard}}\t{{.Dir}}\t{{join .GoFiles \",\"}}\t{{join .EmbedFiles \",\"}}"}, pkgs...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = o.ModuleDir
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+o.GOARCH, "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	list, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go list the initramfs packages: %w\n%s", err, stderr.String())
	}
	ver, err := exec.CommandContext(ctx, "go", "version").Output()
	if err != nil {
		return "", fmt.Errorf("go version: %w", err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%q\n", ver, o.uRootArgs(""))
	h.Write(list)
	for _, line := range strings.Split(string(list), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 5 || f[1] == "true" {
			continue // the standard library is covered by the Go version
		}
		for _, name := range strings.Split(f[3]+","+f[4], ",") {
			if name == "" {
				continue
			}
			b, err := os.ReadFile(filepath.Join(f[2], name))
			if err != nil {
				return "", fmt.Errorf("hash initramfs sources: %w", err)
			}
			fmt.Fprintf(h, "%s/%s %d\n", f[0], name, len(b))
			h.Write(b)
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

func newCompressor(kind string, w io.Writer) (io.WriteCloser, error) {
	switch kind {
	case "zstd":
		// SpeedBestCompression uses an 8 MiB window, well within what the
		// kernel's unzstd accepts; the frames are plain zstd, no dictionary.
		zw, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedBestCompression))
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		return zw, nil
	case "gzip":
		zw, err := gzip.NewWriterLevel(w, gzip.BestCompression)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return zw, nil
	}
	return nil, fmt.Errorf("initramfs compression %q: want zstd or gzip", kind)
}

// Ext returns the file name extension for a compression kind.
func Ext(compression string) string {
	if compression == "gzip" {
		return ".cpio.gz"
	}
	return ".cpio.zst"
}

// lockDir takes an exclusive flock on dir/lock, waiting for other builds.
func lockDir(dir string) (func(), error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create cache dir: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock cache: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock cache %s: %w", dir, err)
	}
	return func() { f.Close() }, nil
}

type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}
