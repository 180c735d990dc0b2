// Package restore writes a backup set (dd, ddz, tar, tgz, rsync, as
// raspiBackup or backupctl made it) onto a disk or an image file, and
// clones a live system onto another disk.
//
// A restore is planned first (NewPlan reads the set and the target and
// decides everything, writing nothing), shown (Plan.String), then run
// (Plan.Execute). The target's partition table is wiped at the start and
// written as the very last step, so a restore that fails half-way leaves
// a disk that is visibly empty rather than one that looks restored.
//
// Partition tables are written natively (disklayout.WriteTable, go-diskfs);
// filesystems are made and filled with the real tools (mkfs.ext4, GNU tar,
// rsync, e2fsck, resize2fs, tune2fs) on loop devices attached at the
// partition's offset, which works the same for image files, loop devices
// and real disks. rsync trees made by backupctl are rebuilt in Go from
// their listing, from any source (tree.go). The FAT boot partition is copied as an image and edited
// with go-diskfs, or (a .tmg tar, a partition-oriented set) made and
// filled with go-diskfs, so the host never needs to mount vfat.
//
// Every payload is checked while it is streamed (integrity.go): against
// its size and SHA-256 in the manifest, and, for raspiBackup sets without
// one, for a whole compressed stream and a tar end-of-archive marker. A
// mismatch fails the restore before the partition table is written.
// Files inside restored trees are opened with openat2 RESOLVE_IN_ROOT
// (inroot.go), so a symlink in a set never leads to a host file.
package restore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"time"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/blockdev"
	"github.com/pibackup/pibackup/internal/disklayout"
	"github.com/pibackup/pibackup/internal/i18n"
	sealed "github.com/pibackup/pibackup/internal/payload" // restore has its own payload type
	"github.com/pibackup/pibackup/internal/progress"
)

// Options says what to restore where.
type Options struct {
	Set      fs.FS  // the set folder (os.DirFS for local/NFS/USB; an SFTP fs.FS from the recovery's source layer)
	SetName  string // folder name, e.g. pi@debian12-tgz-backup-20240416-094106
	LocalDir string // the set's local path when it has one ("" over SFTP, SMB): raspiBackup's rsync sets need it
	Target   string // block device or image file
	Size     int64  // size for an image file that does not exist yet
	KeepIDs  bool   // keep the source's disk id, PARTUUIDs and filesystem UUIDs
	// Partitions selects partitions of a partition-oriented set (nil = all).
	Partitions []int
	// Board is the model of the machine the restored disk is for, as its
	// device tree names it (HostBoard); on a Pi 5 with an NVMe target the
	// plan says how to set the boot order. "" is unknown.
	Board string
	// Keys open an encrypted set (sealed.LoadKeys); nil for none.
	Keys *sealed.Keys
	// Sys is where the target checks read the mount table and sysfs;
	// the zero value means the running kernel's.
	Sys      blockdev.Sys
	Log      *slog.Logger
	Progress progress.Reporter
}

// Result reports a finished (or failed) restore.
type Result struct {
	Bytes    int64         // bytes of data written to the target (uncompressed)
	Duration time.Duration // wall time of Execute
	// Verified is true when the restored filesystems passed e2fsck and the
	// partition table and ids read back as planned.
	Verified bool
	// Incomplete is true when Execute failed after it started writing:
	// the target holds no usable system (its partition table is wiped).
	Incomplete bool
	// Changes lists the cmdline.txt and /etc/fstab references rewritten.
	Changes []string
	// Warnings are things the restore left undone that a person should
	// look at (an /etc/fstab that could not be rewritten).
	Warnings []string
}

// ErrIncomplete is wrapped by Execute's error when the target was left
// half-written.
var ErrIncomplete = errors.New("the target is incomplete")

// ErrPartitionChoice: partitions to restore were chosen (Options.Partitions)
// for a set that is not partition-oriented, which restores as a whole.
var ErrPartitionChoice = errors.New("partitions can only be chosen from a partition-oriented set")

