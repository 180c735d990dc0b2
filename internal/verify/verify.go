// Package verify checks a backup set without restoring it. A set with a
// manifest (backupctl's) is checked completely: every file's size and
// SHA-256, every rsync tree against its listing, and the content of every
// payload (compressed streams decompress to their end with their
// checksums, tar archives parse to their end, images carry a partition
// table, the boot image a FAT boot sector). A raspiBackup set has no
// checksums: its name, the files its type needs and the integrity of its
// archives are checked, which catches truncation and any corruption of a
// compressed payload, but not a flipped byte in an uncompressed one.
//
// Every byte is read once: the hash and the content check share one read.
package verify

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/compress"
	"github.com/pibackup/pibackup/internal/disklayout"
	"github.com/pibackup/pibackup/internal/payload"
	"github.com/pibackup/pibackup/internal/progress"
	"github.com/pibackup/pibackup/internal/readback"
	"github.com/pibackup/pibackup/internal/restore"
	"github.com/pibackup/pibackup/internal/treelist"
)

// Options tunes Set.
type Options struct {
	// LocalDir is the set's local path; rsync trees are re-listed from
	// it. "" (a set read over SFTP or SMB) checks the content of every
	// file of a tree against its listing.
	LocalDir string
	// Keys open an encrypted set's payloads, so their content is checked
	// too; without them only the files as stored are (size, SHA-256).
	Keys     *payload.Keys
	Log      *slog.Logger
	Progress progress.Reporter
	// Proofs are what the writer of a set not yet committed already
	// proved of some of its files, by name: such a file is not read
	// again when its proof names the manifest's size and SHA-256.
	Proofs map[string]readback.Proof
	// TreesListed says the writer listed the set's trees from the trees
	// themselves in this run, just before this check (a local set before
	// its commit). A re-listing would compare a walk of each tree with
	// the walk a moment earlier by the same code, so the trees' metadata
	// is taken as listed and only their content is read again: every
	// regular file against the listing's size and SHA-256, but a file
	// that is the previous set's very inode (rsync did not write it)
	// only against the previous listing's hash. One walk per rsync set
	// (issue 17); `backupctl verify` re-lists.
	TreesListed bool
}

// Problem is one finding.
type Problem struct {
	File string // relative to the set folder ("" for the set as a whole)
	Msg  string
}

func (p Problem) String() string {
	if p.File == "" {
		return p.Msg
	}
	return p.File + ": " + p.Msg
}

// Report is the outcome of verifying one set.
type Report struct {
	Set      string
	Type     backupset.Type
	Manifest bool     // checked against a manifest (else: structure and integrity)
	Checked  []string // what was checked, one line each
	// Sealed are the encrypted files whose content was not checked: no
	// key was given, so only their size and SHA-256 as stored were.
	Sealed   []string
	Problems []Problem
	Bytes    int64 // bytes read
}

// OK reports whether the set verified.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

func (r *Report) fail(file, format string, args ...any) {
	r.Problems = append(r.Problems, Problem{File: file, Msg: fmt.Sprintf(format, args...)})
}

// ErrFailed is returned by Set when a set does not verify; the Report
// says why.
var ErrFailed = errors.New("set does not verify")

