package backup

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/payload"
)

const mib = 1 << 20

// sdCard is an SD card as Raspberry Pi OS leaves it, with more
// partitions behind boot and root when extra says so: a swap partition,
// an extended partition holding a logical ext4 and an NTFS partition.
func sdCard(extra bool) *backupset.Disk {
	d := &backupset.Disk{Device: "/dev/mmcblk0", Size: 8192 * mib, SectorSize: 512, Table: "dos", Partitions: []backupset.Partition{
		{Number: 1, Start: 4 * mib, Size: 508 * mib, Type: "c", FSType: "vfat", FSUsed: 60 * mib},
		{Number: 2, Start: 512 * mib, Size: 3584 * mib, Type: "83", FSType: "ext4", FSUsed: 2100 * mib},
	}}
	if extra {
		d.Partitions = append(d.Partitions,
			backupset.Partition{Number: 3, Start: 4096 * mib, Size: 512 * mib, Type: "82", FSType: "swap"},
			backupset.Partition{Number: 4, Start: 4608 * mib, Size: 2048 * mib, Type: "5"},
			backupset.Partition{Number: 5, Start: 4609 * mib, Size: 1023 * mib, Type: "83", FSType: "ext4"}, // FSUsed unknown
			backupset.Partition{Number: 6, Start: 5633 * mib, Size: 1000 * mib, Type: "7", FSType: "ntfs"},
		)
	}
	return d
}

// offline is an image file given with --source-disk, its root mounted.
func offline(d *backupset.Disk) *source {
	return &source{path: "/srv/pi.img", disk: d, devName: "/dev/mmcblk0", partBase: "mmcblk0",
		boot: &d.Partitions[0], root: &d.Partitions[1], rootDir: "/run/backupctl/m1"}
}

// running is the running system booted from d.
func running(d *backupset.Disk) *source {
	s := offline(d)
	s.path, s.running, s.isDevice, s.rootDir, s.bootDir = "/dev/mmcblk0", true, true, "/run/backupctl/root", "/boot/firmware"
	return s
}

// fixedImages measures an image as a quarter of its size, notes a
// partition read whole for every image, and records what it was asked.
type fixedImages struct {
	asked []string
	whole bool // measure every byte as read, as --full-read does
	err   error
}

func (f *fixedImages) measureImage(start, size int64, parts []backupset.Partition) (imageEstimate, error) {
	var nums []int
	for _, p := range parts {
		nums = append(nums, p.Number)
	}
	f.asked = append(f.asked, fmt.Sprintf("%d+%d %v", start, size, nums))
	read := size / 4
	if f.whole {
		read = size
	}
	return imageEstimate{read: read, notes: []string{fmt.Sprintf("read whole at %d", start)}}, f.err
}

func input(t *testing.T, src *source, typ backupset.Type, comp backupset.Compression, opts Options) planInput {
	t.Helper()
	opts.Type, opts.Compression = typ, comp
	typ, comp, ext, err := ResolveType(typ, comp)
	if err != nil {
		t.Fatal(err)
	}
	name := backupset.Name{Host: "pi", OSRelease: "bookworm", Type: typ}.String()
	return planInput{opts: opts, typ: typ, comp: comp, ext: ext, host: "pi", name: name, setDir: "/mnt/b/pi/" + name,
		src: src, free: 100 << 30, rootUsed: 2000 * mib, rootExcludes: []string{"/tmp/*", "/home/x/*"},
		excludes: []string{"/home/x/*"}, images: &fixedImages{}}
}

// itemView is what a test checks of an item: its name and its step.
type itemView struct {
	File     string
	Estimate int64
	Kind     stepKind
	Rel      string
	Meta     string
	Link     bool
	Image    string // comp start+size [partition numbers] phase
	Part     int    // the partition read, 0 for the root filesystem
	FAT      bool
	Excludes []string
	Expect   int64
}

func view(p *Plan) []itemView {
	var out []itemView
	for _, it := range p.Items {
		s := it.step
		v := itemView{File: it.File, Estimate: it.Estimate, Kind: s.kind, Rel: s.rel, Meta: s.meta, Link: s.link,
			FAT: s.fat, Excludes: s.excludes, Expect: s.expect}
		if s.kind == stepImage {
			var nums []int
			for _, p := range s.parts {
				nums = append(nums, p.Number)
			}
			v.Image = fmt.Sprintf("%s %d+%d %v %s", s.comp, s.start, s.size, nums, s.phase)
		}
		if s.part != nil {
			v.Part = s.part.Number
		}
		out = append(out, v)
	}
	return out
}

