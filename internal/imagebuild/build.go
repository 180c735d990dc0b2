package imagebuild

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pibackup/pibackup/initramfs"
	"github.com/pibackup/pibackup/internal/boardcfg"
)

// Spec says what Build makes.
type Spec struct {
	// ModuleDir is the root of our Go module (go.mod decides the versions
	// of the kernel, firmware and u-root modules).
	ModuleDir string
	// BoardDir holds the board files; Board names one of them.
	BoardDir, Board string
	// Out is the image file to write (".img").
	Out string
	// Recovery is the Go package of the recovery program ("./recovery").
	Recovery string
	// Initramfs, if set, is a prebuilt compressed initramfs to use instead
	// of building one.
	Initramfs string
	// InitramfsCompression is "zstd" (default) or "gzip".
	InitramfsCompression string
	// CacheDir holds downloads and the u-root tool; "" means the user cache dir.
	CacheDir string
	// RefreshDebs downloads the Debian packages again.
	RefreshDebs bool
	// BootSize (0: as small as fits) and DataSize (0: no data partition), bytes.
	BootSize, DataSize int64
	// Compress is "", "zst" or "xz": also write a compressed copy.
	Compress string
	// Check runs fsck.vfat -n and e2fsck -fn on the result when installed.
	Check bool
	// Version is the release the recovery reports ("" keeps "dev").
	Version string
	Log     *slog.Logger
}

// Report describes what Build made.
type Report struct {
	Board     string
	Image     string
	Layout    Layout
	Files     int
	FileBytes int64
	// InitramfsFile is the initramfs kept next to the image (for QEMU -initrd).
	InitramfsFile string
	Initramfs     *initramfs.Result // nil when prebuilt
	Compressed    string
	SHA256        string
	Checks        []string // external checks that ran
	Duration      time.Duration
}

// Build makes the recovery image for spec.Board.
func Build(ctx context.Context, spec Spec) (*Report, error) {
	start := time.Now()
	log := spec.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if !strings.HasSuffix(spec.Out, ".img") {
		return nil, fmt.Errorf("output %q: want a file name ending in .img", spec.Out)
	}
	if strings.HasPrefix(filepath.Clean(spec.Out), "/dev/") {
		return nil, fmt.Errorf("output %s: buildimage writes image files; write the image to a card with a flasher", spec.Out)
	}
	b, err := boardcfg.Load(spec.BoardDir, spec.Board)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(spec.Out), 0o755); err != nil {
		return nil, fmt.Errorf("create output dir: %w", err)
	}
	rep := &Report{Board: b.Name, Image: spec.Out}

	in := Inputs{Board: b}
	if in.KernelDir, err = ModuleDir(ctx, spec.ModuleDir, b.Kernel.Module); err != nil {
		return nil, err
	}
	if b.Firmware != nil {
		if in.FirmwareDir, err = ModuleDir(ctx, spec.ModuleDir, b.Firmware.Module); err != nil {
			return nil, err
		}
	}

	comp := spec.InitramfsCompression
	if comp == "" {
		comp = "zstd"
	}
	in.InitramfsName = "initramfs" + initramfs.Ext(comp)
	in.Initramfs = spec.Initramfs
	if in.Initramfs == "" {
		rep.InitramfsFile = strings.TrimSuffix(spec.Out, ".img") + "." + in.InitramfsName
		if rep.Initramfs, err = buildInitramfs(ctx, spec, b.Arch, comp, rep.InitramfsFile, log); err != nil {
			return nil, err
		}
		in.Initramfs = rep.InitramfsFile
	}

	files, err := BootFiles(in)
	if err != nil {
		return nil, err
	}
	rep.Files = len(files)
	for _, f := range files {
		n, err := f.Size()
		if err != nil {
			return nil, err
		}
		rep.FileBytes += n
	}
	if rep.Layout, err = PlanLayout(files, spec.BootSize, spec.DataSize); err != nil {
		return nil, err
	}
	log.Info("writing image", "out", spec.Out, "files", len(files), "boot_mib", rep.Layout.BootSize/mib, "data_mib", rep.Layout.DataSize/mib)
	t0 := time.Now()
	if err := Write(ctx, spec.Out, files, rep.Layout, log); err != nil {
		return nil, err
	}
	t1 := time.Now()
	if err := Verify(spec.Out, files, rep.Layout); err != nil {
		return nil, err
	}
	log.Info("image written and read back", "write", t1.Sub(t0).Round(time.Millisecond), "verify", time.Since(t1).Round(time.Millisecond))
	if spec.Check {
		for _, c := range []struct {
			name string
			fn   func(context.Context, string, Layout) (string, error)
		}{{"fsck.vfat -n", CheckFAT}, {"e2fsck -fn", CheckExt4}} {
			_, err := c.fn(ctx, spec.Out, rep.Layout)
			switch {
			case errors.Is(err, ErrNoTool):
				log.Warn("check skipped", "check", c.name, "err", err)
			case err != nil:
				return nil, err
			default:
				rep.Checks = append(rep.Checks, c.name)
			}
		}
	}
	if rep.SHA256, err = WriteSHA256(spec.Out); err != nil {
		return nil, err
	}
	if spec.Compress != "" {
		if rep.Compressed, err = Compress(spec.Out, spec.Compress); err != nil {
			return nil, err
		}
		if _, err := WriteSHA256(rep.Compressed); err != nil {
			return nil, err
		}
	}
	rep.Duration = time.Since(start)
	return rep, nil
}

func buildInitramfs(ctx context.Context, spec Spec, arch, comp, dst string, log *slog.Logger) (*initramfs.Result, error) {
	tmp := dst + ".partial"
	f, err := os.Create(tmp)
	if err != nil {
		return nil, fmt.Errorf("create initramfs: %w", err)
	}
	defer os.Remove(tmp)
	defer f.Close()
	res, err := initramfs.Build(ctx, initramfs.Options{
		GOARCH:      arch,
		ModuleDir:   spec.ModuleDir,
		Recovery:    spec.Recovery,
		CacheDir:    spec.CacheDir,
		Compression: comp,
		RefreshDebs: spec.RefreshDebs,
		Version:     spec.Version,
		Log:         log,
	}, f)
	if err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("write initramfs: %w", err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return nil, fmt.Errorf("write initramfs: %w", err)
	}
	return res, nil
}