// Set verifies the set folder fsys, named setName. The error is
// ErrFailed (wrapped) for a bad set, or an error that prevented checking
// (cancellation).
func Set(ctx context.Context, fsys fs.FS, setName string, o Options) (*Report, error) {
	v := &verifier{ctx: ctx, fsys: fsys, o: o, rep: progress.OrNop(o.Progress), r: &Report{Set: setName}}
	if v.o.Log == nil {
		v.o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	n, err := backupset.Parse(setName)
	if err != nil {
		v.r.fail("", "%v", err)
		return v.r, fmt.Errorf("%s: %w", setName, ErrFailed)
	}
	v.name = n
	v.r.Type = n.Type
	// The manifest has the current name, or in a set made before backupctl
	// named its files <host>-backup.*, the legacy one.
	v.manifest = backupset.ManifestName(n.Host)
	mn, err := backupset.FindManifest(fsys, ".", n.Host)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		v.withoutManifest()
	case err != nil:
		v.r.fail(v.manifest, "%v", err)
	default:
		v.manifest = mn
		b, err := fs.ReadFile(fsys, mn)
		if err != nil {
			v.r.fail(mn, "%v", err)
			break
		}
		m, err := backupset.ReadManifest(bytes.NewReader(b))
		if err != nil {
			v.r.fail(mn, "%v", err)
			break
		}
		v.r.Manifest = true
		v.withManifest(m)
	}
	// The checks a restore runs before it writes, by the restore's own
	// code: a set that verifies is one a restore attempts, and a refusal
	// reads the same here as there.
	if err := restore.CheckSet(ctx, restore.Options{Set: fsys, SetName: setName, LocalDir: o.LocalDir, Keys: o.Keys, Log: v.o.Log}); err != nil && ctx.Err() == nil {
		v.r.fail("", "%v", err)
	}
	if err := ctx.Err(); err != nil {
		return v.r, err
	}
	if !v.r.OK() {
		return v.r, fmt.Errorf("%s: %s: %w", setName, v.r.Problems[0], ErrFailed)
	}
	return v.r, nil
}

type verifier struct {
	ctx  context.Context
	fsys fs.FS
	o    Options
	rep  progress.Reporter
	r    *Report
	name backupset.Name
	// manifest is the manifest's file name, for messages.
	manifest string
	// imageSize is the manifest's image_size (dd sets; 0: not recorded).
	imageSize int64
	// prevSet is the manifest's previous_set: the set an rsync set's
	// unchanged files are hardlinks of.
	prevSet string
}

func (v *verifier) withManifest(m *backupset.Manifest) {
	// A manifest for another host or type is refused by restore.CheckSet.
	v.imageSize, v.prevSet = m.ImageSize, m.PreviousSet
	if len(m.Files) == 0 {
		v.r.fail(v.manifest, "manifest lists no files")
	}
	listed := map[string]bool{}
	for _, f := range m.Files {
		if v.ctx.Err() != nil {
			return
		}
		listed[f.Path] = true
		if p, ok := v.o.Proofs[f.Path]; ok {
			v.checkProof(f, p)
			continue
		}
		v.checkFile(f.Path, &f)
	}
	for _, t := range m.Trees {
		if v.ctx.Err() != nil {
			return
		}
		if !listed[t.Listing] {
			v.r.fail(t.Listing, "tree listing is not in the manifest's file list")
			continue
		}
		if t.Extras != "" && !listed[t.Extras] {
			v.r.fail(t.Extras, "tree extras file is not in the manifest's file list")
			continue
		}
		v.checkTree(t)
	}
	// Every payload the layout needs must be listed: a set whose payload
	// vanished from disk and manifest alike is not a good set.
	for _, need := range requiredFiles(v.name, v.dirName(), m.PartitionMode, m.BootBackedUp) {
		if !anyListed(listed, need) {
			v.r.fail(need[0], "required file is missing from the manifest")
		}
	}
}

// checkProof accepts a file its writer proved (readback.Proof) when the
// proof is of the bytes the manifest records.
func (v *verifier) checkProof(f backupset.File, p readback.Proof) {
	if p.Size != f.Size || !strings.EqualFold(p.SHA256, f.SHA256) {
		v.r.fail(f.Path, "read back while writing as %d bytes with sha256 %s, the manifest says %d bytes, %s", p.Size, p.SHA256, f.Size, f.SHA256)
		return
	}
	v.r.Bytes += p.Read
	v.r.Checked = append(v.r.Checked, fmt.Sprintf("%s (%d bytes, %s: %d bytes read back from the disk)", f.Path, f.Size, p.How, p.Read))
}

func (v *verifier) dirName() string { return v.name.String() }

func anyListed(listed map[string]bool, names []string) bool {
	for _, n := range names {
		if listed[n] || listed[n+backupset.EncryptedExt] {
			return true
		}
	}
	return false
}

