// Package testsrv starts real servers on 127.0.0.1 for tests: OpenSSH's
// sshd with its sftp subsystem, nfs-ganesha (NFSv3 and v4) and Samba's
// smbd. Each runs with its own config in a temp folder, on a free port,
// and is stopped in t.Cleanup. A QEMU guest reaches them at 10.0.2.2.
package testsrv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitPort waits until something accepts on 127.0.0.1:port.
func waitPort(port int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("nothing listens on 127.0.0.1:%d after %s", port, timeout)
}

// daemon runs a server in the foreground and stops it at cleanup; on a
// test failure its log is printed.
func daemon(t testing.TB, logPath, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	out, err := os.Create(logPath + ".stdout")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
		out.Close()
		if t.Failed() {
			for _, p := range []string{logPath, logPath + ".stdout"} {
				if b, err := os.ReadFile(p); err == nil && len(b) > 0 {
					t.Logf("%s:\n%s", filepath.Base(p), tail(string(b), 4000))
				}
			}
		}
	})
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func writeFile(t testing.TB, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func stringsReader(s string) *strings.Reader { return strings.NewReader(s) }
