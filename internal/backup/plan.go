package backup

import (
	"fmt"
	"io"
	"strings"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/size"
)

// Plan is what a run will write; --dry-run prints it and stops. It is a
// value: planSet decides it from what is known of the source and the
// target, reading and writing nothing, and the runner makes its items in
// order (writeItem). Each set type plans its own items: dd.go (dd, ddz),
// normal.go with tar.go and rsync.go (tar, tgz, tar.zst and rsync in
// normal mode), partmode.go (-P).
type Plan struct {
	SetName       string
	SetDir        string // final folder of the set
	Source        string // what is read
	Type          backupset.Type
	Compression   backupset.Compression
	PartitionMode bool
	Items         []PlanItem
	Previous      string   // set used for --link-dest and boot-file hardlinks, "" if none
	Excludes      []string // in effect on the root filesystem
	Needed        int64    // estimated bytes the set needs on the target
	Free          int64    // bytes free on the target; -1 on a server, which does not say
	Notes         []string

	facts planFacts // what the manifest records of the plan
}

// planFacts are the manifest fields the plan decides.
type planFacts struct {
	bootPartition, rootPartition int    // normal mode
	bootBackedUp                 string // normal mode: "img" or "tmg"
	imageSize                    int64  // dd: bytes of the image
	partitions                   []int  // -P: the partitions saved
}

// PlanItem is one file or tree of the set.
type PlanItem struct {
	File     string // name in the set folder ("NAME/" for a tree)
	From     string // what it is made of
	Estimate int64  // bytes, 0 for small metadata

	step step // how it is made
}

// stepKind is how an item is made.
type stepKind int

const (
	// stepMeta writes a layout file of the source disk: step.meta says
	// which.
	stepMeta stepKind = iota + 1
	// stepImage copies [start, start+size) of the source disk, reading
	// only the blocks in use (image.go).
	stepImage
	// stepBootTar archives the files of the boot partition (.tmg).
	stepBootTar
	// stepTar archives the files of a filesystem with GNU tar, or those
	// of an unmounted FAT partition read with go-diskfs.
	stepTar
	// stepTree copies the files of a filesystem with rsync (or those of
	// an unmounted FAT partition) into the set and lists them.
	stepTree
)

func (k stepKind) String() string {
	switch k {
	case stepMeta:
		return "meta"
	case stepImage:
		return "image"
	case stepBootTar:
		return "boot tar"
	case stepTar:
		return "tar"
	case stepTree:
		return "tree"
	}
	return fmt.Sprintf("stepKind(%d)", int(k))
}

// step says what an item reads and what it writes; only the fields of
// its kind are set.
type step struct {
	kind stepKind
	// rel is the file written in the set folder, without the .age of
	// encryption (createPayload adds it). For a tree, the folder the
	// tree goes to: "" is the set folder itself (normal mode), else the
	// partition's name (-P).
	rel  string
	meta string // stepMeta: which layout file, a backupset.Suffix*
	// link replaces the file by a hardlink to the previous set's copy
	// when the two are equal: the boot files of normal mode.
	link bool

	comp        backupset.Compression // stepImage
	start, size int64                 // stepImage: the range of the source disk
	parts       []backupset.Partition // stepImage: their allocation maps say what is read
	phase       string                // stepImage: the progress phase

	// part is the partition read by stepTar and stepTree in -P mode;
	// nil is the root filesystem of normal mode.
	part *backupset.Partition
	// fat reads an unmounted FAT partition with go-diskfs rather than
	// through a mount.
	fat      bool
	excludes []string
	expect   int64 // bytes expected, for the progress phase
}

// planInput is everything planSet needs: what was asked and what is
// known of the source and the target. Gathering it reads the disk and
// the target (runner.makePlan); planSet reads nothing.
type planInput struct {
	opts     Options
	typ      backupset.Type
	comp     backupset.Compression
	ext      string // the payload extension of typ and comp
	host     string
	name     string // the set's name
	setDir   string // its final folder, for messages
	src      *source
	previous string // the previous set of the series, "" if none
	remote   bool   // the target is a server
	free     int64  // bytes free on the target; -1 on a server
	rootUsed int64  // bytes in use on the root filesystem
	// rootExcludes are the excludes on the root filesystem (see
	// runner.rootExcludes); excludes, the user's, apply to the other
	// partitions of -P.
	rootExcludes, excludes []string
	images                 imageMeasurer
}

