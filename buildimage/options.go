package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/pibackup/pibackup/internal/imagebuild"
	"github.com/pibackup/pibackup/internal/size"
)

type options struct {
	board, out, boardDir, moduleDir   string
	recovery, initramfs, initramfsZip string
	version                           string
	cacheDir, compress                string
	bootSize, dataSize                string
	refreshDebs, noCheck, verbose     bool
}

func (o *options) addFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.board, "board", "", "board name, a file in -board-dir without .toml (e.g. pi3, rpi-arm64, qemu-virt-arm64)")
	fs.StringVar(&o.out, "o", "", "image file to write (e.g. out/recovery-pi3.img); the .sha256 and the initramfs go next to it")
	fs.StringVar(&o.boardDir, "board-dir", "", "directory of board files (default: board-configs in the module root)")
	fs.StringVar(&o.moduleDir, "module-dir", "", "root of the pibackup Go module (default: from go env GOMOD)")
	fs.StringVar(&o.recovery, "recovery", "./recovery", "Go package of the recovery program, started by u-root's init")
	fs.StringVar(&o.version, "version", "", "release version the recovery shows (written to /etc/pibackup-version in the initramfs)")
	fs.StringVar(&o.initramfs, "initramfs", "", "use this prebuilt compressed initramfs instead of building one")
	fs.StringVar(&o.initramfsZip, "initramfs-compression", "zstd", "initramfs compression: zstd or gzip")
	fs.StringVar(&o.cacheDir, "cache", "", "cache for Debian packages and the u-root tool (default: $XDG_CACHE_HOME/pibackup or ~/.cache/pibackup)")
	fs.StringVar(&o.compress, "compress", "", "also write a compressed image: zst or xz")
	fs.StringVar(&o.bootSize, "boot-size", "", "boot partition size, e.g. 128M (default: as small as the files allow)")
	fs.StringVar(&o.dataSize, "data-size", "", "add an ext4 partition labelled PIBACKUPS of this size, e.g. 2G")
	fs.BoolVar(&o.refreshDebs, "refresh-debs", false, "download the Debian packages again even if cached")
	fs.BoolVar(&o.noCheck, "no-check", false, "skip fsck.vfat -n / e2fsck -fn on the result")
	fs.BoolVar(&o.verbose, "v", false, "log more")
}

func (o *options) spec(ctx context.Context, stderr io.Writer) (imagebuild.Spec, error) {
	if o.board == "" || o.out == "" {
		return imagebuild.Spec{}, errors.New("-board and -o are required, e.g. -board pi3 -o out/recovery-pi3.img")
	}
	level := slog.LevelInfo
	if o.verbose {
		level = slog.LevelDebug
	}
	s := imagebuild.Spec{
		Board:                o.board,
		Out:                  o.out,
		Recovery:             o.recovery,
		Initramfs:            o.initramfs,
		InitramfsCompression: o.initramfsZip,
		CacheDir:             o.cacheDir,
		RefreshDebs:          o.refreshDebs,
		Version:              o.version,
		Compress:             o.compress,
		Check:                !o.noCheck,
		ModuleDir:            o.moduleDir,
		BoardDir:             o.boardDir,
		Log:                  slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})),
	}
	var err error
	if s.BootSize, err = size.Parse(o.bootSize); err != nil {
		return s, fmt.Errorf("-boot-size: %w", err)
	}
	if s.DataSize, err = size.Parse(o.dataSize); err != nil {
		return s, fmt.Errorf("-data-size: %w", err)
	}
	if s.ModuleDir == "" {
		out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
		gomod := strings.TrimSpace(string(out))
		if err != nil || gomod == "" || gomod == "/dev/null" {
			return s, errors.New("run buildimage inside the pibackup module, or pass -module-dir")
		}
		s.ModuleDir = filepath.Dir(gomod)
	}
	if s.BoardDir == "" {
		s.BoardDir = filepath.Join(s.ModuleDir, "board-configs")
	}
	return s, nil
}

func build(ctx context.Context, spec imagebuild.Spec, stdout io.Writer) error {
	rep, err := imagebuild.Build(ctx, spec)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %s (%.1f MiB; boot partition %d MiB with %d files, %.1f MiB",
		rep.Board, rep.Image, float64(rep.Layout.Size())/(1<<20), rep.Layout.BootSize>>20, rep.Files, float64(rep.FileBytes)/(1<<20))
	if rep.Layout.DataSize > 0 {
		fmt.Fprintf(stdout, "; data partition %d MiB", rep.Layout.DataSize>>20)
	}
	fmt.Fprintf(stdout, ")\nsha256 %s\n", rep.SHA256)
	if r := rep.Initramfs; r != nil {
		fmt.Fprintf(stdout, "initramfs %s: %.1f MiB compressed, %.1f MiB cpio (u-root %.1f MiB), built in %s\n",
			rep.InitramfsFile, float64(r.CompressedBytes)/(1<<20), float64(r.CpioBytes)/(1<<20),
			float64(r.URootCpioBytes)/(1<<20), r.Duration.Round(100*time.Millisecond))
		fmt.Fprintf(stdout, "Debian packages (%.1f MiB of .deb): %s\n", float64(r.Debian.DebBytes)/(1<<20), strings.Join(r.Debian.Packages, ", "))
	}
	if rep.Compressed != "" {
		fmt.Fprintf(stdout, "compressed: %s\n", rep.Compressed)
	}
	if len(rep.Checks) > 0 {
		fmt.Fprintf(stdout, "checks passed: %s\n", strings.Join(rep.Checks, ", "))
	}
	fmt.Fprintf(stdout, "took %s\n", rep.Duration.Round(100*time.Millisecond))
	return nil
}
