package boardcfg

import (
	"errors"
	"strings"
	"testing"
)

const valid = `
name = "pi3"
arch = "arm64"
[kernel]
module = "github.com/gokrazy/kernel.rpi"
file = "vmlinuz"
dtbs = ["bcm2710-rpi-3-b.dtb"]
overlays = "overlays/*.dtbo"
[firmware]
module = "github.com/gokrazy/firmware"
files = ["bootcode.bin", "start*.elf"]
[boot]
config_txt = ["arm_64bit=1"]
cmdline = "console=serial0,115200 console=tty1"
console = "serial0"
[qemu]
binary = "qemu-system-aarch64"
dtb = "bcm2710-rpi-3-b.dtb"
`

func TestParse(t *testing.T) {
	for _, tt := range []struct {
		name    string
		edit    func(string) string
		wantErr string // substring; "" means valid
	}{
		{name: "valid", edit: func(s string) string { return s }},
		{name: "unknown key", edit: func(s string) string { return strings.Replace(s, "dtbs =", "dtb =", 1) }, wantErr: "unknown keys kernel.dtb"},
		{name: "bad arch", edit: func(s string) string { return strings.Replace(s, `"arm64"`, `"arm"`, 1) }, wantErr: "arch"},
		{name: "bad name", edit: func(s string) string { return strings.Replace(s, `"pi3"`, `"Pi 3"`, 1) }, wantErr: "name"},
		{name: "no kernel module", edit: func(s string) string {
			return strings.Replace(s, `module = "github.com/gokrazy/kernel.rpi"`, ``, 1)
		}, wantErr: "kernel.module is empty"},
		{name: "kernel glob", edit: func(s string) string { return strings.Replace(s, `"vmlinuz"`, `"vmlinuz*"`, 1) }, wantErr: "kernel.file"},
		{name: "escaping dtb", edit: func(s string) string {
			return strings.Replace(s, `["bcm2710-rpi-3-b.dtb"]`, `["../x.dtb", "bcm2710-rpi-3-b.dtb"]`, 1)
		}, wantErr: "clean path"},
		{name: "absolute firmware", edit: func(s string) string { return strings.Replace(s, `"bootcode.bin"`, `"/boot/bootcode.bin"`, 1) }, wantErr: "relative"},
		{name: "overlays in root", edit: func(s string) string { return strings.Replace(s, `"overlays/*.dtbo"`, `"*.dtbo"`, 1) }, wantErr: "overlays/"},
		{name: "kernel= in config", edit: func(s string) string {
			return strings.Replace(s, `["arm_64bit=1"]`, `["arm_64bit=1", "kernel=Image"]`, 1)
		}, wantErr: "written by buildimage"},
		{name: "initramfs in config", edit: func(s string) string {
			return strings.Replace(s, `["arm_64bit=1"]`, `["initramfs x followkernel"]`, 1)
		}, wantErr: "written by buildimage"},
		{name: "no console in cmdline", edit: func(s string) string { return strings.Replace(s, `console=serial0,115200 console=tty1`, `quiet`, 1) }, wantErr: "no console="},
		{name: "two-line cmdline", edit: func(s string) string { return strings.Replace(s, `console=tty1"`, `console=tty1\nquiet"`, 1) }, wantErr: "one line"},
		{name: "qemu dtb not shipped", edit: func(s string) string {
			return strings.Replace(s, `dtb = "bcm2710-rpi-3-b.dtb"`, `dtb = "bcm2711-rpi-4-b.dtb"`, 1)
		}, wantErr: "qemu.dtb"},
		{name: "empty firmware files", edit: func(s string) string {
			return strings.Replace(s, `files = ["bootcode.bin", "start*.elf"]`, `files = []`, 1)
		}, wantErr: "firmware.files is empty"},
		{name: "bad glob", edit: func(s string) string { return strings.Replace(s, `"start*.elf"`, `"start[.elf"`, 1) }, wantErr: "syntax error in pattern"},
		{name: "kernel compress", edit: func(s string) string {
			return strings.Replace(s, `file = "vmlinuz"`, `file = "vmlinuz"`+"\n"+`compress = "gzip"`, 1)
		}},
		{name: "bad kernel compress", edit: func(s string) string {
			return strings.Replace(s, `file = "vmlinuz"`, `file = "vmlinuz"`+"\n"+`compress = "xz"`, 1)
		}, wantErr: "kernel.compress"},
		{name: "toml syntax", edit: func(s string) string { return s + "\n[boot\n" }, wantErr: "parse"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Parse(strings.NewReader(tt.edit(valid)), "test.toml")
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Parse() = %v, want nil", err)
				}
				if b.Firmware == nil || b.QEMU == nil || b.Kernel.Overlays != "overlays/*.dtbo" {
					t.Errorf("Parse() = %+v, lost fields", b)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Parse() = %v, want error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestValidateWrapsErrInvalid(t *testing.T) {
	err := (&Board{}).Validate()
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("Validate() = %v, want ErrInvalid", err)
	}
}

// TestShippedBoards loads every file in board-configs/, so a broken board file
// fails go test instead of make image.
func TestShippedBoards(t *testing.T) {
	const dir = "../../board-configs"
	names, err := List(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"cm4", "pi3", "pi4", "pi5", "qemu-virt-arm64", "qemu-x86_64", "rpi-arm64", "zero2w"}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("List() = %v, want %v", names, want)
	}
	for _, n := range names {
		b, err := Load(dir, n)
		if err != nil {
			t.Errorf("Load(%q) = %v", n, err)
			continue
		}
		if strings.HasPrefix(n, "pi") || n == "cm4" || n == "zero2w" || n == "rpi-arm64" {
			if b.Arch != "arm64" || !strings.Contains(b.Boot.Cmdline, "console=serial0,115200") {
				t.Errorf("%s: arch %q cmdline %q, want arm64 and a serial0 console", n, b.Arch, b.Boot.Cmdline)
			}
		}
	}
}

func TestLoadUnknown(t *testing.T) {
	_, err := Load("../../board-configs", "pi9")
	if err == nil || !strings.Contains(err.Error(), "have: cm4, pi3") {
		t.Fatalf("Load(pi9) = %v, want the list of known boards", err)
	}
	if _, err := Load("../../board-configs", "../etc/passwd"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Load(../etc/passwd) = %v, want ErrInvalid", err)
	}
}
