package testfs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/blockdev"
	"github.com/pibackup/pibackup/internal/disklayout"
)

// DiskReport is what CompareDisks found.
type DiskReport struct {
	Source, Copy *backupset.Disk
	RootDiffs    []Diff   // root filesystem trees (fstab content excepted, see below)
	BootDiffs    []string // boot partition files whose content differs (cmdline.txt excepted)
	Problems     []string // ids in the copy's cmdline.txt/fstab that do not exist on the copy
}

// OK reports whether the copy is exact and consistent.
func (r *DiskReport) OK() bool {
	return len(r.RootDiffs) == 0 && len(r.BootDiffs) == 0 && len(r.Problems) == 0
}

// String summarises the report for a test failure or the demo.
func (r *DiskReport) String() string {
	var b strings.Builder
	if r.OK() {
		return "identical content and metadata; e2fsck -fn and fsck.vfat -n clean; cmdline.txt and fstab name ids that exist"
	}
	if len(r.RootDiffs) > 0 {
		b.WriteString(FormatDiffs(r.RootDiffs, 30))
	}
	for _, d := range r.BootDiffs {
		fmt.Fprintf(&b, "boot: %s\n", d)
	}
	for _, p := range r.Problems {
		fmt.Fprintf(&b, "ids: %s\n", p)
	}
	return b.String()
}

// CompareDisks judges a restored disk image against its source image: the
// root filesystems (the last Linux partition of each) must hold the same
// tree with every bit of metadata, the boot partitions the same files,
// and the copy's cmdline.txt root= and /etc/fstab must name ids (PARTUUID,
// UUID, LABEL) that exist on the copy. cmdline.txt and /etc/fstab may
// differ in content because a restore rewrites their ids; everything else
// about them (owner, mode) is compared. Needs root (loop devices, mounts).
func CompareDisks(source, copy string) (*DiskReport, error) {
	ctx := context.Background()
	r := &DiskReport{}
	var err error
	if r.Source, err = disklayout.ReadFile(source); err != nil {
		return nil, err
	}
	if r.Copy, err = disklayout.ReadFile(copy); err != nil {
		return nil, err
	}
	sRoot, sBoot, err := rootAndBoot(r.Source)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	cRoot, cBoot, err := rootAndBoot(r.Copy)
	if err != nil {
		return nil, fmt.Errorf("copy: %w", err)
	}
	work, err := os.MkdirTemp("", "testfs-cmp-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	mount := func(img string, p *backupset.Partition, name string) (string, func(), error) {
		a, err := blockdev.AttachPartition(ctx, img, 0, p.Start, p.Size, true)
		if err != nil {
			return "", nil, err
		}
		dir := filepath.Join(work, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			a.Detach()
			return "", nil, err
		}
		if err := mountExt4(a.Path, dir, true); err != nil {
			a.Detach()
			return "", nil, err
		}
		return dir, func() { unmount(dir); a.Detach() }, nil
	}
	sDir, sDone, err := mount(source, sRoot, "source")
	if err != nil {
		return nil, fmt.Errorf("mount source root: %w", err)
	}
	defer sDone()
	cDir, cDone, err := mount(copy, cRoot, "copy")
	if err != nil {
		return nil, fmt.Errorf("mount copy root: %w", err)
	}
	defer cDone()
	diffs, err := Compare(sDir, cDir, CompareOptions{Ignore: BackupExcludes})
	if err != nil {
		return nil, err
	}
	for _, d := range diffs {
		// A restore rewrites the ids in fstab: its content, size and
		// mtime may change; owner and mode may not.
		if d.Path == "etc/fstab" && (d.Kind == "content" || d.Kind == "size" || d.Kind == "mtime") {
			continue
		}
		r.RootDiffs = append(r.RootDiffs, d)
	}
	if sBoot != nil && cBoot != nil {
		if err := compareBoot(source, sBoot.Start, copy, cBoot.Start, work, r); err != nil {
			return nil, err
		}
	}
	fstab, err := os.ReadFile(filepath.Join(cDir, "etc/fstab"))
	if err != nil {
		return nil, err
	}
	var cmdline []byte
	if cBoot != nil {
		if cmdline, err = ExtractFile(copy, cBoot.Start, "cmdline.txt"); err != nil {
			return nil, err
		}
	}
	r.Problems = CheckIDs(r.Copy, string(cmdline), string(fstab))
	// The independent judges: e2fsck -fn and fsck.vfat -n on the copy.
	pd := &PiDisk{Path: copy, RootStart: cRoot.Start, RootSize: cRoot.Size}
	if cBoot != nil {
		pd.BootStart, pd.BootSize = cBoot.Start, cBoot.Size
		if err := pd.Fsck(); err != nil {
			r.Problems = append(r.Problems, err.Error())
		}
	}
	return r, nil
}

