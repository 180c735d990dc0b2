package restore

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/compress"
	"github.com/pibackup/pibackup/internal/disklayout"
	"github.com/pibackup/pibackup/internal/i18n"
	sealed "github.com/pibackup/pibackup/internal/payload" // restore has its own payload type
)

// setKind is how a set is restored.
type setKind int

const (
	kindImage     setKind = iota // dd, ddz: a whole-disk image
	kindTar                      // tar, tgz: boot image + root tar
	kindRsync                    // rsync: boot image + root tree
	kindPartition                // -P: one payload per partition
)

func (k setKind) String() string { return i18n.New(i18n.English).Sprintf(k.msgID()) }

// msgID names the kind in the plan's catalogue.
func (k setKind) msgID() i18n.ID {
	return [...]i18n.ID{i18n.PlanKindImage, i18n.PlanKindTar, i18n.PlanKindRsync, i18n.PlanKindPartition}[k]
}

// ErrBadSet is returned when a set lacks what its type needs.
var ErrBadSet = errors.New("backup set is incomplete or unreadable")

// setInfo is what NewPlan learns from a set folder.
type setInfo struct {
	fsys     fs.FS
	dirName  string
	name     backupset.Name
	manifest *backupset.Manifest
	// manifestName is the manifest's file name (sets made before the
	// <host>-backup.* names have the old one), for messages.
	manifestName string
	kind         setKind

	payload     string // dd image or root tar, "" for rsync
	payloadSize int64  // bytes of the payload file as stored
	comp        backupset.Compression

	bootImg string // <host>-backup.img, if present
	bootTar string // <host>-backup.tmg, if present
	mbr     []byte // <host>-backup.mbr, if present
	sfdisk  *backupset.Disk
	blkid   map[string]backupset.BlkidEntry // partition-oriented: by device name

	// partPayloads maps partition numbers of a partition-oriented set to
	// their payload (a tar file or a directory) and compression.
	partPayloads map[int]partPayload

	entries map[string]fs.DirEntry
	// encrypted lists the set's age-encrypted payloads (plain names):
	// fsys and entries show them decrypted (sealed.DecryptFS). locked:
	// no key was given, so their content cannot be read.
	encrypted []string
	locked    bool
}

type partPayload struct {
	name string // file or folder name in the set
	dir  bool
	comp backupset.Compression
}