// requiredFiles lists, per requirement, the acceptable file names.
func requiredFiles(n backupset.Name, dir string, partMode bool, boot string) [][]string {
	host := n.Host
	meta := [][]string{{backupset.MetaFile(host, backupset.SuffixSfdisk)}, {backupset.MetaFile(host, backupset.SuffixMBR)}}
	switch {
	case partMode:
		return append(meta, []string{backupset.MetaFile(host, backupset.SuffixBlkid)})
	case n.Type == backupset.TypeDD:
		return [][]string{{dir + ".img"}}
	case n.Type == backupset.TypeDDZ:
		return [][]string{{dir + ".img.gz", dir + ".img.zst"}}
	}
	bootFiles := []string{backupset.MetaFile(host, backupset.SuffixBootImage), backupset.MetaFile(host, backupset.SuffixBootTar)}
	meta = append(meta, bootFiles)
	switch n.Type {
	case backupset.TypeTGZ:
		meta = append(meta, []string{dir + ".tgz"})
	case backupset.TypeTar:
		var tars []string
		for _, e := range []string{".tar", ".tar.gz", ".tar.zst", ".tar.bz2", ".tar.xz", ".tar.lz", ".tar.lzma", ".tar.lzo", ".tar.lz4"} {
			tars = append(tars, dir+e)
		}
		meta = append(meta, tars)
	}
	return meta
}

// withoutManifest checks a raspiBackup set: the files its type needs and
// the integrity of each.
func (v *verifier) withoutManifest() {
	ents, err := fs.ReadDir(v.fsys, ".")
	if err != nil {
		v.r.fail("", "%v", err)
		return
	}
	present := map[string]bool{}
	for _, e := range ents {
		present[e.Name()] = true
	}
	partMode := present[backupset.MetaFile(v.name.Host, backupset.SuffixBlkid)]
	for _, need := range requiredFiles(v.name, v.dirName(), partMode, "") {
		if !anyListed(present, need) {
			v.r.fail(need[0], "missing (required for a %s set)", v.name.Type)
		}
	}
	if v.name.Type == backupset.TypeRsync && !partMode && !present["etc"] {
		v.r.fail("", "rsync set without a root tree (no etc/)")
	}
	for _, e := range ents {
		if v.ctx.Err() != nil {
			return
		}
		if e.IsDir() || kindOf(v.name, v.dirName(), e.Name()) == kindOther {
			continue
		}
		v.checkFile(e.Name(), nil)
	}
	v.r.Checked = append(v.r.Checked, "no manifest (raspiBackup set): structure and archive integrity only; uncompressed payloads cannot be checked byte for byte")
}

// fileKind says how a file's content is checked.
type fileKind int

const (
	kindOther     fileKind = iota
	kindDiskImage          // dd payload, maybe compressed
	kindTar                // tar payload (root, partition, .tmg), maybe compressed
	kindBootImage          // <host>-backup.img
	kindSfdisk
	kindMBR
)

func kindOf(n backupset.Name, dir, file string) fileKind {
	base := strings.TrimSuffix(path.Base(file), backupset.EncryptedExt) // judged by what it holds
	switch {
	case backupset.IsImagePayload(dir, base):
		return kindDiskImage
	case base == backupset.MetaFile(n.Host, backupset.SuffixBootImage):
		return kindBootImage
	case base == backupset.MetaFile(n.Host, backupset.SuffixBootTar):
		return kindTar
	case base == backupset.MetaFile(n.Host, backupset.SuffixSfdisk):
		return kindSfdisk
	case base == backupset.MetaFile(n.Host, backupset.SuffixMBR):
		return kindMBR
	}
	if _, _, ok := backupset.TarPayloadBase(base); ok && !strings.Contains(file, "/") {
		return kindTar
	}
	return kindOther
}

