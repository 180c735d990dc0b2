// Package qemutests boots the real recovery image in QEMU and restores
// real backups with it, end to end. This file holds the VM harness: start
// QEMU with a serial console captured to a log, wait for lines with a
// deadline, and always kill the VM at the end.
package qemutests

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Drive is a disk attached to the VM.
type Drive struct {
	Path     string
	USB      bool // attach as usb-storage behind an xHCI controller
	ReadOnly bool // QEMU snapshot mode: guest writes are discarded
	NVMe     bool // attach as an NVMe controller's namespace: nvme0n1, ...
}

// VMConfig describes one boot.
type VMConfig struct {
	Arch    string // "arm64" (virt) or "amd64"
	Kernel  string
	Initrd  string // "" to boot the kernel alone (a restored disk)
	Append  string
	Drives  []Drive
	MemMiB  int
	LogPath string // serial console log
	// HostFwd forwards host ports to the guest, QEMU's user-net syntax:
	// "tcp:127.0.0.1:2222-:22". Never any other host address than 127.0.0.1.
	HostFwd []string
	// Monitor is a unix socket path for the HMP monitor (VM.Monitor), so a
	// test can pull the network cable (set_link) mid-restore.
	Monitor string
	// Argv, when set, is the whole QEMU command line (binary first) in
	// place of the one Args builds from the fields above (LogPath still
	// applies): a board's own machine as imagebuild.QEMUArgs builds it
	// from its [qemu] section (raspi4b).
	Argv []string
}

// Args builds QEMU's argv (pure, so tests can read it).
func (c VMConfig) Args() (bin string, args []string) {
	if len(c.Argv) > 0 {
		return c.Argv[0], c.Argv[1:]
	}
	mem := c.MemMiB
	if mem == 0 {
		mem = 768
	}
	switch c.Arch {
	case "amd64":
		bin = "qemu-system-x86_64"
		// -cpu max gives RDRAND and virtio-rng feeds getrandom: without an
		// entropy source DHCP stalls for minutes (boot-stack.md Q3).
		args = []string{"-cpu", "max", "-device", "virtio-rng-pci"}
	default:
		bin = "qemu-system-aarch64"
		// pauth-impdef makes TCG's pointer authentication cheap: boots
		// twice as fast as -cpu max (boot-stack.md Q3).
		args = []string{"-M", "virt", "-cpu", "max,pauth-impdef=on"}
	}
	args = append(args,
		"-smp", "2", "-m", fmt.Sprint(mem),
		"-nographic", "-no-reboot", // power-off or panic ends QEMU
		"-kernel", c.Kernel,
	)
	netdev := "user,id=n0" // guest reaches host 127.0.0.1 as 10.0.2.2
	for _, f := range c.HostFwd {
		netdev += ",hostfwd=" + f
	}
	args = append(args, "-netdev", netdev, "-device", "virtio-net-pci,netdev=n0,id=nic0")
	if c.Monitor != "" {
		args = append(args, "-monitor", "unix:"+c.Monitor+",server=on,wait=off")
	}
	if c.Initrd != "" {
		args = append(args, "-initrd", c.Initrd)
	}
	usb := false
	for i, d := range c.Drives {
		opt := fmt.Sprintf("file=%s,format=raw", d.Path)
		if d.ReadOnly {
			opt += ",snapshot=on"
		}
		if d.USB {
			if !usb {
				args = append(args, "-device", "qemu-xhci,id=xhci")
				usb = true
			}
			id := fmt.Sprintf("usb%d", i)
			args = append(args, "-drive", "if=none,id="+id+","+opt, "-device", "usb-storage,bus=xhci.0,drive="+id)
			continue
		}
		if d.NVMe {
			// One controller per disk, as on a board with an M.2 slot
			// (QEMU's nvme device needs a serial number).
			id := fmt.Sprintf("nvme%d", i)
			args = append(args, "-drive", "if=none,id="+id+","+opt, "-device", fmt.Sprintf("nvme,serial=pibackup%d,drive=%s", i, id))
			continue
		}
		args = append(args, "-drive", "if=virtio,"+opt)
	}
	args = append(args, "-append", c.Append+" panic=-1")
	return bin, args
}

// VM is a running QEMU.
type VM struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	buf  bytes.Buffer
	cond *sync.Cond
	done chan struct{}
	err  error
	log  *os.File
	in   io.WriteCloser // the serial console's input
	mon  string
}

