package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPty returns a pseudo terminal's master and the path of its slave,
// which consoleTty opens like a console.
func openPty(t *testing.T) (*os.File, string) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	return m, fmt.Sprintf("/dev/pts/%d", n)
}

// TestConsoleTty starts, uses, drains, stops and starts the tty again,
// as tcell does around the UI's shell, and checks raw mode and its undoing.
func TestConsoleTty(t *testing.T) {
	m, slave := openPty(t)
	if _, err := newConsoleTty("/dev/null"); err == nil {
		t.Error("newConsoleTty(/dev/null) = nil error; want not a terminal")
	}
	tty, err := newConsoleTty(slave)
	if err != nil {
		t.Fatal(err)
	}
	lflag := func() uint32 {
		t.Helper()
		f, err := os.OpenFile(slave, os.O_RDWR|unix.O_NOCTTY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		tio, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
		if err != nil {
			t.Fatal(err)
		}
		return tio.Lflag
	}
	if lflag()&unix.ICANON == 0 {
		t.Fatal("the pty starts in raw mode")
	}
	for round := 1; round <= 2; round++ {
		if err := tty.Start(); err != nil {
			t.Fatalf("round %d: Start: %v", round, err)
		}
		if lflag()&(unix.ICANON|unix.ISIG) != 0 {
			t.Errorf("round %d: not raw after Start", round)
		}
		if ws, err := tty.WindowSize(); err != nil || ws.Width == 0 || ws.Height == 0 {
			t.Errorf("round %d: WindowSize = %+v, %v", round, ws, err)
		}
		if _, err := m.WriteString("k"); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 8)
		if n, err := tty.Read(b); err != nil || string(b[:n]) != "k" {
			t.Errorf("round %d: Read = %q, %v; want k", round, b[:n], err)
		}
		if _, err := tty.Write([]byte("frame")); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 16)
		n, _ := m.Read(got)
		if !bytes.Contains(got[:n], []byte("frame")) {
			t.Errorf("round %d: master read %q; want frame", round, got[:n])
		}
		// Drain ends a Read that waits for a key, as tcell's disengage
		// needs before it stops.
		done := make(chan error, 1)
		go func() {
			_, err := tty.Read(make([]byte, 8))
			done <- err
		}()
		time.Sleep(50 * time.Millisecond) // let the Read block; the check below does not depend on it
		if err := tty.Drain(); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("round %d: Read after Drain = %v; want a deadline error", round, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: Drain did not end the Read", round)
		}
		if err := tty.Stop(); err != nil {
			t.Fatalf("round %d: Stop: %v", round, err)
		}
		if lflag()&unix.ICANON == 0 {
			t.Errorf("round %d: still raw after Stop", round)
		}
	}
	if err := tty.Close(); err != nil {
		t.Error(err)
	}
}