// checkFile reads one file once: its hash (when the manifest has one) and
// its content check share the read.
func (v *verifier) checkFile(name string, want *backupset.File) {
	f, err := v.fsys.Open(name)
	if err != nil {
		v.r.fail(name, "%v", err)
		return
	}
	defer f.Close()
	h := sha256.New()
	// Buffered: a tar check reads a 512-byte header at a time, which
	// were as many system calls.
	cr := &countReader{ctx: v.ctx, r: bufio.NewReaderSize(f, 1<<20), rep: v.rep}
	var size int64 = -1
	if info, err := f.Stat(); err == nil {
		size = info.Size()
	}
	v.rep.Phase("verify "+name, size)
	tee := io.TeeReader(cr, h)
	kind := kindOf(v.name, v.dirName(), name)
	var contentErr error
	var plain *plainCheck
	if backupset.IsEncrypted(name) {
		plain, contentErr = v.checkEncrypted(kind, name, tee)
	} else {
		contentErr = checkContent(kind, name, tee, v.imageSize)
	}
	// Read what the content check left (trailing padding, or all of a
	// file without a content check), so the hash covers the whole file.
	if _, err := io.Copy(io.Discard, tee); err != nil && contentErr == nil {
		contentErr = err
	}
	v.r.Bytes += cr.n
	if errors.Is(contentErr, context.Canceled) {
		return
	}
	if want != nil {
		got := hex.EncodeToString(h.Sum(nil))
		switch {
		case cr.n != want.Size:
			v.r.fail(name, "size %d, manifest says %d", cr.n, want.Size)
		case !strings.EqualFold(got, want.SHA256):
			v.r.fail(name, "sha256 %s, manifest says %s (the file is corrupt)", got, want.SHA256)
		}
	}
	if plain != nil && want != nil && contentErr == nil {
		switch got := hex.EncodeToString(plain.h.Sum(nil)); {
		case want.PlainSHA256 == "":
			v.r.fail(name, "encrypted, but the manifest records no plain_sha256 of its content")
		case plain.n != want.PlainSize || got != want.PlainSHA256:
			v.r.fail(name, "decrypts to %d bytes with sha256 %s, the manifest records %d bytes, %s", plain.n, got, want.PlainSize, want.PlainSHA256)
		}
	}
	if contentErr != nil {
		v.r.fail(name, "%v", contentErr)
	}
	v.r.Checked = append(v.r.Checked, fmt.Sprintf("%s (%d bytes)", name, cr.n))
	if backupset.IsEncrypted(name) && v.o.Keys == nil {
		v.r.Checked = append(v.r.Checked, fmt.Sprintf("%s is encrypted: its size and SHA-256 as stored were checked, its content was not", name))
		v.r.Sealed = append(v.r.Sealed, name)
	}
}

// plainCheck hashes an encrypted file's decrypted content.
type plainCheck struct {
	h hash.Hash
	n int64
}

func (p *plainCheck) Write(b []byte) (int, error) {
	p.h.Write(b)
	p.n += int64(len(b))
	return len(b), nil
}

// checkEncrypted checks an encrypted file read from r: without keys not
// at all (the caller hashes the file as stored); with them, decrypted
// (age authenticates every chunk), hashed and checked as its plain
// counterpart would be.
func (v *verifier) checkEncrypted(kind fileKind, name string, r io.Reader) (*plainCheck, error) {
	if v.o.Keys == nil {
		return nil, nil
	}
	dr, err := payload.Decrypt(r, name, v.o.Keys)
	if err != nil {
		return nil, err
	}
	pc := &plainCheck{h: sha256.New()}
	tee := io.TeeReader(dr, pc)
	err = checkContent(kind, name, tee, v.imageSize)
	if _, cerr := io.Copy(io.Discard, tee); cerr != nil && err == nil {
		err = cerr
	}
	return pc, err
}

// ContentCheck is the check of its content Set runs on file of the set
// setName (tar structure, decompression, a disk image's partition table
// and length against imageSize, the manifest's image_size), for a writer
// that checks the bytes it reads back itself (readback.Follower). It is
// nil where Set checks no content: metadata, and encrypted files (Set
// has no keys before a commit).
func ContentCheck(setName, file string, imageSize int64) (func(io.Reader) error, error) {
	n, err := backupset.Parse(setName)
	if err != nil {
		return nil, err
	}
	kind := kindOf(n, n.String(), file)
	if backupset.IsEncrypted(file) || (kind != kindTar && kind != kindDiskImage) {
		return nil, nil
	}
	return func(r io.Reader) error { return checkContent(kind, file, r, imageSize) }, nil
}

