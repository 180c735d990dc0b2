// Package boardcfg parses and validates the per-board files in board-configs/.
//
// A board file is data only: which kernel and firmware Go modules to take
// files from, which DTBs and overlays to copy, the config.txt lines and the
// kernel command line. buildimage turns it into an SD card image; the QEMU
// tests use its optional [qemu] section to boot that image.
package boardcfg

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
)

// Ext is the file name extension of board files.
const Ext = ".toml"

// Board is one board file.
type Board struct {
	// Name must match the file name without Ext.
	Name        string `toml:"name"`
	Description string `toml:"description"`
	// Arch is the GOARCH of the initramfs: "arm64" or "amd64".
	Arch     string    `toml:"arch"`
	Kernel   Kernel    `toml:"kernel"`
	Firmware *Firmware `toml:"firmware"`
	Boot     Boot      `toml:"boot"`
	QEMU     *QEMU     `toml:"qemu"`
}

// Kernel names the kernel module and the files taken from it.
type Kernel struct {
	// Module is a Go module path (it must be required by go.mod).
	Module string `toml:"module"`
	// File is the kernel image inside the module; it keeps its name on the FAT.
	File string `toml:"file"`
	// DTBs are file names or globs relative to the module root, copied to the
	// FAT root. Each entry must match at least one file.
	DTBs []string `toml:"dtbs"`
	// Overlays is a glob relative to the module root (e.g. "overlays/*.dtbo"),
	// copied with its directory. Empty means none.
	Overlays string `toml:"overlays"`
	// Compress is "" (copy the kernel as is) or "gzip": gzip the arm64 Image
	// on the card (44 MiB -> 15 MiB for kernel.rpi). The Pi firmware
	// unpacks gzip kernels like Raspberry Pi OS's kernel8.img.
	Compress string `toml:"compress"`
}

// Firmware names the Raspberry Pi firmware module and files.
type Firmware struct {
	Module string `toml:"module"`
	// Files are names or globs relative to the module root, copied to the FAT root.
	Files []string `toml:"files"`
}

// Boot holds what goes into config.txt and cmdline.txt.
type Boot struct {
	// ConfigTxt are config.txt lines. kernel= and initramfs are written by
	// the image builder from the actual file names, so they are rejected here.
	ConfigTxt []string `toml:"config_txt"`
	// Cmdline is the kernel command line (cmdline.txt), one line.
	Cmdline string `toml:"cmdline"`
	// Console is the console device the recovery banner appears on,
	// e.g. "serial0" or "ttyAMA0".
	Console string `toml:"console"`
}

// QEMU says how the boot test emulates the board.
type QEMU struct {
	Binary  string `toml:"binary"`
	Machine string `toml:"machine"`
	CPU     string `toml:"cpu"`
	// Memory is passed to -m as is ("512", "1G").
	Memory string `toml:"memory"`
	// DTB is taken out of the image and passed with -dtb when set.
	DTB string `toml:"dtb"`
	// Console replaces the console=serial0... argument, because without
	// the Pi firmware nobody resolves the serial0 alias.
	Console string `toml:"console"`
	// Args are extra QEMU arguments.
	Args []string `toml:"args"`
}

var (
	nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
	// ErrInvalid is wrapped by every validation error.
	ErrInvalid = errors.New("invalid board config")
)

// Parse reads one board file. name is used in error messages only.
func Parse(r io.Reader, name string) (*Board, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	var b Board
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&b)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", name, err)
	}
	// Catch typos such as "dtb = [...]": an unknown key would silently drop data.
	if un := md.Undecoded(); len(un) > 0 {
		keys := make([]string, len(un))
		for i, k := range un {
			keys[i] = k.String()
		}
		return nil, fmt.Errorf("parse %s: unknown keys %s: %w", name, strings.Join(keys, ", "), ErrInvalid)
	}
	if err := b.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &b, nil
}

// Load reads board name from dir (dir/name.toml) and checks that the name
// inside the file matches the file name.
func Load(dir, name string) (*Board, error) {
	if !nameRE.MatchString(name) {
		return nil, fmt.Errorf("board name %q: %w", name, ErrInvalid)
	}
	p := filepath.Join(dir, name+Ext)
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		names, _ := List(dir)
		return nil, fmt.Errorf("unknown board %q (have: %s): %w", name, strings.Join(names, ", "), err)
	}
	if err != nil {
		return nil, fmt.Errorf("open board config: %w", err)
	}
	defer f.Close()
	b, err := Parse(f, p)
	if err != nil {
		return nil, err
	}
	if b.Name != name {
		return nil, fmt.Errorf("%s: name = %q, want %q (the file name): %w", p, b.Name, name, ErrInvalid)
	}
	return b, nil
}