// readSet inspects a set folder. It reads the manifest, the sfdisk dump
// and the MBR, which are small; payloads are only listed.
func readSet(fsys fs.FS, dirName string, keys *sealed.Keys) (*setInfo, error) {
	n, err := backupset.Parse(dirName)
	if err != nil {
		return nil, fmt.Errorf("set %s: %w", dirName, err)
	}
	s := &setInfo{fsys: fsys, dirName: dirName, name: n, entries: map[string]fs.DirEntry{}}
	ents, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("read set %s: %w", dirName, err)
	}
	for _, e := range ents {
		s.entries[e.Name()] = e
	}
	// The current manifest name first, then the one of sets made before
	// backupctl named its files <host>-backup.*.
	for _, mn := range backupset.ManifestNames(n.Host) {
		if _, ok := s.entries[mn]; !ok {
			continue
		}
		f, err := fsys.Open(mn)
		if err != nil {
			return nil, fmt.Errorf("set %s: %w", dirName, err)
		}
		s.manifest, err = backupset.ReadManifest(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("set %s: %s: %w", dirName, mn, err)
		}
		s.manifestName = mn
		break
	}
	if err := s.checkListedFiles(); err != nil {
		return nil, err
	}
	if m := s.manifest; m != nil && (m.Host != n.Host || m.Type != n.Type) {
		// A set restores by its folder name's type; a manifest written
		// for another set describes other files.
		return nil, fmt.Errorf("set %s: %s: manifest is for %s/%s, the folder name says %s/%s: %w",
			dirName, s.manifestName, m.Host, m.Type, n.Host, n.Type, ErrBadSet)
	}
	if err := s.decrypted(keys); err != nil {
		return nil, err
	}
	host := n.Host
	if _, ok := s.entries[backupset.MetaFile(host, backupset.SuffixBootImage)]; ok {
		s.bootImg = backupset.MetaFile(host, backupset.SuffixBootImage)
	}
	if _, ok := s.entries[backupset.MetaFile(host, backupset.SuffixBootTar)]; ok {
		s.bootTar = backupset.MetaFile(host, backupset.SuffixBootTar)
	}
	if err := s.checkBootImage(); err != nil {
		return nil, err
	}
	if err := s.readMBR(); err != nil {
		return nil, err
	}
	if err := s.readSfdisk(); err != nil {
		return nil, err
	}
	_, partMode := s.entries[backupset.MetaFile(host, backupset.SuffixBlkid)]
	if s.manifest != nil && s.manifest.PartitionMode {
		partMode = true
	}

	switch {
	case partMode:
		s.kind = kindPartition
		if err := s.findPartPayloads(); err != nil {
			return nil, err
		}
	case n.Type == backupset.TypeDD || n.Type == backupset.TypeDDZ:
		s.kind = kindImage
		for name := range s.entries {
			if backupset.IsImagePayload(dirName, name) {
				s.payload = name
			}
		}
		if s.payload == "" {
			return nil, fmt.Errorf("set %s: no %s.img, .img.gz or .img.zst: %w", dirName, dirName, ErrBadSet)
		}
	case n.Type == backupset.TypeRsync:
		s.kind = kindRsync
		if _, ok := s.entries["etc"]; !ok {
			return nil, fmt.Errorf("set %s: rsync set without a root tree (no etc/): %w", dirName, ErrBadSet)
		}
	default:
		s.kind = kindTar
		for name := range s.entries {
			if base, _, ok := backupset.TarPayloadBase(name); ok && base == dirName {
				s.payload = name
			}
		}
		if s.payload == "" {
			return nil, fmt.Errorf("set %s: no %s.tar* or .tgz: %w", dirName, dirName, ErrBadSet)
		}
	}
	if s.payload != "" {
		// Every compression raspiBackup's tar tools make is read (pure
		// Go, also in the recovery image).
		s.comp = backupset.CompressionOf(s.payload)
		info, err := s.entries[s.payload].Info()
		if err != nil {
			return nil, fmt.Errorf("set %s: %w", dirName, err)
		}
		s.payloadSize = info.Size()
	}
	if s.kind == kindTar || s.kind == kindRsync {
		if s.bootImg == "" && s.bootTar == "" {
			return nil, fmt.Errorf("set %s: no boot partition backup (%s or %s): %w", dirName,
				backupset.MetaFile(host, backupset.SuffixBootImage), backupset.MetaFile(host, backupset.SuffixBootTar), ErrBadSet)
		}
	}
	if s.kind != kindImage && s.sfdisk == nil && (s.manifest == nil || len(s.manifest.Disk.Partitions) == 0) {
		return nil, fmt.Errorf("set %s: no partition layout (%s): %w", dirName, backupset.MetaFile(host, backupset.SuffixSfdisk), ErrBadSet)
	}
	return s, nil
}

// decrypted makes an encrypted set read as a plain one: its files as
// stored were checked against the manifest (checkListedFiles), the rest
// of the restore reads the payloads decrypted under their plain names.
func (s *setInfo) decrypted(keys *sealed.Keys) error {
	plain := map[string]int64{}
	for name := range s.entries {
		if backupset.IsEncrypted(name) {
			s.encrypted = append(s.encrypted, strings.TrimSuffix(name, backupset.EncryptedExt))
		}
	}
	if len(s.encrypted) == 0 {
		return nil
	}
	sort.Strings(s.encrypted)
	s.locked = keys == nil
	if s.manifest != nil {
		for _, f := range s.manifest.Files {
			if backupset.IsEncrypted(f.Path) {
				plain[f.Path] = f.PlainSize
			}
		}
	}
	s.fsys = sealed.DecryptFS(s.fsys, keys, plain)
	ents, err := fs.ReadDir(s.fsys, ".")
	if err != nil {
		return fmt.Errorf("read set %s: %w", s.dirName, err)
	}
	s.entries = map[string]fs.DirEntry{}
	for _, e := range ents {
		s.entries[e.Name()] = e
	}
	return nil
}

// checkKeys proves, before a restore plans or writes anything, that the
// keys open every encrypted file of the set: a missing or wrong key is
// said at once, not after the partition table is written.
func (s *setInfo) checkKeys() error {
	if len(s.encrypted) == 0 {
		return nil
	}
	if s.locked {
		return fmt.Errorf("set %s: %w", s.dirName, sealed.ErrNoKey)
	}
	for _, name := range s.encrypted {
		f, err := s.fsys.Open(name) // decrypts the header: the key's test
		if err != nil {
			return fmt.Errorf("set %s: %w", s.dirName, err)
		}
		f.Close()
	}
	return nil
}

// checkBootImage refuses a <host>-backup.img that is not a FAT boot
// partition: the restore copies it into the boot partition as it is.
func (s *setInfo) checkBootImage() error {
	if s.bootImg == "" || s.locked {
		return nil
	}
	f, err := s.fsys.Open(s.bootImg)
	if err != nil {
		return fmt.Errorf("set %s: %w", s.dirName, err)
	}
	defer f.Close()
	if err := CheckBootImage(f); err != nil {
		return fmt.Errorf("set %s: %s: %w: %w", s.dirName, s.bootImg, err, ErrBadSet)
	}
	return nil
}