// checkContent checks a file's content by kind, reading from r.
// imageSize is the manifest's image_size of a dd image (0: none).
func checkContent(kind fileKind, name string, r io.Reader, imageSize int64) error {
	switch kind {
	case kindDiskImage, kindTar:
		zr, err := compress.NewReader(r, backupset.CompressionOf(name))
		if err != nil {
			return fmt.Errorf("compressed stream: %w", err)
		}
		defer zr.Close()
		if kind == kindTar {
			return checkTar(zr)
		}
		if backupset.CompressionOf(name) == backupset.CompressNone {
			// restore.CheckSet compares its file size before writing.
			imageSize = 0
		}
		return checkDiskImage(zr, imageSize)
	}
	// The boot image's boot sector, .sfdisk and .mbr are checked by
	// restore.CheckSet, as a restore reads them.
	return nil
}

// checkTar reads a tar stream as a restore does (restore.CheckTar: as
// GNU tar reads it, with the member names and the end of the archive
// checked), then the rest of the stream, so a compressed stream's
// trailer (CRC, size) is read and checked too.
func checkTar(r io.Reader) error {
	if err := restore.CheckTar(r); err != nil {
		return err
	}
	if _, err := io.Copy(io.Discard, r); err != nil {
		return fmt.Errorf("after the tar archive: %w", err)
	}
	return nil
}

// checkDiskImage checks that an image starts with a partition table,
// reads it (decompressing) to the end and checks its length as a
// restore does: imageSize (the manifest's, 0: not recorded), else the
// end of its last partition.
func checkDiskImage(r io.Reader, imageSize int64) error {
	head := make([]byte, 1<<20)
	n, err := io.ReadFull(r, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("read image: %w", err)
	}
	rest, err := io.Copy(io.Discard, r)
	if err != nil {
		return fmt.Errorf("read image: %w", err)
	}
	return checkImageHead(head[:n], int64(n)+rest, imageSize)
}

// checkImageHead is checkDiskImage's check of an image of size bytes
// whose first MiB is head.
func checkImageHead(head []byte, size, imageSize int64) error {
	d, err := disklayout.ReadTable(head, 0)
	if err != nil {
		return fmt.Errorf("image has no readable partition table: %w", err)
	}
	return restore.CheckImageLength(size, imageSize, d)
}

// ImageCheck is ContentCheck's check of a raw (uncompressed, not
// encrypted) disk image, for a writer that proves the image's bytes from
// the disk itself by its data ranges (readback.Ranges) and so has only
// its first MiB (head) to show: the partition table there and the image's
// length, size. It is nil for any other file.
func ImageCheck(setName, file string, size int64) (func(head []byte) error, error) {
	n, err := backupset.Parse(setName)
	if err != nil {
		return nil, err
	}
	if kindOf(n, n.String(), file) != kindDiskImage || backupset.IsEncrypted(file) || backupset.CompressionOf(file) != backupset.CompressNone {
		return nil, nil
	}
	// As checkContent: restore.CheckSet compares an uncompressed image's
	// size with the manifest's image_size.
	return func(head []byte) error { return checkImageHead(head, size, 0) }, nil
}

