package imagebuild

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/klauspost/compress/gzip"

	"github.com/pibackup/pibackup/internal/boardcfg"
)

// File is one file on the boot partition.
type File struct {
	// Name is the path on the FAT, slash-separated, without a leading slash
	// ("config.txt", "overlays/disable-bt.dtbo").
	Name string
	// Src is a host file to copy; Data is used when Src is empty.
	Src  string
	Data []byte
}

// Size returns the size of the file's content.
func (f File) Size() (int64, error) {
	if f.Src == "" {
		return int64(len(f.Data)), nil
	}
	fi, err := os.Stat(f.Src)
	if err != nil {
		return 0, fmt.Errorf("stat %s: %w", f.Name, err)
	}
	return fi.Size(), nil
}

// Open returns the file's content.
func (f File) Open() (io.ReadCloser, error) {
	if f.Src == "" {
		return io.NopCloser(bytes.NewReader(f.Data)), nil
	}
	r, err := os.Open(f.Src)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", f.Name, err)
	}
	return r, nil
}

// Inputs are the host-side things a boot partition is made from.
type Inputs struct {
	Board *boardcfg.Board
	// KernelDir and FirmwareDir are the module directories of
	// Board.Kernel.Module and Board.Firmware.Module (FirmwareDir is unused
	// when the board has no [firmware]).
	KernelDir, FirmwareDir string
	// Initramfs is the compressed initramfs on the host; it is written to
	// the FAT under InitramfsName.
	Initramfs     string
	InitramfsName string
	// RecoveryConf is the content of recovery.conf; nil means DefaultRecoveryConf.
	RecoveryConf []byte
}

// Names of the generated files. The Pi firmware looks for config.txt and
// cmdline.txt in the FAT root (raspberrypi docs, "Boot folder contents").
const (
	ConfigTxtName    = "config.txt"
	CmdlineTxtName   = "cmdline.txt"
	RecoveryConfName = "recovery.conf"
)

// BootFiles lists every file of the boot partition, sorted by name. It fails
// when a file the board config names is missing or a glob matches nothing:
// a missing DTB would only show up as a board that does not boot.
func BootFiles(in Inputs) ([]File, error) {
	b := in.Board
	if in.InitramfsName == "" || strings.Contains(in.InitramfsName, "/") {
		return nil, fmt.Errorf("initramfs name %q: want a file name", in.InitramfsName)
	}
	var files []File
	add := func(name, src string) { files = append(files, File{Name: name, Src: src}) }

	kernel := filepath.Join(in.KernelDir, filepath.FromSlash(b.Kernel.File))
	if _, err := os.Stat(kernel); err != nil {
		return nil, fmt.Errorf("kernel %s in %s: %w", b.Kernel.File, b.Kernel.Module, err)
	}
	if b.Kernel.Compress == "gzip" {
		data, err := gzipFile(kernel)
		if err != nil {
			return nil, err
		}
		files = append(files, File{Name: path.Base(b.Kernel.File), Data: data})
	} else {
		add(path.Base(b.Kernel.File), kernel)
	}

	for _, pat := range b.Kernel.DTBs {
		m, err := glob(in.KernelDir, pat)
		if err != nil {
			return nil, fmt.Errorf("kernel.dtbs in %s: %w", b.Kernel.Module, err)
		}
		for _, rel := range m {
			// The firmware loads DTBs from the FAT root by name.
			add(path.Base(rel), filepath.Join(in.KernelDir, filepath.FromSlash(rel)))
		}
	}
	if b.Kernel.Overlays != "" {
		m, err := glob(in.KernelDir, b.Kernel.Overlays)
		if err != nil {
			return nil, fmt.Errorf("kernel.overlays in %s: %w", b.Kernel.Module, err)
		}
		for _, rel := range m {
			// Overlays keep their directory: the firmware reads overlays/NAME.dtbo.
			add(path.Join("overlays", path.Base(rel)), filepath.Join(in.KernelDir, filepath.FromSlash(rel)))
		}
	}
	if fw := b.Firmware; fw != nil {
		for _, pat := range fw.Files {
			m, err := glob(in.FirmwareDir, pat)
			if err != nil {
				return nil, fmt.Errorf("firmware.files in %s: %w", fw.Module, err)
			}
			for _, rel := range m {
				add(path.Base(rel), filepath.Join(in.FirmwareDir, filepath.FromSlash(rel)))
			}
		}
	}
	// Licences and the kernel's source identification travel with the
	// binaries we redistribute (GPL-2 for Linux, Broadcom's terms for the
	// firmware). They are optional: a module without them still builds.
	licences := []struct{ dir, pat, prefix string }{
		{in.KernelDir, "LICENSE.linux", "licenses/"},
		{in.KernelDir, "_build/*", "licenses/linux-"},
	}
	if b.Firmware != nil {
		licences = append(licences, struct{ dir, pat, prefix string }{in.FirmwareDir, "LICENSE.broadcom", "licenses/"})
	}
	for _, l := range licences {
		m, err := glob(l.dir, l.pat)
		if err != nil {
			continue
		}
		for _, rel := range m {
			add(l.prefix+path.Base(rel), filepath.Join(l.dir, filepath.FromSlash(rel)))
		}
	}
	if _, err := os.Stat(in.Initramfs); err != nil {
		return nil, fmt.Errorf("initramfs: %w", err)
	}
	add(in.InitramfsName, in.Initramfs)

	conf := in.RecoveryConf
	if conf == nil {
		conf = DefaultRecoveryConf()
	}
	files = append(files,
		File{Name: ConfigTxtName, Data: []byte(ConfigTxt(b, path.Base(b.Kernel.File), in.InitramfsName))},
		File{Name: CmdlineTxtName, Data: []byte(b.Boot.Cmdline + "\n")},
		File{Name: RecoveryConfName, Data: conf},
	)

	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	for i := 1; i < len(files); i++ {
		// FAT names are case-insensitive.
		if strings.EqualFold(files[i-1].Name, files[i].Name) {
			return nil, fmt.Errorf("two files named %s on the boot partition (check the board's globs)", files[i].Name)
		}
	}
	return files, nil
}