// Start boots the VM. The caller must call Kill (t.Cleanup) even after
// the guest powered off.
func Start(ctx context.Context, c VMConfig) (*VM, error) {
	bin, args := c.Args()
	cmd := exec.CommandContext(ctx, bin, args...)
	// A test binary killed by its timeout must not leave QEMU running.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	log, err := os.Create(c.LogPath)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "# %s %s\n", bin, strings.Join(args, " "))
	vm := &VM{cmd: cmd, done: make(chan struct{}), log: log, mon: c.Monitor}
	vm.cond = sync.NewCond(&vm.mu)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if vm.in, err = cmd.StdinPipe(); err != nil {
		log.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		b := make([]byte, 4096)
		for {
			n, err := pr.Read(b)
			if n > 0 {
				vm.mu.Lock()
				vm.buf.Write(b[:n])
				log.Write(b[:n])
				vm.cond.Broadcast()
				vm.mu.Unlock()
			}
			if err != nil {
				return
			}
		}
	}()
	go func() {
		vm.err = cmd.Wait()
		pw.Close()
		// Everything QEMU printed is in buf before done closes, so an
		// Expect that sees done has seen the last line too.
		<-readerDone
		vm.mu.Lock()
		close(vm.done)
		vm.cond.Broadcast()
		vm.mu.Unlock()
	}()
	return vm, nil
}

// Expect waits until the console output matches re, or the deadline
// passes, or QEMU exits. It returns the first submatch group list.
func (vm *VM) Expect(re *regexp.Regexp, timeout time.Duration) ([]string, error) {
	return vm.ExpectAfter(0, re, timeout)
}

// Len is how many bytes the guest has printed so far: an offset for
// ExpectAfter.
func (vm *VM) Len() int {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return vm.buf.Len()
}

// ExpectAfter is Expect on the output after the first off bytes, for a
// line that appears more than once (a prompt, a restart).
func (vm *VM) ExpectAfter(off int, re *regexp.Regexp, timeout time.Duration) ([]string, error) {
	timer := time.AfterFunc(timeout, func() {
		vm.mu.Lock()
		vm.cond.Broadcast()
		vm.mu.Unlock()
	})
	defer timer.Stop()
	deadline := time.Now().Add(timeout)
	vm.mu.Lock()
	defer vm.mu.Unlock()
	for {
		if m := re.FindStringSubmatch(vm.buf.String()[min(off, vm.buf.Len()):]); m != nil {
			return m, nil
		}
		select {
		case <-vm.done:
			return nil, fmt.Errorf("QEMU exited (%v) before %q appeared", vm.err, re)
		default:
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%q did not appear within %s", re, timeout)
		}
		vm.cond.Wait()
	}
}

// CopyConsole writes everything the guest printed, from the start and
// then as it arrives, to w (a terminal emulator that renders the serial
// console's screen). It returns at once; the copying ends when QEMU has
// exited and w has the last byte, or when w fails, and then done closes.
func (vm *VM) CopyConsole(w io.Writer) (done <-chan struct{}) {
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		off := 0
		for {
			vm.mu.Lock()
			for off == vm.buf.Len() && !vm.exited() {
				vm.cond.Wait()
			}
			chunk := append([]byte(nil), vm.buf.Bytes()[off:]...)
			exited := vm.exited()
			vm.mu.Unlock()
			off += len(chunk)
			if len(chunk) > 0 {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
			if exited && len(chunk) == 0 {
				return
			}
		}
	}()
	return ch
}

// exited reports whether QEMU has exited and all its output is in buf.
func (vm *VM) exited() bool {
	select {
	case <-vm.done:
		return true
	default:
		return false
	}
}

// Send types s on the serial console (keys for the recovery UI).
func (vm *VM) Send(s string) error {
	_, err := io.WriteString(vm.in, s)
	return err
}

// Monitor runs one HMP command ("set_link n0 off") and returns its output.
func (vm *VM) Monitor(command string) (string, error) {
	if vm.mon == "" {
		return "", fmt.Errorf("VM started without a monitor socket")
	}
	c, err := net.DialTimeout("unix", vm.mon, 5*time.Second)
	if err != nil {
		return "", fmt.Errorf("monitor: %w", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	var out bytes.Buffer
	readPrompt := func() error {
		b := make([]byte, 1024)
		for !bytes.HasSuffix(out.Bytes(), []byte("(qemu) ")) {
			n, err := c.Read(b)
			out.Write(b[:n])
			if err != nil {
				return fmt.Errorf("monitor: %w (read %q)", err, out.String())
			}
		}
		return nil
	}
	if err := readPrompt(); err != nil {
		return "", err
	}
	out.Reset()
	if _, err := io.WriteString(c, command+"\n"); err != nil {
		return "", fmt.Errorf("monitor: %w", err)
	}
	if err := readPrompt(); err != nil {
		return "", err
	}
	return strings.TrimSuffix(out.String(), "(qemu) "), nil
}

// Wait waits for QEMU to exit (the guest powered off).
func (vm *VM) Wait(timeout time.Duration) error {
	select {
	case <-vm.done:
		return vm.err
	case <-time.After(timeout):
		return fmt.Errorf("QEMU still running after %s", timeout)
	}
}

// Console returns everything the guest printed so far.
func (vm *VM) Console() string {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return vm.buf.String()
}

// Kill stops QEMU if it still runs and closes the log.
func (vm *VM) Kill() {
	select {
	case <-vm.done:
	default:
		_ = vm.cmd.Process.Kill()
		<-vm.done
	}
	vm.log.Close()
}
