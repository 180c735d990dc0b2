// Command selftest checks inside the recovery initramfs that the Debian
// tools (e2fsprogs, GNU tar, rsync) run with the shared libraries we packed:
// it prints their versions, makes, checks, resizes and relabels an ext4
// file system in a file, and round-trips a directory through tar and rsync.
//
// Each check prints one "SELFTEST ok|FAIL <name>: <first output line>" line and
// the last line is "SELFTEST DONE ok=N fail=M", which the QEMU test matches.
//
// It can run as a normal command from the shell, or as the first process
// (kernel parameter rdinit=/bbin/selftest): then it mounts what it needs, runs
// the checks and execs /init, so one boot tests both the tools and the normal
// path to the recovery program.
package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

type check struct {
	name string
	argv []string
}

// checks returns the commands to run; dir is a scratch directory.
func checks(dir string) []check {
	img := filepath.Join(dir, "ext4.img")
	src := filepath.Join(dir, "src")
	return []check{
		{"mke2fs -V", []string{"mke2fs", "-V"}},
		{"e2fsck -V", []string{"e2fsck", "-V"}},
		{"tar --version", []string{"tar", "--version"}},
		{"rsync --version", []string{"rsync", "--version"}},
		{"mkfs.ext4", []string{"mkfs.ext4", "-F", "-q", "-L", "selftest", img, "8M"}},
		{"e2fsck -fn", []string{"e2fsck", "-fn", img}},
		{"resize2fs", []string{"resize2fs", img, "16M"}},
		{"tune2fs -L", []string{"tune2fs", "-L", "renamed", img}},
		{"dumpe2fs -h", []string{"dumpe2fs", "-h", img}},
		{"tar c", []string{"tar", "-C", src, "-cf", filepath.Join(dir, "t.tar"), "."}},
		{"tar x", []string{"tar", "-C", filepath.Join(dir, "untar"), "-xf", filepath.Join(dir, "t.tar")}},
		{"rsync -a", []string{"rsync", "-a", src + "/", filepath.Join(dir, "rsynced") + "/"}},
	}
}

func main() {
	pid1 := os.Getpid() == 1
	if pid1 {
		setupPID1()
	}
	failed := run(os.Stdout)
	if pid1 {
		// Hand over to the normal init, which mounts its own /proc and /dev;
		// PID 1 must never exit.
		_ = syscall.Unmount("/proc", syscall.MNT_DETACH)
		_ = syscall.Unmount("/dev", syscall.MNT_DETACH)
		err := syscall.Exec("/init", []string{"/init"}, os.Environ())
		fmt.Printf("SELFTEST exec /init: %v\n", err)
		for {
			time.Sleep(time.Hour)
		}
	}
	if failed > 0 {
		os.Exit(1)
	}
}

// setupPID1 gives the checks a console and a PATH when the kernel starts us
// directly; u-root's init redoes all of this afterwards.
func setupPID1() {
	_ = os.MkdirAll("/dev", 0o755)
	// Without devtmpfs there is no /dev/console to print to.
	_ = syscall.Mount("devtmpfs", "/dev", "devtmpfs", 0, "")
	// e2fsprogs read /etc/mtab (-> /proc/self/mounts) before touching a file system.
	_ = os.MkdirAll("/proc", 0o555)
	_ = syscall.Mount("proc", "/proc", "proc", 0, "")
	if c, err := os.OpenFile("/dev/console", os.O_RDWR, 0); err == nil {
		os.Stdout, os.Stderr = c, c
	}
	os.Setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin:/bbin")
}

// run runs all checks and returns the number that failed.
func run(w io.Writer) int {
	dir, err := os.MkdirTemp("", "selftest")
	if err != nil {
		// The initramfs root is writable; fall back to / if /tmp is missing.
		dir, err = os.MkdirTemp("/", "selftest")
	}
	if err != nil {
		fmt.Fprintf(w, "SELFTEST FAIL scratch dir: %v\nSELFTEST DONE ok=0 fail=1\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := fixture(dir); err != nil {
		fmt.Fprintf(w, "SELFTEST FAIL fixture: %v\nSELFTEST DONE ok=0 fail=1\n", err)
		return 1
	}
	ok, failed := 0, 0
	for _, c := range checks(dir) {
		out, err := runOne(c.argv)
		if err != nil {
			failed++
			fmt.Fprintf(w, "SELFTEST FAIL %s: %v\n%s\n", c.name, err, out)
			continue
		}
		ok++
		fmt.Fprintf(w, "SELFTEST ok %s: %s\n", c.name, firstLine(out))
	}
	for _, d := range []string{"untar", "rsynced"} {
		b, err := os.ReadFile(filepath.Join(dir, d, "sub", "hello.txt"))
		if err != nil || string(b) != "hello\n" {
			failed++
			fmt.Fprintf(w, "SELFTEST FAIL %s content: %q %v\n", d, b, err)
			continue
		}
		ok++
		fmt.Fprintf(w, "SELFTEST ok %s content\n", d)
	}
	fmt.Fprintf(w, "SELFTEST DONE ok=%d fail=%d\n", ok, failed)
	return failed
}

func fixture(dir string) error {
	for _, d := range []string{"src/sub", "untar", "rsynced"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "src", "sub", "hello.txt"), []byte("hello\n"), 0o644); err != nil {
		return err
	}
	return os.Symlink("sub/hello.txt", filepath.Join(dir, "src", "link"))
}

func runOne(argv []string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	return out.String(), err
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return "(no output)"
	}
	l, _, _ := strings.Cut(s, "\n")
	return strings.TrimSpace(l)
}
