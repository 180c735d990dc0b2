package source

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"
)

// Mounter is the kernel's mount(2) and umount(2); tests record calls.
type Mounter interface {
	Mount(source, target, fstype string, flags uintptr, data string) error
	Unmount(target string) error
}

// Opener opens a Spec of any kind. The zero value is not usable; see
// NewOpener.
type Opener struct {
	// MountDir is where usb and nfs sources are mounted, one fresh
	// folder per mount ("/run/recovery/mnt").
	MountDir string
	Disks    DiskLister // finds usb partitions by label
	Mounter  Mounter
	Log      *slog.Logger
	// USBWait is how long openUSB waits for the disk to appear: USB
	// storage enumerates seconds after boot (13 s on a Pi 3's dwc_otg),
	// and an unattended restore starts right away.
	USBWait time.Duration
	// HTTP is the client of https:// and http:// sources; nil is
	// http.DefaultClient.
	HTTP *http.Client

	seq atomic.Int64
}

// NewOpener returns an Opener for the running system.
func NewOpener(log *slog.Logger) *Opener {
	return &Opener{MountDir: "/run/recovery/mnt", Disks: NewSysfs(), Mounter: sysMounter{}, Log: log, USBWait: 30 * time.Second}
}

// Open opens sp. For sftp it can fail with *HostKeyError; see DialSFTP.
func (o *Opener) Open(ctx context.Context, sp Spec) (Source, error) {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log.Info("open source", "source", sp.String())
	switch sp.Kind {
	case KindDir:
		return OpenDir(sp.Path, "")
	case KindSFTP:
		return DialSFTP(ctx, sp)
	case KindSMB:
		return DialSMB(ctx, sp)
	case KindS3:
		return OpenS3(ctx, sp)
	case KindHTTPS, KindHTTP:
		return OpenWeb(ctx, sp, o.HTTP)
	case KindUSB:
		return o.openUSB(sp)
	case KindNFS:
		return o.openNFS(ctx, sp)
	}
	return nil, fmt.Errorf("BUG: unknown source kind %q", sp.Kind)
}

// mountpoint makes a fresh folder under MountDir.
func (o *Opener) mountpoint(kind Kind) (string, error) {
	dir := filepath.Join(o.MountDir, fmt.Sprintf("%s%d", kind, o.seq.Add(1)))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("make mount point: %w", err)
	}
	return dir, nil
}

// mounted wraps a mount point as a Dir source whose Close unmounts.
func (o *Opener) mounted(mnt, sub, device, desc string) (*Dir, error) {
	p := filepath.Join(mnt, filepath.FromSlash(sub))
	d, err := OpenDir(p, device)
	if err != nil {
		_ = o.Mounter.Unmount(mnt)
		_ = os.Remove(mnt)
		return nil, fmt.Errorf("%s: %w", desc, err)
	}
	d.close = func() error {
		err := o.Mounter.Unmount(mnt)
		_ = os.Remove(mnt)
		return err
	}
	return d, nil
}

// FindPartition finds the partition of sp (by Device or Label) and the
// disk holding it.
func FindPartition(disks []Disk, sp Spec) (Disk, Partition, error) {
	for _, d := range disks {
		for _, p := range d.Partitions {
			if (sp.Device != "" && p.Path == sp.Device) ||
				(sp.Device == "" && sp.Label != "" && strings.EqualFold(p.Label, sp.Label)) {
				return d, p, nil
			}
		}
	}
	what := "label " + sp.Label
	if sp.Device != "" {
		what = sp.Device
	}
	return Disk{}, Partition{}, fmt.Errorf("partition with %s: %w (is the disk plugged in?)", what, ErrNotFound)
}

// readOnlyFS are the file systems a backup partition may have.
var readOnlyFS = map[string]string{
	"vfat":  "utf8,shortname=mixed",
	"exfat": "",
	"ext4":  "",
	"ext3":  "",
	"ext2":  "",
}

func (o *Opener) openUSB(sp Spec) (Source, error) {
	deadline := time.Now().Add(o.USBWait)
	var d Disk
	var p Partition
	for {
		disks, err := o.Disks.Disks()
		if err != nil {
			return nil, err
		}
		d, p, err = FindPartition(disks, sp)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return nil, err
		}
		time.Sleep(500 * time.Millisecond)
	}
	data, ok := readOnlyFS[p.FSType]
	if !ok {
		return nil, fmt.Errorf("%s: file system %q: %w (want vfat, exfat or ext4)", p.Path, p.FSType, ErrUnsupported)
	}
	mnt, err := o.mountpoint(KindUSB)
	if err != nil {
		return nil, err
	}
	if err := o.Mounter.Mount(p.Path, mnt, p.FSType, mountReadOnly, data); err != nil {
		// vfat without NLS utf8 support refuses the option; plain is fine.
		if data == "" || o.Mounter.Mount(p.Path, mnt, p.FSType, mountReadOnly, "") != nil {
			_ = os.Remove(mnt)
			return nil, fmt.Errorf("mount %s (%s) read-only: %w", p.Path, p.FSType, err)
		}
	}
	return o.mounted(mnt, sp.Path, d.Path, p.Path)
}