// checkTree checks an rsync tree: its listing's structure (every path
// inside the tree, in order, parents before children), its extras file
// against the listing's hashes, and the tree itself against the listing:
// re-listed when the set is local, else the content of every regular file
// read through fsys and hashed.
func (v *verifier) checkTree(t backupset.Tree) {
	stored, err := fs.ReadFile(v.fsys, t.Listing)
	if err != nil {
		v.r.fail(t.Listing, "%v", err)
		return
	}
	entries, err := readListing(stored)
	if err != nil {
		v.r.fail(t.Listing, "%v", err)
		return
	}
	if t.Extras != "" {
		extras, err := fs.ReadFile(v.fsys, t.Extras)
		if err != nil {
			v.r.fail(t.Extras, "%v", err)
			return
		}
		if err := treelist.CheckExtras(bytes.NewReader(stored), bytes.NewReader(extras)); err != nil {
			v.r.fail(t.Extras, "does not match the tree listing: %v", err)
			return
		}
		v.r.Checked = append(v.r.Checked, fmt.Sprintf("%s against %s (symlink targets and xattrs)", t.Extras, t.Listing))
	}
	if v.o.LocalDir == "" {
		if files, read, ok := v.checkTreeContent(t, entries, nil); ok {
			v.r.Checked = append(v.r.Checked, fmt.Sprintf("tree %s: content of %d files (%d bytes) against the listing; metadata from the listing (set not local)", t.Root, files, read))
		}
		return
	}
	if v.o.TreesListed {
		v.checkListedTree(t, entries)
		return
	}
	root := v.o.LocalDir
	var exclude func(string) bool
	if t.Root == "." || t.Root == "" {
		exclude = backupset.TreeExclude(v.name.Host)
	} else {
		root = path.Join(root, t.Root)
	}
	v.rep.Phase("verify tree "+t.Root, t.Bytes)
	var buf bytes.Buffer
	reuse, prev := v.previousTree(t.Root)
	st, err := treelist.WriteOptions(v.ctx, &buf, root, treelist.Options{Exclude: exclude, Reuse: reuse})
	if err != nil {
		v.r.fail(t.Root, "list tree: %v", err)
		return
	}
	v.rep.Add(st.Hashed)
	v.r.Bytes += st.Hashed
	d, err := treelist.Diff(bytes.NewReader(stored), &buf)
	if err != nil {
		v.r.fail(t.Listing, "%v", err)
		return
	}
	if d != "" {
		v.r.fail(t.Root, "tree differs from its listing: %s (listing vs tree)", d)
		return
	}
	if reuse != nil {
		v.r.Checked = append(v.r.Checked, fmt.Sprintf("tree %s (%d entries, %d bytes, %d of them read: the rest is hardlinks of %s)", t.Root, st.Entries, st.Bytes, st.Hashed, prev))
		return
	}
	v.r.Checked = append(v.r.Checked, fmt.Sprintf("tree %s (%d entries, %d bytes)", t.Root, st.Entries, st.Bytes))
}

