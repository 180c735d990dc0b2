package imagebuild

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	diskfs "github.com/diskfs/go-diskfs"

	"github.com/pibackup/pibackup/internal/boardcfg"
	"github.com/pibackup/pibackup/internal/disklayout"
	"github.com/pibackup/pibackup/internal/testfs"
)

const boardDir = "../../board-configs"

// fakeModules creates kernel and firmware module directories with small
// stand-ins for the files the pi3 board names.
func fakeModules(t *testing.T) (kernelDir, firmwareDir, initrd string) {
	t.Helper()
	root := t.TempDir()
	kernelDir = filepath.Join(root, "kernel")
	firmwareDir = filepath.Join(root, "firmware")
	files := map[string]string{
		"kernel/vmlinuz":                                      strings.Repeat("K", 300_000),
		"kernel/bcm2710-rpi-3-b.dtb":                          "dtb 3b",
		"kernel/bcm2710-rpi-3-b-plus.dtb":                     "dtb 3b+",
		"kernel/bcm2837-rpi-3-a-plus.dtb":                     "dtb 3a+",
		"kernel/bcm2711-rpi-4-b.dtb":                          "dtb 4b",
		"kernel/overlays/disable-bt.dtbo":                     "overlay 1",
		"kernel/overlays/a-long-Mixed-Case-overlay-name.dtbo": "overlay 2",
		"kernel/LICENSE.linux":                                "GPL-2",
		"kernel/_build/upstream-url.txt":                      "https://example.org/linux.tar.gz",
		"firmware/LICENSE.broadcom":                           "broadcom",
		"firmware/bootcode.bin":                               "bootcode",
		"firmware/start.elf":                                  strings.Repeat("S", 70_000),
		"firmware/fixup.dat":                                  "fixup",
		"firmware/start4.elf":                                 "start4",
		"initramfs.cpio.zst":                                  strings.Repeat("I", 123_457),
	}
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return kernelDir, firmwareDir, filepath.Join(root, "initramfs.cpio.zst")
}

func pi3Inputs(t *testing.T) Inputs {
	t.Helper()
	b, err := boardcfg.Load(boardDir, "pi3")
	if err != nil {
		t.Fatal(err)
	}
	k, fw, initrd := fakeModules(t)
	return Inputs{Board: b, KernelDir: k, FirmwareDir: fw, Initramfs: initrd, InitramfsName: "initramfs.cpio.zst"}
}

func names(files []File) []string {
	var n []string
	for _, f := range files {
		n = append(n, f.Name)
	}
	return n
}

func TestBootFilesPi3(t *testing.T) {
	files, err := BootFiles(pi3Inputs(t))
	if err != nil {
		t.Fatal(err)
	}
	got := names(files)
	want := []string{
		"bcm2710-rpi-3-b-plus.dtb", "bcm2710-rpi-3-b.dtb", "bcm2837-rpi-3-a-plus.dtb",
		"bootcode.bin", "cmdline.txt", "config.txt", "fixup.dat", "initramfs.cpio.zst",
		"licenses/LICENSE.broadcom", "licenses/LICENSE.linux", "licenses/linux-upstream-url.txt",
		"overlays/a-long-Mixed-Case-overlay-name.dtbo", "overlays/disable-bt.dtbo",
		"recovery.conf", "start.elf", "vmlinuz",
	}
	if !slices.Equal(got, want) {
		t.Errorf("BootFiles() = %q, want %q", got, want)
	}
	i := slices.Index(got, "config.txt")
	conf := string(files[i].Data)
	for _, l := range []string{"kernel=vmlinuz\n", "initramfs initramfs.cpio.zst followkernel\n", "arm_64bit=1\n", "enable_uart=1\n"} {
		if !strings.Contains(conf, l) {
			t.Errorf("config.txt = %q, want line %q", conf, l)
		}
	}
	cmd := string(files[slices.Index(got, "cmdline.txt")].Data)
	if !strings.HasPrefix(cmd, "console=serial0,115200 console=tty1") || strings.Count(cmd, "\n") != 1 {
		t.Errorf("cmdline.txt = %q, want one line starting with the serial and HDMI consoles", cmd)
	}
}

func TestBootFilesMissing(t *testing.T) {
	in := pi3Inputs(t)
	if err := os.Remove(filepath.Join(in.KernelDir, "bcm2710-rpi-3-b.dtb")); err != nil {
		t.Fatal(err)
	}
	_, err := BootFiles(in)
	if err == nil || !strings.Contains(err.Error(), "bcm2710-rpi-3-b.dtb") {
		t.Fatalf("BootFiles() without a DTB = %v, want an error naming it", err)
	}
	in = pi3Inputs(t)
	in.InitramfsName = "boot/initrd"
	if _, err := BootFiles(in); err == nil {
		t.Fatal("BootFiles() with a path as initramfs name = nil error")
	}
}

