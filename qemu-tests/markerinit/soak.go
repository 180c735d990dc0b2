package main

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// soakPlan is what the soak test asks the fixture to do, in
// /soak-plan.json on the backup disk: the backups of every simulated
// night in order, each at the time the test clock (PIBACKUP_TEST_NOW)
// shows when it starts. The plan stands in for systemd's timers (the
// fixture has no systemd); backupctl takes everything else from its
// /etc/backupctl/backupctl.conf.
type soakPlan struct {
	Host    string       `json:"host"`
	Backups []soakBackup `json:"backups"`
}

type soakBackup struct {
	Night int    `json:"night"`
	Type  string `json:"type"`
	Now   string `json:"now"`
}

// soakRecord is one backup as the driver saw it, printed on the console
// as PIBACKUP-SOAK-BACKUP {json}.
type soakRecord struct {
	soakBackup
	RC        int     `json:"rc"`
	Seconds   float64 `json:"seconds"`
	UsedBytes int64   `json:"used_bytes"`
	// SourceBytesRead is what the card (the fixture's disk) delivered
	// while the backup ran, from its sysfs counters: the backup's reads,
	// and the little the workload reads.
	SourceBytesRead int64           `json:"source_bytes_read"`
	LastRun         json.RawMessage `json:"last_run"`    // backupctl's state file entry
	Pause           json.RawMessage `json:"pause"`       // the service's state at its stop
	Available       int64           `json:"target_free"` // free bytes on the backup disk after the run
}

// soak runs the fixture Pi night after night (pibackup.soak on the
// command line): the system comes up as for a live backup, the
// workload starts (soakload serve, which backupctl pauses and resumes,
// and soakload log, which it does not), and backupctl runs the plan's
// backups one after the other. Before each, the page cache is dropped,
// so the bytes a run reads are the ones it took from the card, not from
// memory.
func soak() {
	say, done, ok := liveSystem()
	if !ok {
		return
	}
	defer done()
	var plan soakPlan
	b, err := os.ReadFile("/mnt/soak-plan.json")
	if err == nil {
		err = json.Unmarshal(b, &plan)
	}
	if err != nil {
		say("PIBACKUP-SOAK-DONE rc=-1 plan: %v", err)
		return
	}
	serve := exec.Command("/usr/local/sbin/soakload", "serve", "-db", "/var/lib/soakload/soak.db", "-state", "/run/soakload")
	writer := exec.Command("/usr/local/sbin/soakload", "log", "-file", "/var/log/soakload/writer.log")
	for _, c := range []*exec.Cmd{serve, writer} {
		c.Stdout, c.Stderr = os.Stdout, os.Stderr
		if err := c.Start(); err != nil {
			say("PIBACKUP-SOAK-DONE rc=-1 start %s: %v", c.Args[1], err)
			return
		}
		defer func() {
			_ = c.Process.Signal(syscall.SIGTERM)
			_ = c.Wait()
		}()
	}
	// The service is up once it wrote its pid: wait for it (it is
	// started, not yet serving, until then).
	for i := 0; ; i++ {
		if _, err := os.Stat("/run/soakload/pid"); err == nil {
			break
		}
		if i == 6000 {
			say("PIBACKUP-SOAK-DONE rc=-1 soakload serve did not start")
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, bk := range plan.Backups {
		unix.Sync()
		_ = os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0)
		// The programs come from the card too: read them into the cache
		// now, so what the card delivers during the run is what the
		// backup read.
		for _, p := range []string{"/usr/local/sbin/backupctl", "/usr/local/sbin/soakload", "/usr/bin/tar", "/usr/bin/rsync"} {
			_, _ = os.ReadFile(p)
		}
		rec := soakRecord{soakBackup: bk, UsedBytes: usedBytes()}
		before := sectorsRead("vda")
		cmd := exec.Command("/usr/local/sbin/backupctl", "backup", "-t", bk.Type)
		cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C",
			"PIBACKUP_TEST_NOW=" + bk.Now}
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		start := time.Now()
		err := cmd.Run()
		rec.Seconds = time.Since(start).Seconds()
		rec.SourceBytesRead = (sectorsRead("vda") - before) * 512
		if err != nil {
			rec.RC = -1
			if ee, ok := err.(*exec.ExitError); ok {
				rec.RC = ee.ExitCode()
			}
		}
		if st, err := os.ReadFile(filepath.Join("/mnt/backups", plan.Host, ".backupctl-state.json")); err == nil {
			var s struct {
				LastRun json.RawMessage `json:"last_run"`
			}
			if json.Unmarshal(st, &s) == nil {
				rec.LastRun = s.LastRun
			}
		}
		if p, err := os.ReadFile("/run/soakload/last-pause.json"); err == nil {
			rec.Pause = p
		}
		var fs unix.Statfs_t
		if unix.Statfs("/mnt", &fs) == nil {
			rec.Available = int64(fs.Bavail) * fs.Bsize
		}
		line, _ := json.Marshal(rec)
		say("PIBACKUP-SOAK-BACKUP %s", line)
		if rec.RC != 0 {
			say("PIBACKUP-SOAK-DONE rc=%d night %d %s failed", rec.RC, bk.Night, bk.Type)
			return
		}
	}
	say("PIBACKUP-SOAK-DONE rc=0")
}

// usedBytes is what a used-blocks dd has to read of the running system's
// filesystems: the root's blocks in use by its own bitmaps (the
// superblock's block count less statfs's free blocks; df's "used" leaves
// out the journal and inode tables, which a dd copies) and the FAT
// boot partition's used clusters.
func usedBytes() int64 {
	var total int64
	var fs unix.Statfs_t
	if unix.Statfs("/", &fs) == nil {
		if blocks, err := ext4Blocks("/dev/vda2"); err == nil {
			total += (blocks - int64(fs.Bfree)) * fs.Bsize
		}
	}
	if unix.Statfs(bootMountPoint(), &fs) == nil {
		total += int64(fs.Blocks-fs.Bfree) * fs.Bsize
	}
	return total
}

// ext4Blocks reads the block count out of an ext4 superblock.
func ext4Blocks(dev string) (int64, error) {
	f, err := os.Open(dev)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sb := make([]byte, 1024)
	if _, err := f.ReadAt(sb, 1024); err != nil {
		return 0, err
	}
	if binary.LittleEndian.Uint16(sb[0x38:]) != 0xEF53 {
		return 0, fmt.Errorf("%s: no ext4 superblock", dev)
	}
	lo, hi := binary.LittleEndian.Uint32(sb[4:]), uint32(0)
	if binary.LittleEndian.Uint32(sb[0x60:])&0x80 != 0 { // INCOMPAT_64BIT
		hi = binary.LittleEndian.Uint32(sb[0x150:])
	}
	return int64(hi)<<32 | int64(lo), nil
}

// soakEnabled says whether the command line asks for the soak.
func soakEnabled(cmdline string) bool {
	for _, f := range strings.Fields(cmdline) {
		if f == "pibackup.soak" {
			return true
		}
	}
	return false
}

// sectorsRead is the disk's count of 512-byte sectors read
// (/sys/block/DISK/stat, third field), -1 if unknown.
func sectorsRead(disk string) int64 {
	b, err := os.ReadFile("/sys/block/" + disk + "/stat")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return -1
	}
	n, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil {
		return -1
	}
	return n
}