func checkItems(t *testing.T, p *Plan, want []itemView) {
	t.Helper()
	got := view(p)
	if len(got) != len(want) {
		t.Errorf("%d items, want %d:", len(got), len(want))
	}
	for i := range max(len(got), len(want)) {
		switch {
		case i >= len(got):
			t.Errorf("item %d missing: want %+v", i, want[i])
		case i >= len(want):
			t.Errorf("item %d extra: %+v", i, got[i])
		case !reflect.DeepEqual(got[i], want[i]):
			t.Errorf("item %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

func hasNote(t *testing.T, p *Plan, part string) {
	t.Helper()
	if !slices.ContainsFunc(p.Notes, func(n string) bool { return strings.Contains(n, part) }) {
		t.Errorf("no note with %q in %q", part, p.Notes)
	}
}

func TestPlanDD(t *testing.T) {
	in := input(t, offline(sdCard(false)), backupset.TypeDD, "", Options{})
	in.remote, in.free = true, -1
	p, err := planSet(in)
	if err != nil {
		t.Fatal(err)
	}
	checkItems(t, p, []itemView{{File: in.name + ".img", Estimate: 2048 * mib, Kind: stepImage, Rel: in.name + ".img",
		Image: fmt.Sprintf("none 0+%d [1 2] disk image", 8192*mib)}})
	if p.facts.imageSize != 8192*mib || p.Needed != 2049*mib || p.Free != -1 || p.Source != "/srv/pi.img" {
		t.Errorf("image size %d, needed %d, free %d, source %q", p.facts.imageSize, p.Needed, p.Free, p.Source)
	}
	if want := "the whole disk /srv/pi.img, reading 2.0 GiB of it (the blocks in use)"; p.Items[0].From != want {
		t.Errorf("from %q, want %q", p.Items[0].From, want)
	}
	hasNote(t, p, "read whole at 0")
	hasNote(t, p, "go over the network as zeros")

	// --used-partitions-only stops at the end of the last partition,
	// rounded up to a MiB; ddz estimates at most the data in use; a full
	// read says nothing of blocks in use.
	in = input(t, offline(sdCard(false)), backupset.TypeDD, backupset.CompressZstd, Options{UsedPartitionsOnly: true, FullRead: true})
	in.images = &fixedImages{whole: true}
	p, err = planSet(in)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(in.name, "-ddz-backup-00010101-000000") {
		t.Fatalf("set name %q", in.name)
	}
	checkItems(t, p, []itemView{{File: in.name + ".img.zst", Estimate: 2160 * mib, Kind: stepImage, Rel: in.name + ".img.zst",
		Image: fmt.Sprintf("zstd 0+%d [1 2] disk image", 4096*mib)}})
	if want := "/srv/pi.img up to the end of its last partition"; p.Items[0].From != want {
		t.Errorf("from %q, want %q", p.Items[0].From, want)
	}
	hasNote(t, p, "image truncated from 8.0 GiB to 4.0 GiB")
	if p.facts.imageSize != 4096*mib {
		t.Errorf("image size %d", p.facts.imageSize)
	}
}

func TestPlanNormalTar(t *testing.T) {
	in := input(t, offline(sdCard(true)), backupset.TypeTar, backupset.CompressGzip, Options{})
	p, err := planSet(in)
	if err != nil {
		t.Fatal(err)
	}
	if got := in.images.(*fixedImages).asked; !reflect.DeepEqual(got, []string{fmt.Sprintf("%d+%d [1]", 4*mib, 508*mib)}) {
		t.Errorf("images measured: %q, want only the boot partition", got)
	}
	checkItems(t, p, []itemView{
		{File: "pi-backup.img", Estimate: 127 * mib, Kind: stepImage, Rel: "pi-backup.img", Link: true,
			Image: fmt.Sprintf("none %d+%d [1] boot partition", 4*mib, 508*mib)},
		{File: "pi-backup.sfdisk", Kind: stepMeta, Rel: "pi-backup.sfdisk", Meta: backupset.SuffixSfdisk, Link: true},
		{File: "pi-backup.mbr", Kind: stepMeta, Rel: "pi-backup.mbr", Meta: backupset.SuffixMBR, Link: true},
		{File: in.name + ".tgz", Estimate: 2000 * mib, Kind: stepTar, Rel: in.name + ".tgz", Excludes: in.rootExcludes, Expect: 2000 * mib},
	})
	f := p.facts
	if f.bootPartition != 1 || f.rootPartition != 2 || f.bootBackedUp != "img" || f.imageSize != 0 || f.partitions != nil {
		t.Errorf("facts %+v", f)
	}
	if !reflect.DeepEqual(p.Excludes, in.rootExcludes) || p.Needed != (127+2000+1)*mib {
		t.Errorf("excludes %q, needed %d", p.Excludes, p.Needed)
	}
	hasNote(t, p, "/dev/mmcblk0 has 6 partitions; normal mode saves only the boot and root partitions")
	hasNote(t, p, "read whole at 4194304")

	// --boot-tar: the boot partition's files, nothing measured.
	in = input(t, offline(sdCard(false)), backupset.TypeTar, backupset.CompressZstd, Options{BootTar: true})
	p, err = planSet(in)
	if err != nil {
		t.Fatal(err)
	}
	if got := in.images.(*fixedImages).asked; got != nil {
		t.Errorf("images measured: %q", got)
	}
	checkItems(t, p, []itemView{
		{File: "pi-backup.tmg", Estimate: 60 * mib, Kind: stepBootTar, Rel: "pi-backup.tmg"},
		{File: "pi-backup.sfdisk", Kind: stepMeta, Rel: "pi-backup.sfdisk", Meta: backupset.SuffixSfdisk, Link: true},
		{File: "pi-backup.mbr", Kind: stepMeta, Rel: "pi-backup.mbr", Meta: backupset.SuffixMBR, Link: true},
		{File: in.name + ".tar.zst", Estimate: 2000 * mib, Kind: stepTar, Rel: in.name + ".tar.zst", Excludes: in.rootExcludes, Expect: 2000 * mib},
	})
	if p.facts.bootBackedUp != "tmg" || p.Items[0].From != "files of the boot partition mmcblk0p1" ||
		p.Items[3].From != "files of the root filesystem mmcblk0p2" {
		t.Errorf("boot %q, from %q, %q", p.facts.bootBackedUp, p.Items[0].From, p.Items[3].From)
	}
}

func TestPlanNormalRsync(t *testing.T) {
	in := input(t, running(sdCard(false)), backupset.TypeRsync, "", Options{})
	in.previous = "pi-rsync-backup-20260101-000000"
	p, err := planSet(in)
	if err != nil {
		t.Fatal(err)
	}
	root := itemView{File: "./", Kind: stepTree, Excludes: in.rootExcludes, Expect: 2000 * mib} // Estimate 0: incremental
	checkItems(t, p, []itemView{
		{File: "pi-backup.img", Estimate: 127 * mib, Kind: stepImage, Rel: "pi-backup.img", Link: true,
			Image: fmt.Sprintf("none %d+%d [1] boot partition", 4*mib, 508*mib)},
		{File: "pi-backup.sfdisk", Kind: stepMeta, Rel: "pi-backup.sfdisk", Meta: backupset.SuffixSfdisk, Link: true},
		{File: "pi-backup.mbr", Kind: stepMeta, Rel: "pi-backup.mbr", Meta: backupset.SuffixMBR, Link: true},
		root,
	})
	if p.Previous != in.previous || p.Source != "running system (/ and /boot/firmware on /dev/mmcblk0)" || p.Items[3].From != "files of the root filesystem /" {
		t.Errorf("previous %q, source %q, from %q", p.Previous, p.Source, p.Items[3].From)
	}
	hasNote(t, p, "incremental: unchanged files are hardlinked to "+in.previous)

	// A first set: the root tree's estimate is the data in use.
	in.previous = ""
	if p, err = planSet(in); err != nil {
		t.Fatal(err)
	}
	if it := p.Items[3]; it.Estimate != 2000*mib {
		t.Errorf("first set: root tree estimate %d", it.Estimate)
	}
}

func TestPlanPartitions(t *testing.T) {
	in := input(t, offline(sdCard(true)), backupset.TypeTar, "", Options{AllPartitions: true})
	p, err := planSet(in)
	if err != nil {
		t.Fatal(err)
	}
	meta := []itemView{
		{File: "pi-backup.sfdisk", Kind: stepMeta, Rel: "pi-backup.sfdisk", Meta: backupset.SuffixSfdisk},
		{File: "pi-backup.blkid", Kind: stepMeta, Rel: "pi-backup.blkid", Meta: backupset.SuffixBlkid},
		{File: "pi-backup.parted", Kind: stepMeta, Rel: "pi-backup.parted", Meta: backupset.SuffixParted},
		{File: "pi-backup.fdisk", Kind: stepMeta, Rel: "pi-backup.fdisk", Meta: backupset.SuffixFdisk},
		{File: "pi-backup.mbr", Kind: stepMeta, Rel: "pi-backup.mbr", Meta: backupset.SuffixMBR},
	}
	checkItems(t, p, append(slices.Clone(meta),
		// An unmounted FAT partition is read from the disk.
		itemView{File: "mmcblk0p1.tar", Estimate: 60 * mib, Kind: stepTar, Rel: "mmcblk0p1.tar", Part: 1, FAT: true, Excludes: in.excludes, Expect: 60 * mib},
		itemView{File: "mmcblk0p2.tar", Estimate: 2100 * mib, Kind: stepTar, Rel: "mmcblk0p2.tar", Part: 2, Excludes: in.rootExcludes, Expect: 2100 * mib},
		itemView{File: "mmcblk0p5.tar", Estimate: 1023 * mib, Kind: stepTar, Rel: "mmcblk0p5.tar", Part: 5, Excludes: in.excludes, Expect: 1023 * mib},
	))
	if got := in.images.(*fixedImages).asked; got != nil {
		t.Errorf("images measured: %q", got)
	}
	if !reflect.DeepEqual(p.facts.partitions, []int{1, 2, 5}) || !reflect.DeepEqual(p.Excludes, in.rootExcludes) {
		t.Errorf("partitions %v, excludes %q", p.facts.partitions, p.Excludes)
	}
	hasNote(t, p, "partition 3 (mmcblk0p3) skipped: swap holds no data")
	hasNote(t, p, "partition 4 (mmcblk0p4) skipped: extended partition")
	hasNote(t, p, "partition 6 (mmcblk0p6) skipped: filesystem ntfs not supported")
	if p.Items[6].From != "files of partition 2 (mmcblk0p2, ext4)" {
		t.Errorf("from %q", p.Items[6].From)
	}

	// rsync on the running system: trees; the mounted boot partition is
	// read through its mount; without the root partition, no root
	// excludes.
	in = input(t, running(sdCard(true)), backupset.TypeRsync, "", Options{Partitions: []int{1, 5}})
	if p, err = planSet(in); err != nil {
		t.Fatal(err)
	}
	checkItems(t, p, append(slices.Clone(meta),
		itemView{File: "mmcblk0p1/", Estimate: 60 * mib, Kind: stepTree, Rel: "mmcblk0p1", Part: 1, Excludes: in.excludes, Expect: 60 * mib},
		itemView{File: "mmcblk0p5/", Estimate: 1023 * mib, Kind: stepTree, Rel: "mmcblk0p5", Part: 5, Excludes: in.excludes, Expect: 1023 * mib},
	))
	if p.Excludes != nil {
		t.Errorf("excludes %q without the root partition", p.Excludes)
	}

	in = input(t, offline(sdCard(false)), backupset.TypeTar, "", Options{Partitions: []int{2, 7}})
	if _, err := planSet(in); !errors.Is(err, ErrPreflight) || !strings.Contains(err.Error(), "/dev/mmcblk0 has no partition 7") {
		t.Errorf("partition 7: %v", err)
	}
	s := running(sdCard(false))
	s.root = nil // root on a USB disk
	in = input(t, s, backupset.TypeTar, "", Options{Partitions: []int{1}})
	if _, err := planSet(in); !errors.Is(err, ErrPreflight) || !strings.Contains(err.Error(), "needs root on the boot disk") {
		t.Errorf("root elsewhere: %v", err)
	}
}

// Encrypted payloads are named .age; the layout files stay plain.
func TestPlanEncrypted(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	seal, err := payload.NewSealer([]string{id.Recipient().String()}, "")
	if err != nil {
		t.Fatal(err)
	}
	in := input(t, offline(sdCard(false)), backupset.TypeTar, backupset.CompressGzip, Options{Encrypt: seal})
	p, err := planSet(in)
	if err != nil {
		t.Fatal(err)
	}
	var files, rels []string
	for _, it := range p.Items {
		files, rels = append(files, it.File), append(rels, it.step.rel)
	}
	if want := []string{"pi-backup.img.age", "pi-backup.sfdisk", "pi-backup.mbr", in.name + ".tgz.age"}; !reflect.DeepEqual(files, want) {
		t.Errorf("files %q, want %q", files, want)
	}
	// createPayload adds .age itself.
	if want := []string{"pi-backup.img", "pi-backup.sfdisk", "pi-backup.mbr", in.name + ".tgz"}; !reflect.DeepEqual(rels, want) {
		t.Errorf("written as %q, want %q", rels, want)
	}
	hasNote(t, p, "payloads encrypted with age to 1 recipient(s)")
}

// What cannot be planned is a pre-flight error: nothing was written.
func TestPlanRefusals(t *testing.T) {
	d := sdCard(false)
	s := offline(d)
	s.boot = nil
	if _, err := planSet(input(t, s, backupset.TypeTar, "", Options{})); !errors.Is(err, ErrPreflight) || !strings.Contains(err.Error(), "no FAT boot partition on /srv/pi.img") {
		t.Errorf("no boot: %v", err)
	}
	s = offline(d)
	s.rootDir = ""
	if _, err := planSet(input(t, s, backupset.TypeRsync, "", Options{})); !errors.Is(err, ErrPreflight) || !strings.Contains(err.Error(), "no Linux root filesystem") {
		t.Errorf("no root: %v", err)
	}
	in := input(t, offline(d), backupset.TypeDD, "", Options{})
	in.images = &fixedImages{err: errors.New("unreadable superblock")}
	if _, err := planSet(in); !errors.Is(err, ErrPreflight) || !strings.Contains(err.Error(), "unreadable superblock") {
		t.Errorf("image not measurable: %v", err)
	}
}

// The manifest takes what the plan decided; planning again (under
// another set name, see claimName) leaves nothing of the first plan.
func TestFillManifestFromPlan(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	r := &runner{opts: Options{AllPartitions: true, Excludes: []string{"/home/x/*"}, ToolVersion: "1.2"},
		deps: Deps{Now: func() time.Time { return now }}, typ: backupset.TypeRsync, comp: backupset.CompressNone,
		src: offline(sdCard(true)), host: "pi", name: backupset.Name{Host: "pi", OSRelease: "bookworm", Type: backupset.TypeRsync, Time: now},
		excludes: []string{"/home/x/*"}, prev: &previous{name: "pi@bookworm-rsync-backup-20261203-120000"}}
	in := input(t, r.src, backupset.TypeRsync, "", r.opts)
	for range 2 {
		p, err := planSet(in)
		if err != nil {
			t.Fatal(err)
		}
		r.plan = p
		r.fillManifest()
	}
	m := r.man
	if !reflect.DeepEqual(m.Partitions, []int{1, 2, 5}) || !m.PartitionMode || m.BootPartition != 0 || m.ImageSize != 0 ||
		m.Type != backupset.TypeRsync || m.Host != "pi" || m.OSRelease != "bookworm" || m.ToolVersion != "1.2" ||
		m.SourceDisk != "/srv/pi.img" || m.Disk.Device != "/dev/mmcblk0" || m.PreviousSet != r.prev.name || !m.Started.Equal(now) {
		t.Errorf("manifest %+v", m)
	}
	want := []string{
		"partition 3 (mmcblk0p3) skipped: swap holds no data; a restore recreates it from the .parted and .blkid files",
		"partition 4 (mmcblk0p4) skipped: extended partition",
		"partition 6 (mmcblk0p6) skipped: filesystem ntfs not supported",
	}
	if !reflect.DeepEqual(m.Notes, want) {
		t.Errorf("notes %q, want %q", m.Notes, want)
	}

	// Normal mode records the boot and root partitions and how the boot
	// partition was saved; dd the image's size.
	r.opts, r.typ, r.comp = Options{BootTar: true}, backupset.TypeTar, backupset.CompressNone
	if r.plan, _ = planSet(input(t, r.src, r.typ, r.comp, r.opts)); r.plan == nil {
		t.Fatal("no plan")
	}
	r.fillManifest()
	if m := r.man; m.BootPartition != 1 || m.RootPartition != 2 || m.BootBackedUp != "tmg" || m.Partitions != nil || m.PartitionMode || m.PreviousSet != "" || !m.Options.BootTar {
		t.Errorf("normal mode: manifest %+v", m)
	}
	r.opts, r.typ = Options{UsedPartitionsOnly: true}, backupset.TypeDD
	if r.plan, _ = planSet(input(t, r.src, r.typ, r.comp, r.opts)); r.plan == nil {
		t.Fatal("no plan")
	}
	r.fillManifest()
	if m := r.man; m.ImageSize != 6656*mib || m.BootPartition != 0 || m.BootBackedUp != "" || !m.Options.UsedPartitionsOnly {
		t.Errorf("dd: manifest %+v", m)
	}
}