func TestRecoveryConfDefaults(t *testing.T) {
	conf := string(DefaultRecoveryConf())
	for _, k := range []string{"source", "host", "set", "target", "yes", "after", "password", "identity", "known_host"} {
		if !strings.Contains(conf, "\n#"+k+"=") {
			t.Errorf("recovery.conf has no commented default for %s=", k)
		}
	}
	for _, l := range strings.Split(conf, "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			t.Errorf("recovery.conf has an active line %q; the shipped file must not restore anything by itself", l)
		}
	}
}

func TestParseConfigTxt(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want BootEntry
		err  bool
	}{
		{in: "kernel=vmlinuz\ninitramfs initramfs.cpio.zst followkernel\n", want: BootEntry{"vmlinuz", "initramfs.cpio.zst"}},
		{in: "# kernel=old\narm_64bit=1\nkernel=a\nkernel = b\nkernel=c\n", want: BootEntry{Kernel: "c"}},
		{in: "initramfs x\n", err: true},
	} {
		got, err := ParseConfigTxt(strings.NewReader(tt.in))
		if (err != nil) != tt.err || (!tt.err && got != tt.want) {
			t.Errorf("ParseConfigTxt(%q) = %+v, %v; want %+v, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestPlanLayout(t *testing.T) {
	small := []File{{Name: "a", Data: make([]byte, 1000)}}
	big := []File{{Name: "a", Data: make([]byte, 60*mib)}}
	for _, tt := range []struct {
		name           string
		files          []File
		boot, data     int64
		wantBoot, size int64
		err            string
	}{
		{name: "minimum FAT32", files: small, wantBoot: minFAT32, size: BootStart + minFAT32},
		{name: "fits content", files: big, wantBoot: 64 * mib, size: 65 * mib},
		{name: "with data", files: small, data: 100 * mib, wantBoot: minFAT32, size: BootStart + minFAT32 + 100*mib},
		{name: "explicit boot", files: small, boot: 128 * mib, wantBoot: 128 * mib, size: 129 * mib},
		{name: "boot too small", files: big, boot: 40 * mib, err: "too small"},
		{name: "below FAT32", files: small, boot: 16 * mib, err: "at least"},
		{name: "data not MiB", files: small, data: mib + 1, err: "whole MiB"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l, err := PlanLayout(tt.files, tt.boot, tt.data)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("PlanLayout() = %+v, %v; want error %q", l, err, tt.err)
				}
				return
			}
			if err != nil || l.BootSize != tt.wantBoot || l.Size() != tt.size {
				t.Fatalf("PlanLayout() = %+v (size %d), %v; want boot %d, size %d", l, l.Size(), err, tt.wantBoot, tt.size)
			}
		})
	}
}

// TestWriteVerify writes a pi3 image with a data partition and checks it
// with go-diskfs (Verify) and with the real fsck.vfat and e2fsck.
func TestWriteVerify(t *testing.T) {
	files, err := BootFiles(pi3Inputs(t))
	if err != nil {
		t.Fatal(err)
	}
	l, err := PlanLayout(files, 0, 16*mib)
	if err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(t.TempDir(), "pi3.img")
	ctx := context.Background()
	if err := Write(ctx, img, files, l, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(img + ".partial"); !os.IsNotExist(err) {
		t.Errorf("temporary image left behind: %v", err)
	}
	if err := Verify(img, files, l); err != nil {
		t.Fatal(err)
	}
	// A second build replaces the image.
	if err := Write(ctx, img, files, l, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("Write() over an existing image = %v", err)
	}
	// Verify notices a file that is not on the partition.
	extra := append(slices.Clone(files), File{Name: "missing.txt", Data: []byte("x")})
	if err := Verify(img, extra, l); err == nil || !strings.Contains(err.Error(), "missing.txt") {
		t.Errorf("Verify() with an extra file = %v, want it named", err)
	}

	t.Run("fsck.vfat", func(t *testing.T) {
		testfs.Require(t, "vfat")
		if out, err := CheckFAT(ctx, img, l); err != nil {
			t.Fatal(err)
		} else {
			t.Log(out)
		}
	})
	t.Run("e2fsck", func(t *testing.T) {
		testfs.Require(t, "ext4")
		if _, err := CheckExt4(ctx, img, l); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("sfdisk", "-d", img).CombinedOutput()
		if err == nil && !strings.Contains(string(out), "type=c, bootable") {
			t.Errorf("sfdisk -d = %s, want a bootable type c first partition", out)
		}
	})
	t.Run("mtools", func(t *testing.T) {
		testfs.Require(t, "mtools")
		at := img + "@@" + "1048576"
		out, err := exec.Command("mtype", "-i", at, "::config.txt").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "kernel=vmlinuz") {
			t.Fatalf("mtype config.txt = %s, %v", out, err)
		}
		out, err = exec.Command("mdir", "-b", "-i", at, "::overlays").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "a-long-Mixed-Case-overlay-name.dtbo") {
			t.Fatalf("mdir overlays = %s, %v", out, err)
		}
	})
}