// Plan is a decided restore. Its exported fields are for display; change
// nothing in them.
type Plan struct {
	Target *Target
	Source *backupset.Disk // the layout the set was made from
	Layout *backupset.Disk // the layout that will be written
	// Need is the smallest target size in bytes that works (0: unknown,
	// at most the source disk's size).
	Need int64

	o    Options
	log  *slog.Logger
	rep  progress.Reporter
	set  *setInfo
	ids  *ids
	boot int // partition number of the boot filesystem (0: none)
	root int // partition number of the root filesystem

	rootLabel string
	rootData  int64 // estimated bytes of data in the root fs, 0 unknown
	resized   disklayout.ResizeResult
	cmdlines  map[string]string // cmdline.txt files of the set's boot image
	fstab     string            // /etc/fstab of an rsync set ("" unknown)
	notes     []i18n.Msg
	lossNotes []string // what a walked tree (walk.go) could not keep, in English; also warnings of the result
	// rsync trees rebuilt by the Go tree restorer (tree.go); nil: rsync
	// from LocalDir
	tree      *goTree         // normal mode
	partTrees map[int]*goTree // partition-oriented, by partition number
	// image (dd) sets
	imageSize int64        // bytes of the raw image, 0 when unknown (compressed)
	growRoot  bool         // the root partition grows: resize2fs after writing
	shrink    *imageShrink // the root partition shrinks: refilled file by file (imageshrink.go)
	// partition-oriented sets
	selected []int
	parted   map[int]string // filesystem per partition from .parted ("fat16", "fat32", "ext4")
}

// NewPlan reads the set and the target and decides everything the
// restore will do. It writes nothing. A target too small for the data is
// refused here with a *disklayout.TooSmallError naming the bytes needed.
func NewPlan(ctx context.Context, o Options) (*Plan, error) {
	p, err := readPlan(o)
	if err != nil {
		return nil, err
	}
	if err := p.set.checkKeys(); err != nil {
		return nil, err
	}
	if len(o.Partitions) > 0 && p.set.kind != kindPartition {
		return nil, fmt.Errorf("%w; %s is a %s set", ErrPartitionChoice, o.SetName, p.set.name.Type)
	}
	p.Target, err = inspectTarget(o.Sys.OrHost(), o.Target, o.Size, []string{o.LocalDir})
	if err != nil {
		return nil, err
	}
	if err := p.decide(ctx); err != nil {
		return nil, err
	}
	if n := bootOrderNote(o.Board, p.Target.Path, p.Target.IsFile); !n.IsZero() {
		p.notes = append(p.notes, n)
	}
	return p, nil
}