// List returns the board names in dir, sorted.
func List(dir string) ([]string, error) {
	matches, err := filepath.Glob(filepath.Join(dir, "*"+Ext))
	if err != nil {
		return nil, fmt.Errorf("list boards: %w", err)
	}
	names := make([]string, 0, len(matches))
	for _, m := range matches {
		names = append(names, strings.TrimSuffix(filepath.Base(m), Ext))
	}
	sort.Strings(names)
	return names, nil
}

// Validate checks everything that can be checked without the modules.
func (b *Board) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format, args...))
	}
	if !nameRE.MatchString(b.Name) {
		bad("name %q: want lower case letters, digits, - and _", b.Name)
	}
	switch b.Arch {
	case "arm64", "amd64":
	default:
		bad("arch %q: want arm64 or amd64", b.Arch)
	}
	if b.Kernel.Module == "" {
		bad("kernel.module is empty")
	}
	if err := checkRelPath(b.Kernel.File); err != nil || hasGlob(b.Kernel.File) {
		bad("kernel.file %q: want a plain file name in the module", b.Kernel.File)
	}
	for _, d := range b.Kernel.DTBs {
		if err := checkRelPath(d); err != nil {
			bad("kernel.dtbs: %w", err)
		}
	}
	switch b.Kernel.Compress {
	case "", "gzip":
	default:
		bad("kernel.compress %q: want \"gzip\" or nothing", b.Kernel.Compress)
	}
	if b.Kernel.Overlays != "" {
		if err := checkRelPath(b.Kernel.Overlays); err != nil {
			bad("kernel.overlays: %w", err)
		} else if path.Dir(b.Kernel.Overlays) == "." {
			// The firmware only looks in overlays/ (config.txt dtoverlay docs).
			bad("kernel.overlays %q: want a directory such as overlays/*.dtbo", b.Kernel.Overlays)
		}
	}
	if fw := b.Firmware; fw != nil {
		if fw.Module == "" {
			bad("firmware.module is empty")
		}
		if len(fw.Files) == 0 {
			bad("firmware.files is empty")
		}
		for _, f := range fw.Files {
			if err := checkRelPath(f); err != nil {
				bad("firmware.files: %w", err)
			}
		}
	}
	for _, l := range b.Boot.ConfigTxt {
		key := strings.TrimSpace(strings.SplitN(l, "=", 2)[0])
		switch {
		case strings.ContainsAny(l, "\r\n"):
			bad("boot.config_txt line %q contains a newline", l)
		case key == "kernel" || strings.HasPrefix(key, "initramfs"):
			bad("boot.config_txt line %q: kernel= and initramfs are written by buildimage", l)
		}
	}
	switch {
	case strings.TrimSpace(b.Boot.Cmdline) == "":
		bad("boot.cmdline is empty")
	case strings.ContainsAny(b.Boot.Cmdline, "\r\n"):
		// The Pi firmware reads only the first line of cmdline.txt.
		bad("boot.cmdline must be one line")
	case !strings.Contains(b.Boot.Cmdline, "console="):
		bad("boot.cmdline has no console=")
	}
	if b.Boot.Console == "" {
		bad("boot.console is empty")
	}
	if q := b.QEMU; q != nil {
		if q.Binary == "" {
			bad("qemu.binary is empty")
		}
		if q.DTB != "" && !b.hasDTB(q.DTB) {
			bad("qemu.dtb %q is not one of kernel.dtbs", q.DTB)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalid, errors.Join(errs...))
	}
	return nil
}

// hasDTB reports whether name is matched by one of the DTB patterns.
func (b *Board) hasDTB(name string) bool {
	for _, p := range b.Kernel.DTBs {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

func hasGlob(p string) bool { return strings.ContainsAny(p, "*?[") }

// checkRelPath rejects paths that could escape the module directory or that
// the FAT cannot hold.
func checkRelPath(p string) error {
	switch {
	case p == "":
		return errors.New("empty path")
	case path.IsAbs(p) || strings.Contains(p, `\`):
		return fmt.Errorf("%q: want a relative slash-separated path", p)
	case path.Clean(p) != p || p == "." || strings.HasPrefix(p, "../"):
		return fmt.Errorf("%q: want a clean path inside the module", p)
	}
	if _, err := path.Match(p, ""); err != nil {
		return fmt.Errorf("%q: %w", p, err)
	}
	return nil
}