// TestGoDiskfsDotDot: the boot partition as writeBoot leaves it fails
// fsck.vfat (go-diskfs v1.9.4 writes the ".." of a root subdirectory with
// the root cluster) and passes after disklayout.FixGoDiskfsFAT.
func TestGoDiskfsDotDot(t *testing.T) {
	testfs.Require(t, "vfat")
	files := []File{{Name: "overlays/x.dtbo", Data: []byte("x")}, {Name: "config.txt", Data: []byte("y")}}
	l, err := PlanLayout(files, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(t.TempDir(), "raw.img")
	d, err := diskfs.Create(img, l.Size(), diskfs.SectorSize512)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeBoot(d, files, l); err != nil {
		t.Fatal(err)
	}
	d.Close()
	if _, err := CheckFAT(context.Background(), img, l); err == nil {
		t.Log("go-diskfs now writes a valid '..' entry; see disklayout.FixGoDiskfsFAT")
	} else if !strings.Contains(err.Error(), "..") {
		t.Fatalf("fsck.vfat before the fix: %v, want only the '..' complaint", err)
	}
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := disklayout.FixGoDiskfsFAT(f, f, l.BootStart); err != nil {
		t.Fatal(err)
	}
	if out, err := CheckFAT(context.Background(), img, l); err != nil {
		t.Fatalf("fsck.vfat after the fix: %v\n%s", err, out)
	}
}

func TestQEMUArgs(t *testing.T) {
	b, err := boardcfg.Load(boardDir, "pi3")
	if err != nil {
		t.Fatal(err)
	}
	bs := &BootSet{Kernel: "/k", Initramfs: "/i", DTB: "/d.dtb", Cmdline: "console=serial0,115200 console=tty1 rootwait"}
	got, err := QEMUArgs(b, bs, "recovery.yes=1")
	if err != nil {
		t.Fatal(err)
	}
	want := "qemu-system-aarch64 -M raspi3b -m 1G -nographic -no-reboot -kernel /k -initrd /i -dtb /d.dtb " +
		"-serial null -serial mon:stdio -append console=ttyS0,115200 console=tty1 rootwait panic=-1 recovery.yes=1"
	if strings.Join(got, " ") != want {
		t.Errorf("QEMUArgs() =\n%s\nwant\n%s", strings.Join(got, " "), want)
	}
	b.QEMU = nil
	if _, err := QEMUArgs(b, bs); err == nil {
		t.Error("QEMUArgs() for a board without [qemu] = nil error")
	}
}

func TestBootFilesGzipKernel(t *testing.T) {
	in := pi3Inputs(t)
	in.Board.Kernel.Compress = "gzip"
	files, err := BootFiles(in)
	if err != nil {
		t.Fatal(err)
	}
	k := files[slices.IndexFunc(files, func(f File) bool { return f.Name == "vmlinuz" })]
	if k.Src != "" || len(k.Data) < 2 || k.Data[0] != 0x1f || k.Data[1] != 0x8b {
		t.Fatalf("kernel file = %+v, want gzip data", k.Name)
	}
	zr, err := gzip.NewReader(bytes.NewReader(k.Data))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(zr)
	want, _ := os.ReadFile(filepath.Join(in.KernelDir, "vmlinuz"))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("gunzip(kernel) = %d bytes, %v; want the %d-byte original", len(got), err, len(want))
	}
}

func TestCompressAndSHA256(t *testing.T) {
	img := filepath.Join(t.TempDir(), "x.img")
	data := bytes.Repeat([]byte("pibackup "), 10000)
	if err := os.WriteFile(img, data, 0o644); err != nil {
		t.Fatal(err)
	}
	sum, err := WriteSHA256(img)
	if err != nil {
		t.Fatal(err)
	}
	line, _ := os.ReadFile(img + ".sha256")
	if string(line) != sum+"  x.img\n" || len(sum) != 64 {
		t.Errorf("x.img.sha256 = %q, want %q in sha256sum format", line, sum)
	}
	if _, err := exec.LookPath("sha256sum"); err == nil {
		cmd := exec.Command("sha256sum", "-c", "x.img.sha256")
		cmd.Dir = filepath.Dir(img)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("sha256sum -c: %v\n%s", err, out)
		}
	}
	for _, kind := range []string{"zst", "xz"} {
		p, err := Compress(img, kind)
		if err != nil {
			t.Fatalf("Compress(%s) = %v", kind, err)
		}
		if fi, err := os.Stat(p); err != nil || fi.Size() >= int64(len(data)) || !strings.HasSuffix(p, "."+kind) {
			t.Errorf("Compress(%s) = %s (%v), want a smaller .%s file", kind, p, err, kind)
		}
	}
	if _, err := Compress(img, "bz2"); err == nil {
		t.Error("Compress(bz2) = nil error")
	}
}
