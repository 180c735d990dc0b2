package testsrv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// SMB is a running Samba smbd sharing one folder.
type SMB struct {
	Port     int
	Share    string
	User     string
	Password string

	pidFile string
}

// StartSMB shares dir as "backups" for a Samba user with a password. The
// user lives only in this smbd's private passdb; it maps to the local
// account root so files keep their owners.
func StartSMB(t testing.TB, dir string) *SMB {
	t.Helper()
	work := t.TempDir()
	s := &SMB{Port: FreePort(t), Share: "backups", User: "root", Password: "s3cret-Pi"}
	s.pidFile = filepath.Join(work, "pid", "smbd.pid")
	for _, d := range []string{"private", "lock", "state", "cache", "pid", "ncalrpc"} {
		if err := os.MkdirAll(filepath.Join(work, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filepath.Join(work, "smb.conf")
	writeFile(t, cfg, fmt.Sprintf(`[global]
	server role = standalone server
	interfaces = lo
	bind interfaces only = yes
	smb ports = %d
	disable netbios = yes
	server min protocol = SMB2
	private dir = %[2]s/private
	lock directory = %[2]s/lock
	state directory = %[2]s/state
	cache directory = %[2]s/cache
	pid directory = %[2]s/pid
	ncalrpc dir = %[2]s/ncalrpc
	passdb backend = tdbsam:%[2]s/private/passdb.tdb
	log file = %[2]s/smbd.log
	log level = 1
	map to guest = never
[%[3]s]
	path = %[4]s
	read only = no
	force user = root
`, s.Port, work, s.Share, dir), 0o644)
	cmd := exec.Command("smbpasswd", "-c", cfg, "-s", "-a", s.User)
	cmd.Stdin = stringsReader(s.Password + "\n" + s.Password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("smbpasswd: %v\n%s", err, out)
	}
	daemon(t, filepath.Join(work, "smbd.log"), "smbd", "--foreground", "--no-process-group", "--debug-stdout", "-s", cfg)
	if err := waitPort(s.Port, 20*time.Second); err != nil {
		t.Fatalf("smbd: %v", err)
	}
	return s
}
