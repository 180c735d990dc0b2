package testsrv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// NFS is a running nfs-ganesha serving one export over NFSv3 and v4.
type NFS struct {
	Port      int    // NFS (v3 and v4)
	MountPort int    // MOUNT protocol (v3)
	Path      string // the exported folder; v3 clients mount this path
	Pseudo    string // the v4 pseudo path, "/export"
}

// StartNFS serves dir read-write with no root squash. ganesha registers
// with rpcbind and exits without it, so rpcbind is started when missing.
func StartNFS(t testing.TB, dir string) *NFS {
	t.Helper()
	if err := exec.Command("pgrep", "-x", "rpcbind").Run(); err != nil {
		if err := os.MkdirAll("/run/rpcbind", 0o755); err != nil {
			t.Fatal(err)
		}
		run(t, "rpcbind", "-w")
	}
	work := t.TempDir()
	n := &NFS{Port: FreePort(t), MountPort: FreePort(t), Path: dir, Pseudo: "/export"}
	cfg := filepath.Join(work, "ganesha.conf")
	writeFile(t, cfg, fmt.Sprintf(`NFS_CORE_PARAM {
	Protocols = 3, 4;
	NFS_Port = %d;
	MNT_Port = %d;
	Bind_addr = 127.0.0.1;
	Enable_NLM = false;
	Enable_RQUOTA = false;
	Enable_UDP = false;
}
NFSV4 { Graceless = true; }
NFS_KRB5 { Active_krb5 = false; }
EXPORT {
	Export_Id = 1;
	Path = %s;
	Pseudo = %s;
	Access_Type = RW;
	Squash = No_Root_Squash;
	SecType = sys;
	Protocols = 3, 4;
	Transports = TCP;
	FSAL { Name = VFS; }
}
`, n.Port, n.MountPort, dir, n.Pseudo), 0o644)
	logPath := filepath.Join(work, "ganesha.log")
	daemon(t, logPath, "ganesha.nfsd", "-F", "-f", cfg, "-L", logPath, "-p", filepath.Join(work, "ganesha.pid"))
	if err := waitPort(n.Port, 20*time.Second); err != nil {
		t.Fatalf("ganesha: %v", err)
	}
	return n
}