// readPlan starts a plan: the options checked and the set read.
func readPlan(o Options) (*Plan, error) {
	if o.Set == nil || o.SetName == "" {
		return nil, errors.New("restore: BUG: Options.Set and SetName are required")
	}
	p := &Plan{o: o, log: o.Log, rep: progress.OrNop(o.Progress)}
	if p.log == nil {
		p.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	set, err := readSet(o.Set, o.SetName, o.Keys)
	if err != nil {
		return nil, err
	}
	if len(set.encrypted) > 0 {
		// Only the decrypted view holds the payloads; never the local
		// files beneath it.
		p.o.LocalDir = ""
	}
	p.set = set
	return p, nil
}

// decide plans the restore of the set onto p.Target: everything NewPlan
// checks about the set happens here or in readSet, so CheckSet runs the
// same checks.
func (p *Plan) decide(ctx context.Context) error {
	var err error
	switch p.set.kind {
	case kindImage:
		err = p.planImage(ctx)
	case kindTar, kindRsync:
		err = p.planFiles(ctx)
	case kindPartition:
		err = p.planPartitions(ctx)
	}
	if err != nil {
		return err
	}
	if err := disklayout.Validate(p.Layout); err != nil {
		return fmt.Errorf("planned layout: %w", err)
	}
	return nil
}

// checkTargetSize is the size of the image file CheckSet plans for:
// larger than any Pi's disk, within what a DOS table addresses.
const checkTargetSize = 1 << 40

// CheckSet runs every check a restore of the set runs before it writes
// (NewPlan's, on a new image file large enough for the set; o.Target and
// o.Size are ignored) and writes nothing. verify calls it, so a set that
// verifies is one a restore attempts, and a set a restore refuses fails
// verify with the restore's words. Checks of content that a restore
// makes while it streams (checksums, compressed streams, tar members)
// verify makes on its own read, with the same functions.
func CheckSet(ctx context.Context, o Options) error {
	o.Progress = nil // planning reports nothing worth showing
	size := int64(checkTargetSize)
	for attempt := 0; ; attempt++ {
		p, err := readPlan(o)
		if err != nil {
			return err
		}
		if p.set.locked {
			// Encrypted, no key given: the content checks are the
			// verifier's to skip and report.
			return nil
		}
		p.Target = &Target{Path: "(verify)", IsFile: true, Size: size}
		err = p.decide(ctx)
		var ts *disklayout.TooSmallError
		if errors.As(err, &ts) && ts.Need > size && attempt == 0 {
			// A set larger than the disk planned for: plan for its size.
			size = ts.Need
			continue
		}
		return err
	}
}

// bootRoot picks the boot and root partition numbers: the manifest's,
// else raspiBackup's normal-mode convention (1 and 2), else the first FAT
// and the last Linux partition.
func bootRoot(m *backupset.Manifest, d *backupset.Disk) (boot, root int) {
	if m != nil && m.RootPartition > 0 {
		return m.BootPartition, m.RootPartition
	}
	for _, p := range d.Partitions {
		if boot == 0 && isFATType(p.Type) {
			boot = p.Number
		}
		if disklayout.IsLinuxType(p.Type) {
			root = p.Number
		}
	}
	if _, ok := disklayout.PartitionByNumber(d, 2); ok && root == 0 {
		root = 2
	}
	if _, ok := disklayout.PartitionByNumber(d, 1); ok && boot == 0 && root != 1 {
		boot = 1
	}
	return boot, root
}

func isFATType(t string) bool {
	switch t {
	case "b", "c", "e", "6", "4", "1", "ef",
		"C12A7328-F81F-11D2-BA4B-00A0C93EC93B", // EFI system
		"EBD0A0A2-B9E5-4433-87C0-68B6B72699C7": // Microsoft basic data
		return true
	}
	return false
}

// Execute restores the set. On failure after writing started, the result
// has Incomplete set and the error wraps ErrIncomplete.
func (p *Plan) Execute(ctx context.Context) (*Result, error) {
	start := time.Now()
	res := &Result{}
	release, err := lockTarget(p.Target)
	if err != nil {
		return res, err
	}
	defer release()
	switch p.set.kind {
	case kindImage:
		err = p.executeImage(ctx, res)
	case kindTar, kindRsync:
		err = p.executeFiles(ctx, res)
	case kindPartition:
		err = p.executePartitions(ctx, res)
	}
	res.Duration = time.Since(start)
	if err != nil {
		if res.Incomplete {
			err = fmt.Errorf("%w (%s has no partition table now; run the restore again): %w", ErrIncomplete, p.Target.Path, err)
		}
		return res, err
	}
	res.Warnings = append(res.Warnings, p.lossNotes...)
	p.log.Info("restore finished", "set", p.o.SetName, "target", p.Target.Path, "bytes", res.Bytes, "took", res.Duration.Round(time.Millisecond))
	return res, nil
}

// partition returns partition n of the planned layout.
func (p *Plan) partition(n int) backupset.Partition {
	q, ok := disklayout.PartitionByNumber(p.Layout, n)
	if !ok {
		panic(fmt.Sprintf("BUG: partition %d not in the layout", n))
	}
	return *q
}