// gzipFile returns the gzip-compressed content of p.
func gzipFile(p string) ([]byte, error) {
	in, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("compress kernel: %w", err)
	}
	defer in.Close()
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, fmt.Errorf("compress kernel: %w", err)
	}
	if _, err := io.Copy(zw, in); err != nil {
		return nil, fmt.Errorf("compress kernel: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("compress kernel: %w", err)
	}
	return buf.Bytes(), nil
}

// glob matches pat (slash-separated, relative) in dir and returns the
// matches relative to dir. No match is an error.
func glob(dir, pat string) ([]string, error) {
	m, err := filepath.Glob(filepath.Join(dir, filepath.FromSlash(pat)))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pat, err)
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("%s: no such file in %s", pat, dir)
	}
	rels := make([]string, 0, len(m))
	for _, p := range m {
		r, err := filepath.Rel(dir, p)
		if err != nil {
			return nil, fmt.Errorf("BUG: glob result %s outside %s: %w", p, dir, err)
		}
		rels = append(rels, filepath.ToSlash(r))
	}
	sort.Strings(rels)
	return rels, nil
}

// ConfigTxt returns the config.txt for b. kernel= and initramfs come first
// and from the actual file names, so they cannot disagree with the FAT.
func ConfigTxt(b *boardcfg.Board, kernelName, initramfsName string) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "# pibackup recovery card for %s (board-configs/%s.toml)\n", b.Description, b.Name)
	fmt.Fprintf(&sb, "kernel=%s\n", kernelName)
	// followkernel: load the initramfs right after the kernel in memory
	// (raspberrypi docs config.txt, "initramfs").
	fmt.Fprintf(&sb, "initramfs %s followkernel\n", initramfsName)
	for _, l := range b.Boot.ConfigTxt {
		sb.WriteString(l + "\n")
	}
	return sb.String()
}

// BootEntry is what the Pi firmware reads from config.txt to boot: the
// kernel and initramfs file names. QEMU tests use it to take the same files
// out of an image.
type BootEntry struct {
	Kernel, Initramfs string
}

// ParseConfigTxt reads kernel= and the initramfs line like the firmware does
// (the last assignment wins; conditional sections are ignored, which is fine
// for the files we write).
func ParseConfigTxt(r io.Reader) (BootEntry, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return BootEntry{}, fmt.Errorf("read config.txt: %w", err)
	}
	var e BootEntry
	for _, l := range strings.Split(string(data), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if v, ok := strings.CutPrefix(l, "kernel="); ok {
			e.Kernel = strings.TrimSpace(v)
		}
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "initramfs" {
			e.Initramfs = f[1]
		}
	}
	if e.Kernel == "" {
		return e, errors.New("config.txt has no kernel= line")
	}
	return e, nil
}

// ModuleDir returns the directory of Go module mod as required by the go.mod
// in moduleRoot, downloading it when it is not in the module cache yet.
func ModuleDir(ctx context.Context, moduleRoot, mod string) (string, error) {
	dir, err := goOut(ctx, moduleRoot, "list", "-m", "-f", "{{.Dir}}", mod)
	if err != nil {
		return "", fmt.Errorf("find module %s (is it in go.mod?): %w", mod, err)
	}
	if dir != "" {
		return dir, nil
	}
	if _, err := goOut(ctx, moduleRoot, "mod", "download", mod); err != nil {
		return "", fmt.Errorf("download module %s: %w", mod, err)
	}
	dir, err = goOut(ctx, moduleRoot, "list", "-m", "-f", "{{.Dir}}", mod)
	if err != nil || dir == "" {
		return "", fmt.Errorf("module %s has no directory after download: %w", mod, err)
	}
	return dir, nil
}

func goOut(ctx context.Context, dir string, args ...string) (string, error) {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}