// imageMeasurer says what an image of [start, start+size) of the source
// disk reads: image.go asks the filesystems' allocation maps.
type imageMeasurer interface {
	measureImage(start, size int64, parts []backupset.Partition) (imageEstimate, error)
}

// imageEstimate is what an image reads.
type imageEstimate struct {
	read  int64    // bytes read; the rest are holes
	notes []string // filesystems read whole although that was not asked for
}

// planSet decides every file of the set and how it is made.
func planSet(in planInput) (*Plan, error) {
	s := in.src
	p := &Plan{SetName: in.name, SetDir: in.setDir, Source: s.path, Type: in.typ, Compression: in.comp,
		PartitionMode: in.opts.PartitionMode(), Previous: in.previous, Free: in.free}
	if s.running {
		p.Source = fmt.Sprintf("running system (/ and %s on %s)", s.bootDir, s.devName)
	}
	if e := in.opts.Encrypt; e != nil {
		p.Notes = append(p.Notes, fmt.Sprintf("payloads encrypted with age to %d recipient(s) (names end in .age); a restore needs the key; raspiBackup cannot restore this set", len(e.Info().Recipients)))
	}
	if why := backupset.RaspiBackupProblem(in.typ, in.comp); why != "" {
		// Said before anything is written: the user may want a set that
		// raspiBackup restores too.
		p.Notes = append(p.Notes, "raspiBackup cannot restore this set: "+why)
	}
	var err error
	switch {
	case in.typ == backupset.TypeDD || in.typ == backupset.TypeDDZ:
		err = planDD(p, in)
	case !in.opts.PartitionMode():
		err = planNormal(p, in)
	default:
		err = planPartitions(p, in)
	}
	if err != nil {
		return nil, err
	}
	if in.opts.Encrypt != nil {
		for i, it := range p.Items {
			if it.step.kind != stepMeta { // the payloads' names get .age
				p.Items[i].File += backupset.EncryptedExt
			}
		}
	}
	for _, it := range p.Items {
		p.Needed += it.Estimate
	}
	// Room for metadata and filesystem overhead.
	p.Needed += 1 << 20
	return p, nil
}

// metaItem is the layout file suffix of the source disk.
func metaItem(in planInput, suffix, from string, link bool) PlanItem {
	rel := backupset.MetaFile(in.host, suffix)
	return PlanItem{File: rel, From: from, step: step{kind: stepMeta, rel: rel, meta: suffix, link: link}}
}

// imageFrom completes the description of an image item with what it
// reads.
func imageFrom(from string, in planInput, est imageEstimate) string {
	if in.opts.FullRead {
		return from
	}
	return from + fmt.Sprintf(", reading %s of it (the blocks in use)", size.Format(est.read))
}

func partUsed(p *backupset.Partition) int64 {
	if p.FSUsed > 0 {
		return p.FSUsed
	}
	return p.Size
}

// Print writes the plan for humans.
func (p *Plan) Print(w io.Writer) {
	fmt.Fprintf(w, "set:      %s\n", p.SetName)
	fmt.Fprintf(w, "folder:   %s\n", p.SetDir)
	fmt.Fprintf(w, "source:   %s\n", p.Source)
	mode := "normal"
	if p.PartitionMode {
		mode = "partition-oriented"
	}
	fmt.Fprintf(w, "type:     %s (%s mode, compression %s)\n", p.Type, mode, p.Compression)
	if p.Previous != "" {
		fmt.Fprintf(w, "previous: %s\n", p.Previous)
	}
	if len(p.Excludes) > 0 {
		fmt.Fprintf(w, "excludes: %s\n", strings.Join(p.Excludes, " "))
	}
	fmt.Fprintln(w, "files:")
	for _, it := range p.Items {
		est := ""
		if it.Estimate > 0 {
			est = " (about " + size.Format(it.Estimate) + ")"
		}
		fmt.Fprintf(w, "  %-48s from %s%s\n", it.File, it.From, est)
	}
	if p.Free < 0 {
		fmt.Fprintf(w, "space:    needs about %s, free space of the server not known\n", size.Format(p.Needed))
	} else {
		fmt.Fprintf(w, "space:    needs about %s, %s free\n", size.Format(p.Needed), size.Format(p.Free))
	}
	for _, n := range p.Notes {
		fmt.Fprintf(w, "note:     %s\n", n)
	}
}
