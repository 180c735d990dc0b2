package imagebuild

import (
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/pibackup/pibackup/internal/boardcfg"
)

// BootSet is what a boot loader takes from the boot partition: the files
// named by config.txt, extracted to the host, and the command line.
type BootSet struct {
	Kernel, Initramfs string // host paths
	DTB               string // host path, "" if none was asked for
	Cmdline           string // cmdline.txt, first line
}

// ExtractBoot reads config.txt from img's boot partition the way the Pi
// firmware does, and copies the kernel, the initramfs and (if dtb is not
// empty) the DTB named dtb into dir. Tests boot exactly what is on the card.
func ExtractBoot(img, dir, dtb string) (*BootSet, error) {
	d, err := openBoot(img)
	if err != nil {
		return nil, fmt.Errorf("open image: %w", err)
	}
	defer d.Close()
	fs, err := d.GetFilesystem(1)
	if err != nil {
		return nil, fmt.Errorf("open boot partition: %w", err)
	}
	read := func(name string) ([]byte, error) {
		f, err := fs.Open(name)
		if err != nil {
			return nil, fmt.Errorf("boot partition: %w", err)
		}
		defer f.Close()
		return io.ReadAll(f)
	}
	conf, err := read(ConfigTxtName)
	if err != nil {
		return nil, err
	}
	entry, err := ParseConfigTxt(strings.NewReader(string(conf)))
	if err != nil {
		return nil, err
	}
	cmdline, err := read(CmdlineTxtName)
	if err != nil {
		return nil, err
	}
	bs := &BootSet{Cmdline: strings.TrimSpace(strings.SplitN(string(cmdline), "\n", 2)[0])}
	copyOut := func(name string) (string, error) {
		b, err := read(name)
		if err != nil {
			return "", err
		}
		p := filepath.Join(dir, path.Base(name))
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return "", fmt.Errorf("extract %s: %w", name, err)
		}
		return p, nil
	}
	if bs.Kernel, err = copyOut(entry.Kernel); err != nil {
		return nil, err
	}
	if entry.Initramfs != "" {
		if bs.Initramfs, err = copyOut(entry.Initramfs); err != nil {
			return nil, err
		}
	}
	if dtb != "" {
		if bs.DTB, err = copyOut(dtb); err != nil {
			return nil, err
		}
	}
	return bs, nil
}

// QEMUArgs returns the QEMU command line (binary first) that boots bs on
// board b's [qemu] machine. appendArgs are added to the kernel command line.
//
// Without the Pi firmware nobody resolves console=serial0, so that argument
// is replaced by b.QEMU.Console. panic=-1 turns a kernel panic into a QEMU
// exit and -no-reboot a reboot or power-off into one too, so a broken boot
// ends instead of hanging until the test's deadline.
func QEMUArgs(b *boardcfg.Board, bs *BootSet, appendArgs ...string) ([]string, error) {
	q := b.QEMU
	if q == nil {
		return nil, fmt.Errorf("board %s has no [qemu] section", b.Name)
	}
	var cmdline []string
	for _, a := range strings.Fields(bs.Cmdline) {
		if strings.HasPrefix(a, "console=serial") && q.Console != "" {
			a = "console=" + q.Console
		}
		cmdline = append(cmdline, a)
	}
	cmdline = append(cmdline, "panic=-1")
	cmdline = append(cmdline, appendArgs...)

	args := []string{q.Binary}
	if q.Machine != "" {
		args = append(args, "-M", q.Machine)
	}
	if q.CPU != "" {
		args = append(args, "-cpu", q.CPU)
	}
	if q.Memory != "" {
		args = append(args, "-m", q.Memory)
	}
	// -nographic: serial on stdio, no display (CI has none).
	args = append(args, "-nographic", "-no-reboot", "-kernel", bs.Kernel)
	if bs.Initramfs != "" {
		args = append(args, "-initrd", bs.Initramfs)
	}
	if bs.DTB != "" {
		args = append(args, "-dtb", bs.DTB)
	}
	args = append(args, q.Args...)
	return append(args, "-append", strings.Join(cmdline, " ")), nil
}
