package backupset

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// ManifestVersion is bumped when the manifest changes incompatibly.
const ManifestVersion = 1

// Manifest is our record of a set: where it came from, how it was made and
// a checksum of every payload, so a set can be verified completely without
// the source. See docs/FORMAT.md.
type Manifest struct {
	FormatVersion int       `json:"format_version"`
	Tool          string    `json:"tool"`         // "backupctl"
	ToolVersion   string    `json:"tool_version"` // version of the writer
	Host          string    `json:"host"`
	OSRelease     string    `json:"os_release"` // the name tag, e.g. debian12
	Type          Type      `json:"type"`
	Compression   string    `json:"compression,omitempty"`
	PartitionMode bool      `json:"partition_mode"`           // -P
	Partitions    []int     `json:"partitions,omitempty"`     // selected in -P mode
	Options       Options   `json:"options"`                  // how it was made
	Started       time.Time `json:"started"`                  // RFC 3339
	Finished      time.Time `json:"finished"`                 // RFC 3339
	Disk          Disk      `json:"disk"`                     // the source disk
	Files         []File    `json:"files"`                    // every payload file
	Trees         []Tree    `json:"trees,omitempty"`          // rsync payload trees
	Notes         []string  `json:"notes,omitempty"`          // warnings worth keeping
	Snapshot      string    `json:"snapshot,omitempty"`       // -M text
	SourceDisk    string    `json:"source_disk,omitempty"`    // --source-disk, if offline
	UsedBlocks    bool      `json:"used_blocks,omitempty"`    // dd holes are unused blocks
	ImageSize     int64     `json:"image_size,omitempty"`     // dd: bytes of the raw image
	BootBackedUp  string    `json:"boot_backup,omitempty"`    // "img" or "tmg" for tar/rsync
	Excludes      []string  `json:"excludes,omitempty"`       // -u patterns in effect
	PreviousSet   string    `json:"previous_set,omitempty"`   // rsync link-dest set name
	RootPartition int       `json:"root_partition,omitempty"` // partition number of /
	BootPartition int       `json:"boot_partition,omitempty"` // partition number of the boot fs
	// Encryption is set when the payloads (the files named *.age) are
	// encrypted; it holds no secrets.
	Encryption *Encryption `json:"encryption,omitempty"`
}

// Encryption describes how a set's payloads are encrypted: who can open
// them, never a key.
type Encryption struct {
	Scheme     string      `json:"scheme"` // "age"
	Recipients []Recipient `json:"recipients"`
}

// Recipient is one age recipient of a set.
type Recipient struct {
	// Kind is x25519, ssh-ed25519, ssh-rsa or scrypt (a passphrase).
	Kind string `json:"kind"`
	// ID tells the key: the age1 public key, or the SSH key's SHA256
	// fingerprint; none for a passphrase.
	ID string `json:"id,omitempty"`
}

// Options records the command-line choices that shaped a set.
type Options struct {
	UsedPartitionsOnly bool `json:"used_partitions_only,omitempty"`
	BootTar            bool `json:"boot_tar,omitempty"`
	FullRead           bool `json:"full_read,omitempty"`
}

// Disk describes the source disk.
type Disk struct {
	Device     string      `json:"device"` // e.g. /dev/mmcblk0, or an image path
	Model      string      `json:"model,omitempty"`
	Size       int64       `json:"size"`        // bytes
	SectorSize int         `json:"sector_size"` // logical, bytes
	Table      string      `json:"table"`       // "dos" or "gpt"
	DiskID     string      `json:"disk_id"`     // 0x1234abcd (dos) or a GUID (gpt)
	Partitions []Partition `json:"partitions"`
}