// previousTree is for the verify of a new rsync set before its commit
// (in <host>/tmp/, where backupctl writes it) made with --link-dest: it
// finds the same tree in the previous set and returns its listing's
// hashes for the re-listing. A file that is the very inode of the
// previous set's file (an lstat there tells) is one rsync did not write
// in this run, and its content is what the previous set's listing says
// (checked when that set was verified); only what rsync wrote is read
// again. nil otherwise: a committed set (backupctl verify), or one whose
// previous set is gone, has every file read.
func (v *verifier) previousTree(root string) (*treelist.Reuse, string) {
	if v.prevSet == "" || v.o.LocalDir == "" || strings.ContainsAny(v.prevSet, `/\`) || v.prevSet == v.name.String() {
		return nil, ""
	}
	if n, err := backupset.Parse(v.prevSet); err != nil || n.Host != v.name.Host || n.Type != backupset.TypeRsync {
		return nil, ""
	}
	tmp := filepath.Dir(filepath.Clean(v.o.LocalDir))
	if filepath.Base(tmp) != backupset.TmpDir {
		return nil, ""
	}
	dir := filepath.Join(filepath.Dir(tmp), v.prevSet)
	m, _, err := backupset.ReadManifestIn(os.DirFS(dir), ".", v.name.Host)
	if err != nil {
		return nil, ""
	}
	for _, pt := range m.Trees {
		if pt.Root != root {
			continue
		}
		// The listing as the previous set's manifest recorded it,
		// or none.
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(pt.Listing)))
		if err != nil || !recorded(m, pt.Listing, b) {
			return nil, ""
		}
		tree := dir
		if root != "." && root != "" {
			tree = filepath.Join(dir, filepath.FromSlash(root))
		}
		reuse, err := treelist.NewReuse(tree, bytes.NewReader(b))
		if err != nil {
			return nil, ""
		}
		return reuse, v.prevSet
	}
	return nil, ""
}

// recorded reports whether b is the file name as m records it.
func recorded(m *backupset.Manifest, name string, b []byte) bool {
	sum := sha256.Sum256(b)
	for _, f := range m.Files {
		if f.Path == name {
			return f.Size == int64(len(b)) && strings.EqualFold(f.SHA256, hex.EncodeToString(sum[:]))
		}
	}
	return false
}

// readListing parses a listing and checks its structure (treelist.Checker).
func readListing(b []byte) ([]treelist.Entry, error) {
	var c treelist.Checker
	var out []treelist.Entry
	r := treelist.NewReader(bytes.NewReader(b))
	for {
		e, err := r.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if err := c.Check(e); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
}

// checkListedTree is checkTree of a local tree this run has just listed
// (Options.TreesListed): the content of what rsync wrote.
func (v *verifier) checkListedTree(t backupset.Tree, entries []treelist.Entry) {
	root := v.o.LocalDir
	if t.Root != "." && t.Root != "" {
		root = filepath.Join(root, filepath.FromSlash(t.Root))
	}
	reuse, prev := v.previousTree(t.Root)
	var mu sync.Mutex
	linked := 0
	skip := func(e treelist.Entry) (bool, error) {
		h, ok := reuse.Previous(root, e.Path)
		if !ok {
			return false, nil
		}
		if !strings.EqualFold(h, e.Hash) {
			return false, fmt.Errorf("%q: the listing records sha256 %s, but it is the previous set's file, whose listing records %s: %w", e.Path, e.Hash, h, treelist.ErrContent)
		}
		mu.Lock()
		linked++
		mu.Unlock()
		return true, nil
	}
	if reuse == nil {
		skip = nil
	}
	files, read, ok := v.checkTreeContent(t, entries, skip)
	if !ok {
		return
	}
	msg := fmt.Sprintf("tree %s (%d entries, %d bytes, metadata as this run listed it): content of %d files (%d bytes) read against the listing", t.Root, len(entries), t.Bytes, files-linked, read)
	if linked > 0 {
		msg += fmt.Sprintf(", %d hardlinks of %s against its listing", linked, prev)
	}
	v.r.Checked = append(v.r.Checked, msg)
}

// contentWorkers is how many files checkTreeContent reads at once: a
// network source answers each open after a round trip, so a few in
// flight hide the latency.
const contentWorkers = 4

// checkTreeContent reads every regular file of a tree that is not local
// (SFTP, SMB) and checks its size and SHA-256 against the listing. What
// such a server cannot keep (owners, modes, xattrs) is not checked here:
// the restore takes it from the listing and the extras file. skip, if
// not nil, tells a file not to read (or fails it). It returns the files
// checked and the bytes read, and whether all was well.
func (v *verifier) checkTreeContent(t backupset.Tree, entries []treelist.Entry, skip func(treelist.Entry) (bool, error)) (files int, read int64, ok bool) {
	sub := v.fsys
	if t.Root != "." && t.Root != "" {
		var err error
		if sub, err = fs.Sub(v.fsys, t.Root); err != nil {
			v.r.fail(t.Root, "%v", err)
			return 0, 0, false
		}
	}
	v.rep.Phase("verify tree "+t.Root, t.Bytes)
	content := treelist.NewContent(sub, entries, nil)
	ctx, cancel := context.WithCancel(v.ctx)
	defer cancel()
	jobs := make(chan treelist.Entry)
	var (
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
	)
	for range contentWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for e := range jobs {
				var n int64
				skipped, err := false, error(nil)
				if skip != nil {
					skipped, err = skip(e)
				}
				if !skipped && err == nil {
					n, err = content.Copy(ctx, e, progress.Writer{W: io.Discard, Rep: v.rep})
				}
				mu.Lock()
				read += n
				if err != nil && first == nil {
					first = err
					cancel()
				}
				mu.Unlock()
			}
		}()
	}
	for _, e := range entries {
		if e.Type != 'f' || e.Link != treelist.None {
			continue
		}
		files++
		select {
		case jobs <- e:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(jobs)
	wg.Wait()
	v.r.Bytes += read
	switch {
	case first != nil && v.ctx.Err() == nil:
		v.r.fail(t.Root, "%v", first)
	case first == nil && v.ctx.Err() == nil:
		return files, read, true
	}
	return files, read, false
}

// countReader counts, reports progress and stops on cancellation.
type countReader struct {
	ctx context.Context
	r   io.Reader
	rep progress.Reporter
	n   int64
}

func (c *countReader) Read(b []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(b)
	c.n += int64(n)
	c.rep.Add(int64(n))
	return n, err
}

// Dir verifies the set at a local path.
func Dir(ctx context.Context, dir string, o Options) (*Report, error) {
	o.LocalDir = dir
	return Set(ctx, os.DirFS(dir), filepath.Base(filepath.Clean(dir)), o)
}