// CheckBootImage checks the start of a boot partition image for a FAT
// boot sector.
func CheckBootImage(r io.Reader) error {
	bs := make([]byte, 4096)
	n, err := io.ReadFull(r, bs)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("read boot sector: %w", err)
	}
	if id, _ := disklayout.Identify(bytes.NewReader(bs[:n])); id.Type != "vfat" {
		return errors.New("no FAT boot sector: not a boot partition image")
	}
	return nil
}

// readMBR reads <host>-backup.mbr, if the set has one. Its first 440
// bytes go in front of the new partition table, so a file that is not
// an MBR is refused rather than copied onto the target.
func (s *setInfo) readMBR() error {
	name := backupset.MetaFile(s.name.Host, backupset.SuffixMBR)
	if _, ok := s.entries[name]; !ok {
		return nil
	}
	b, err := fs.ReadFile(s.fsys, name)
	if err != nil {
		return fmt.Errorf("set %s: %w", s.dirName, err)
	}
	if err := CheckMBR(b); err != nil {
		return fmt.Errorf("set %s: %s: %w: %w", s.dirName, name, err, ErrBadSet)
	}
	s.mbr = b[:512]
	return nil
}

// CheckMBR checks the content of a <host>-backup.mbr: the first sector
// of a disk with a DOS partition table (or a GPT's protective MBR).
func CheckMBR(b []byte) error {
	if len(b) < 512 {
		return fmt.Errorf("%d bytes, shorter than the 512-byte sector it must hold", len(b))
	}
	if b[510] != 0x55 || b[511] != 0xaa {
		return errors.New("no MBR signature (55 aa at byte 510): not the first sector of a disk")
	}
	return nil
}

// readSfdisk reads and checks <host>-backup.sfdisk, if the set has one:
// a layout that no disk can have (overlapping partitions, numbers or
// sectors a table cannot hold) is refused, and so is one that
// contradicts the manifest, since a restore would have to pick one.
func (s *setInfo) readSfdisk() error {
	name := backupset.MetaFile(s.name.Host, backupset.SuffixSfdisk)
	if _, ok := s.entries[name]; !ok {
		return nil
	}
	b, err := fs.ReadFile(s.fsys, name)
	if err != nil {
		return fmt.Errorf("set %s: %w", s.dirName, err)
	}
	d, err := disklayout.ParseSfdisk(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("set %s: %s: %w", s.dirName, name, err)
	}
	if err := checkSourceLayout(d); err != nil {
		return fmt.Errorf("set %s: %s: %w: %w", s.dirName, name, err, ErrBadSet)
	}
	if m := s.manifest; m != nil && len(m.Disk.Partitions) > 0 {
		if err := checkSourceLayout(&m.Disk); err != nil {
			return fmt.Errorf("set %s: %s: disk: %w: %w", s.dirName, s.manifestName, err, ErrBadSet)
		}
		if err := sameLayout(d, &m.Disk); err != nil {
			return fmt.Errorf("set %s: %s contradicts the manifest: %w: %w", s.dirName, name, err, ErrBadSet)
		}
	}
	s.sfdisk = d
	return nil
}

// checkSourceLayout checks that a recorded layout is one a disk can have,
// whatever the disk's size: disklayout.Validate on a disk as large as a
// table may describe.
func checkSourceLayout(d *backupset.Disk) error {
	c := *d
	c.Size = max(c.Size, 1<<62)
	err := disklayout.Validate(&c)
	var ts *disklayout.TooSmallError
	if errors.As(err, &ts) {
		// Not about a target: the layout reaches beyond what its table
		// can address (2 TiB for DOS).
		return fmt.Errorf("its partitions reach byte %d, beyond what a %s partition table can address", ts.Need, d.Table)
	}
	return err
}

// sameLayout compares the partitions of the sfdisk dump with the
// manifest's record of the same disk.
func sameLayout(sf, m *backupset.Disk) error {
	if sf.Table != m.Table {
		return fmt.Errorf("table %s, the manifest records %s", sf.Table, m.Table)
	}
	if len(sf.Partitions) != len(m.Partitions) {
		return fmt.Errorf("%d partitions, the manifest records %d", len(sf.Partitions), len(m.Partitions))
	}
	for _, p := range sf.Partitions {
		q, ok := disklayout.PartitionByNumber(m, p.Number)
		switch {
		case !ok:
			return fmt.Errorf("partition %d is not in the manifest", p.Number)
		case p.Start != q.Start || p.Size != q.Size:
			return fmt.Errorf("partition %d at %d, %d bytes; the manifest records %d, %d bytes", p.Number, p.Start, p.Size, q.Start, q.Size)
		case !strings.EqualFold(p.Type, q.Type):
			return fmt.Errorf("partition %d has type %s, the manifest records %s", p.Number, p.Type, q.Type)
		}
	}
	return nil
}

