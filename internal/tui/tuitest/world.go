package tuitest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/source"
	"github.com/pibackup/pibackup/internal/tui/model"
)

// World is a complete fixture: a backup folder with three sets of host
// "pi", a corrupt source, four disks and the fakes around them.
//
//	sets, newest first: tar with manifest (restorable), in progress (tmp),
//	dd without manifest
//	disks: mmcblk0 (the recovery's boot disk), sda (holds the backups),
//	sdb (a 4 MiB image: the target), sdc (a 4 KiB image: too small)
type World struct {
	Dir        string
	BackupDir  string // dir:BackupDir and SFTPURL open it
	CorruptDir string // dir:CorruptDir has a set whose payload was cut
	EmptyDir   string
	Payload    []byte // the newest set's payload
	NewestSet  string
	Boot       source.Disk
	Backup     source.Disk
	Target     source.Disk
	Small      source.Disk
	Disks      *Disks
	Opener     *Opener
	Engine     *Engine
	// FilesRoot is the root filesystem every set shows in the files
	// flow: /etc/fstab, /etc/hostname, /home/pi/notes.txt.
	FilesRoot string

	mu      sync.Mutex
	powered []bool
}

// SFTPURL is the fake SFTP location of BackupDir; its host key is
// SFTPHostKey and its password SFTPPassword.
const (
	SFTPURL      = "sftp://backup@nas/backups"
	SFTPHostKey  = "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s"
	SFTPPassword = "secret"
)

// NewWorld builds the fixture under dir.
func NewWorld(dir string) (*World, error) {
	w := &World{Dir: dir, BackupDir: filepath.Join(dir, "backups"), CorruptDir: filepath.Join(dir, "corrupt"), EmptyDir: filepath.Join(dir, "empty")}
	w.Payload = bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	newest := SetSpec{Host: "pi", OS: "debian12", Type: backupset.TypeTar, Time: t0.Add(48 * time.Hour), Manifest: true}
	newest.Files = map[string][]byte{newest.Name() + ".tar": w.Payload, "pi-backup.sfdisk": []byte("label: dos\n")}
	w.NewestSet = newest.Name()
	sets := []SetSpec{
		newest,
		{Host: "pi", OS: "debian12", Type: backupset.TypeTar, Time: t0.Add(72 * time.Hour), Tmp: true},
		{Host: "pi", OS: "debian12", Type: backupset.TypeDD, Time: t0},
	}
	sets[2].Files = map[string][]byte{sets[2].Name() + ".img": bytes.Repeat([]byte{0xAA}, 4096)}
	for _, s := range sets {
		if _, err := WriteSet(w.BackupDir, s); err != nil {
			return nil, err
		}
	}
	cdir, err := WriteSet(w.CorruptDir, newest)
	if err != nil {
		return nil, err
	}
	if err := os.Truncate(filepath.Join(cdir, newest.Name()+".tar"), 1000); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(w.EmptyDir, 0o755); err != nil {
		return nil, err
	}
	w.Boot = source.Disk{Name: "mmcblk0", Path: "/dev/mmcblk0", Size: 8 << 30, Model: "SD card"}
	w.Backup = source.Disk{Name: "sda", Path: "/dev/sda", Size: 64 << 30, Model: "USB stick", Removable: true,
		Partitions: []source.Partition{{Number: 1, Name: "sda1", Path: "/dev/sda1", FSType: "ext4", Label: "BACKUP", Size: 64 << 30}}}
	if w.Target, err = ImageDisk(dir, "sdb", 4<<20); err != nil {
		return nil, err
	}
	if w.Small, err = ImageDisk(dir, "sdc", 4<<10); err != nil {
		return nil, err
	}
	w.Disks = &Disks{List: []source.Disk{w.Boot, w.Backup, w.Target, w.Small}}
	w.Opener = &Opener{
		Dirs: map[string]string{
			"dir:" + w.BackupDir:  w.BackupDir,
			"dir:" + w.CorruptDir: w.CorruptDir,
			"dir:" + w.EmptyDir:   w.EmptyDir,
			SFTPURL:               w.BackupDir,
		},
		Device:   w.Backup.Path,
		HostKey:  SFTPHostKey,
		Password: SFTPPassword,
	}
	w.Engine = &Engine{}
	w.FilesRoot = filepath.Join(dir, "files")
	for name, text := range map[string]string{
		"etc/fstab": "PARTUUID=1234-02 / ext4 defaults 0 1\n", "etc/hostname": "pi\n", "home/pi/notes.txt": "remember the milk\n",
	} {
		f := filepath.Join(w.FilesRoot, name)
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(f, []byte(text), 0o644); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// Deps returns model dependencies over the fixture.
func (w *World) Deps() model.Deps {
	return model.Deps{Opener: w.Opener, Disks: w.Disks, Engine: w.Engine, BootDisk: w.Boot.Path, Power: w.power,
		Browser: &Browser{Root: w.FilesRoot}, MountDest: w.MountDest}
}

func (w *World) power(reboot bool) error {
	w.mu.Lock()
	w.powered = append(w.powered, reboot)
	w.mu.Unlock()
	return nil
}

// Powered lists the power calls so far (true = reboot).
func (w *World) Powered() []bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]bool(nil), w.powered...)
}

// DiskIndex is the index of the disk with the given name in Disks.List.
func (w *World) DiskIndex(name string) int {
	for i, d := range w.Disks.List {
		if d.Name == name {
			return i
		}
	}
	panic(fmt.Sprintf("no disk %q", name))
}

// TargetContent reads the first n bytes of the target image.
func (w *World) TargetContent(n int) ([]byte, error) {
	b, err := os.ReadFile(w.Target.Path)
	if err != nil {
		return nil, err
	}
	return b[:n], nil
}