// BackupExcludes are the paths every backup leaves out, as raspiBackup
// does: pseudo and temporary filesystems' mount points keep only the
// folder itself.
var BackupExcludes = []string{"lost+found", "proc/*", "sys/*", "dev/*", "tmp/*", "run/*", "media/*", "var/swap", "swapfile"}

func rootAndBoot(d *backupset.Disk) (root, boot *backupset.Partition, err error) {
	for i := range d.Partitions {
		p := &d.Partitions[i]
		switch {
		case strings.HasPrefix(p.FSType, "ext"):
			root = p
		case p.FSType == "vfat" && boot == nil:
			boot = p
		}
	}
	if root == nil {
		return nil, nil, fmt.Errorf("no ext2/3/4 partition")
	}
	return root, boot, nil
}

func compareBoot(a string, aOff int64, b string, bOff int64, work string, r *DiskReport) error {
	da, db := filepath.Join(work, "boot-a"), filepath.Join(work, "boot-b")
	for _, x := range []struct {
		img string
		off int64
		dir string
	}{{a, aOff, da}, {b, bOff, db}} {
		if err := os.Mkdir(x.dir, 0o755); err != nil {
			return err
		}
		if _, err := run(context.Background(), []string{mtoolsSkipCheck}, nil, "mcopy", "-s", "-n", "-i", mtoolsImage(x.img, x.off), "::/", x.dir+"/"); err != nil {
			return fmt.Errorf("extract boot partition of %s: %w", x.img, err)
		}
	}
	diffs, err := Compare(da, db, CompareOptions{IgnoreDirMtime: true})
	if err != nil {
		return err
	}
	for _, d := range diffs {
		if d.Kind == "mtime" || d.Kind == "owner" || d.Kind == "group" || d.Kind == "mode" {
			continue // FAT has no owners or modes, and mcopy sets times it chooses
		}
		if d.Path == "cmdline.txt" {
			continue
		}
		r.BootDiffs = append(r.BootDiffs, d.String())
	}
	return nil
}

// CheckIDs returns a problem for every PARTUUID=, UUID= or LABEL= in
// cmdline.txt's root= and in fstab that names nothing on disk d.
func CheckIDs(d *backupset.Disk, cmdline, fstab string) []string {
	var problems []string
	exists := func(ref string) bool {
		k, v, ok := strings.Cut(ref, "=")
		if !ok {
			return true // /dev/... names are not ids
		}
		for _, p := range d.Partitions {
			switch k {
			case "PARTUUID":
				if strings.EqualFold(p.PartUUID, v) {
					return true
				}
			case "UUID":
				if strings.EqualFold(p.UUID, v) {
					return true
				}
			case "LABEL":
				if p.Label == v {
					return true
				}
			default:
				return true
			}
		}
		return false
	}
	for _, f := range strings.Fields(cmdline) {
		if ref, ok := strings.CutPrefix(f, "root="); ok && !exists(ref) {
			problems = append(problems, fmt.Sprintf("cmdline.txt root=%s names nothing on the disk", ref))
		}
	}
	if cmdline != "" && !strings.Contains(cmdline, "root=") {
		problems = append(problems, "cmdline.txt has no root=")
	}
	for _, line := range strings.Split(fstab, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if !exists(f[0]) {
			problems = append(problems, fmt.Sprintf("fstab %s (%s) names nothing on the disk", f[0], f[1]))
		}
	}
	return problems
}

func unmount(dir string) { _ = unixUnmount(dir) }