// findPartPayloads maps <dev>pN.tar*/<dev>pN/ entries to partition numbers.
func (s *setInfo) findPartPayloads() error {
	s.partPayloads = map[int]partPayload{}
	layout := s.layoutFromMeta()
	for name, e := range s.entries {
		base, dir := name, e.IsDir()
		var comp backupset.Compression
		if !dir {
			b, _, ok := backupset.TarPayloadBase(name)
			if !ok {
				continue
			}
			base, comp = b, backupset.CompressionOf(name)
		}
		num := partNumber(base)
		if num == 0 || base == s.dirName {
			continue
		}
		// Only names of partitions the layout knows (mmcblk0p2, sda2, ...).
		if layout != nil {
			if _, ok := disklayout.PartitionByNumber(layout, num); !ok {
				continue
			}
		}
		if dir && !looksLikePartDir(base) {
			continue
		}
		s.partPayloads[num] = partPayload{name: name, dir: dir, comp: comp}
	}
	if len(s.partPayloads) == 0 {
		return fmt.Errorf("set %s: partition-oriented set without partition payloads: %w", s.dirName, ErrBadSet)
	}
	if b, err := fs.ReadFile(s.fsys, backupset.MetaFile(s.name.Host, backupset.SuffixBlkid)); err == nil {
		if s.blkid, err = backupset.ParseBlkid(bytes.NewReader(b)); err != nil {
			return fmt.Errorf("set %s: %w", s.dirName, err)
		}
	}
	return nil
}

// looksLikePartDir reports whether a folder name is a kernel partition
// name (mmcblk0p1, nvme0n1p2, sda1, vdb3, loop0p1), not a root-tree folder.
func looksLikePartDir(name string) bool {
	for _, prefix := range []string{"mmcblk", "nvme", "sd", "vd", "hd", "loop", "xvd"} {
		if strings.HasPrefix(name, prefix) {
			return true
		}
	}
	return false
}

// partNumber returns the trailing number of a partition device name.
func partNumber(dev string) int {
	i := len(dev)
	for i > 0 && dev[i-1] >= '0' && dev[i-1] <= '9' {
		i--
	}
	if i == len(dev) || i == 0 {
		return 0
	}
	n := 0
	for _, c := range dev[i:] {
		n = n*10 + int(c-'0')
	}
	// "sda" + "1" is fine; "mmcblk0" alone (no p) is a disk, not a partition.
	if strings.HasPrefix(dev, "mmcblk") || strings.HasPrefix(dev, "nvme") || strings.HasPrefix(dev, "loop") {
		if dev[i-1] != 'p' {
			return 0
		}
	}
	return n
}

// layoutFromMeta returns the source layout recorded in the set: the
// manifest's when present (it has filesystem types and UUIDs), else the
// sfdisk dump's.
func (s *setInfo) layoutFromMeta() *backupset.Disk {
	if s.manifest != nil && len(s.manifest.Disk.Partitions) > 0 {
		d := s.manifest.Disk
		d.Partitions = append([]backupset.Partition(nil), d.Partitions...)
		return &d
	}
	if s.sfdisk != nil {
		d := *s.sfdisk
		d.Partitions = append([]backupset.Partition(nil), d.Partitions...)
		return &d
	}
	return nil
}

// open opens a file of the set, decompressing it with c.
func (s *setInfo) open(name string, c backupset.Compression) (io.ReadCloser, error) {
	f, err := s.fsys.Open(name)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	zr, err := compress.NewReader(f, c)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	return readCloser{Reader: zr, close: func() error { zr.Close(); return f.Close() }}, nil
}

type readCloser struct {
	io.Reader
	close func() error
}

func (r readCloser) Close() error { return r.close() }

// imageHead reads the first n bytes of the (decompressed) dd image.
func (s *setInfo) imageHead(n int) ([]byte, error) {
	r, err := s.open(s.payload, s.comp)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	buf := make([]byte, n)
	m, err := io.ReadFull(r, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, fmt.Errorf("read %s: %w", s.payload, err)
	}
	return buf[:m], nil
}

// sortedParts returns partition numbers in ascending order.
func sortedParts(m map[int]partPayload) []int {
	var out []int
	for n := range m {
		out = append(out, n)
	}
	sort.Ints(out)
	return out
}
