package backupset

import (
	"fmt"
	"strings"
)

// Compression is how a dd or tar payload is compressed.
type Compression string

// Compressions. gzip keeps raspiBackup compatibility (.img.gz, .tgz); zstd
// is faster and smaller (.img.zst, .tar.zst).
const (
	CompressNone Compression = "none"
	CompressGzip Compression = "gzip"
	CompressZstd Compression = "zstd"
)

// Compressions of tar payloads that only raspiBackup writes (its
// --tarCompressionTool): read, listed, verified and restored, never
// written.
const (
	CompressBzip2 Compression = "bzip2"
	CompressXz    Compression = "xz"
	CompressLzma  Compression = "lzma"
	CompressLzip  Compression = "lzip"
	CompressLzop  Compression = "lzop"
	CompressLz4   Compression = "lz4"
)

// ParseCompression checks a compression name.
func ParseCompression(s string) (Compression, error) {
	switch Compression(s) {
	case CompressNone, CompressGzip, CompressZstd:
		return Compression(s), nil
	}
	return "", fmt.Errorf("unknown compression %q (want gzip, zstd or none)", s)
}

// Suffixes of the per-host metadata files that tar, rsync and
// partition-oriented sets carry next to their payload.
const (
	SuffixBootImage = "-backup.img"    // dd image of the boot partition
	SuffixBootTar   = "-backup.tmg"    // tar of the boot partition (-B)
	SuffixSfdisk    = "-backup.sfdisk" // sfdisk --dump of the source disk
	SuffixMBR       = "-backup.mbr"    // first 512 bytes of the source disk
	SuffixBlkid     = "-backup.blkid"  // blkid output; marks a partition-oriented set
	SuffixParted    = "-backup.parted" // parted -m print
	SuffixFdisk     = "-backup.fdisk"  // fdisk -l
)

// Log files raspiBackup keeps inside a set; they are not payload.
const (
	LogFile = "raspiBackup.log"
	MsgFile = "raspiBackup.msg"
)

// MetaFile returns the name of a per-host metadata file, e.g.
// MetaFile("pi", SuffixSfdisk) = "pi-backup.sfdisk".
func MetaFile(host, suffix string) string { return host + suffix }

// EncryptedExt ends the name of a payload encrypted with age: the
// compressed stream (e.g. x.tgz) is encrypted into x.tgz.age. The
// functions here that judge a payload by its name look beneath it.
const EncryptedExt = ".age"

// IsEncrypted reports whether file is an age-encrypted payload.
func IsEncrypted(file string) bool { return strings.HasSuffix(file, EncryptedExt) }

// compressed extensions a tar payload may have (raspiBackup's
// --tarCompressionTool list plus plain .tar and .tgz).
var tarExts = []string{".tar", ".tgz", ".tar.gz", ".tar.zst", ".tar.bz2", ".tar.xz", ".tar.lz", ".tar.lzma", ".tar.lzo", ".tar.lz4"}

// imgExts are the extensions a dd payload may have.
var imgExts = []string{".img", ".img.gz", ".img.zst"}

// PayloadExt is the file extension our writer uses for a normal-mode
// payload of type t compressed with c ("" for rsync, whose payload is the
// tree itself).
func PayloadExt(t Type, c Compression) (string, error) {
	switch t {
	case TypeDD:
		if c != CompressNone && c != "" {
			return "", fmt.Errorf("type dd is uncompressed; use ddz for %s", c)
		}
		return ".img", nil
	case TypeDDZ:
		switch c {
		case CompressGzip, "":
			return ".img.gz", nil
		case CompressZstd:
			return ".img.zst", nil
		}
		return "", fmt.Errorf("type ddz needs gzip or zstd, not %s", c)
	case TypeTar:
		switch c {
		case CompressNone, "":
			return ".tar", nil
		case CompressZstd:
			return ".tar.zst", nil
		case CompressGzip:
			return "", fmt.Errorf("tar with gzip is type tgz")
		}
	case TypeTGZ:
		if c != CompressGzip && c != "" {
			return "", fmt.Errorf("type tgz is gzip; use tar with %s", c)
		}
		return ".tgz", nil
	case TypeRsync:
		if c != CompressNone && c != "" {
			return "", fmt.Errorf("rsync sets are not compressed")
		}
		return "", nil
	}
	return "", fmt.Errorf("unknown type %q", t)
}

// CompressionOf tells the compression of a payload file by its extension
// (raspiBackup's tar tools' extensions included).
func CompressionOf(file string) Compression {
	file = strings.TrimSuffix(file, EncryptedExt) // compressed first, then encrypted
	for _, c := range []struct {
		ext  string
		comp Compression
	}{
		{".gz", CompressGzip}, {".tgz", CompressGzip}, {".zst", CompressZstd},
		{".bz2", CompressBzip2}, {".xz", CompressXz}, {".lzma", CompressLzma},
		{".lz", CompressLzip}, {".lzo", CompressLzop}, {".lz4", CompressLz4},
	} {
		if strings.HasSuffix(file, c.ext) {
			return c.comp
		}
	}
	return CompressNone
}

// IsImagePayload reports whether file is a dd payload of set name.
func IsImagePayload(setName, file string) bool {
	file = strings.TrimSuffix(file, EncryptedExt)
	for _, e := range imgExts {
		if file == setName+e {
			return true
		}
	}
	return false
}

// TarPayloadBase splits a tar payload file name into its base (set name in
// normal mode, partition name such as "mmcblk0p2" in partition-oriented
// mode) and extension. ok is false when file is not a tar payload.
func TarPayloadBase(file string) (base, ext string, ok bool) {
	file = strings.TrimSuffix(file, EncryptedExt)
	for _, e := range tarExts {
		if strings.HasSuffix(file, e) && len(file) > len(e) {
			// .tar.gz also ends in .gz: the longest matching ext wins below.
			if len(e) > len(ext) {
				base, ext, ok = strings.TrimSuffix(file, e), e, true
			}
		}
	}
	return base, ext, ok
}