// Partition describes one source partition.
type Partition struct {
	Number   int    `json:"number"`
	Device   string `json:"device,omitempty"` // e.g. mmcblk0p2
	Start    int64  `json:"start"`            // bytes
	Size     int64  `json:"size"`             // bytes
	Type     string `json:"type"`             // MBR type hex ("c", "83") or GPT type GUID
	PartUUID string `json:"partuuid"`
	FSType   string `json:"fstype,omitempty"` // vfat, ext4, swap, ...
	UUID     string `json:"uuid,omitempty"`   // filesystem UUID
	Label    string `json:"label,omitempty"`
	Bootable bool   `json:"bootable,omitempty"`
	FSUsed   int64  `json:"fs_used,omitempty"` // bytes in use inside the filesystem, when known
}

// File is one payload file with its checksum.
type File struct {
	Path   string `json:"path"` // relative to the set folder, "/" separated
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"` // of the file as stored (encrypted, if it is)
	// PlainSize and PlainSHA256 describe an encrypted file's content
	// (the compressed stream that was encrypted), so a reader holding
	// the key proves it decrypts to what was written.
	PlainSize   int64  `json:"plain_size,omitempty"`
	PlainSHA256 string `json:"plain_sha256,omitempty"`
}

// Tree is an rsync payload tree: Listing is a file in the set holding one
// line per entry with its metadata and content hash (see docs/FORMAT.md),
// Extras a file with every symlink target and xattr value of the tree
// (sets made before it existed have none), and File.SHA256 of both is in
// Files.
type Tree struct {
	Root    string `json:"root"`             // "." for normal mode, the partition dir in -P mode
	Listing string `json:"listing"`          // name of the listing file in the set
	Extras  string `json:"extras,omitempty"` // name of the extras file in the set
	Entries int    `json:"entries"`
	Bytes   int64  `json:"bytes"`
}

// WriteManifest encodes m as indented JSON.
func WriteManifest(w io.Writer, m *Manifest) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(m); err != nil {
		return fmt.Errorf("encode manifest: %w", err)
	}
	return nil
}

// ReadManifest decodes a manifest and checks what a reader relies on.
func ReadManifest(r io.Reader) (*Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(io.LimitReader(r, 64<<20))
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("decode manifest: %w", err)
	}
	if m.FormatVersion < 1 || m.FormatVersion > ManifestVersion {
		return nil, fmt.Errorf("manifest format version %d not supported (this build reads 1..%d)", m.FormatVersion, ManifestVersion)
	}
	if _, err := ParseType(string(m.Type)); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	for _, f := range m.Files {
		if !ValidName(f.Path) {
			return nil, fmt.Errorf("manifest: file path %q is not a file name in the set folder (payloads are never in a subfolder or outside)", f.Path)
		}
		if len(f.SHA256) != 64 {
			return nil, fmt.Errorf("manifest: file %q: bad sha256 %q", f.Path, f.SHA256)
		}
	}
	for _, t := range m.Trees {
		// The restore reads these names and builds the tree below Root.
		if (t.Root != "." && !ValidName(t.Root)) || !ValidName(t.Listing) || (t.Extras != "" && !ValidName(t.Extras)) {
			return nil, fmt.Errorf("manifest: tree %q (listing %q, extras %q) is not named by file names in the set folder", t.Root, t.Listing, t.Extras)
		}
	}
	return &m, nil
}

// ValidName reports whether p names an entry of the set folder itself:
// a ValidRelPath without "/". Every payload, listing and partition tree
// of a set lies directly in its folder, so a manifest naming "etc/shadow"
// (inside an rsync tree) or "a/../b" was not written by backupctl.
func ValidName(p string) bool {
	return ValidRelPath(p) && !strings.Contains(p, "/")
}

// ValidRelPath reports whether p is a clean relative path inside a set.
func ValidRelPath(p string) bool {
	if p == "" || p[0] == '/' {
		return false
	}
	for _, el := range splitSlash(p) {
		if el == ".." || el == "" || el == "." {
			return false
		}
	}
	return true
}

func splitSlash(p string) []string {
	var out []string
	start := 0
	for i := 0; i < len(p); i++ {
		if p[i] == '/' {
			out = append(out, p[start:i])
			start = i + 1
		}
	}
	return append(out, p[start:])
}
