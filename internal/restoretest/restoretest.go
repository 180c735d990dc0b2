// Package restoretest proves that a backup set restores to a system that
// can start, on the Pi itself and without a spare card: it restores the
// set into a sparse image file in a work folder with the restore engine
// every restore uses, then judges the image as the test suite judges a
// restore (e2fsck -fn, fsck.vfat -n, the partition table, the ids that
// cmdline.txt and /etc/fstab name, and a random sample of files against
// the hashes the set carries), and removes the image.
//
// A check of the set's own checksums (verify) proves the set is readable;
// this proves it restores.
package restoretest

import (
	"bufio"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/blockdev"
	"github.com/pibackup/pibackup/internal/disklayout"
	"github.com/pibackup/pibackup/internal/payload"
	"github.com/pibackup/pibackup/internal/progress"
	"github.com/pibackup/pibackup/internal/restore"
	"github.com/pibackup/pibackup/internal/size"
	"github.com/pibackup/pibackup/internal/treelist"
)

// Options are the inputs of Run.
type Options struct {
	SetDir string // the set folder, BACKUPDIR/<host>/<set>
	// Set and SetName are a set read through a store (a server), when
	// SetDir is "".
	Set     fs.FS
	SetName string
	WorkDir string // where the image is made (default /var/tmp)
	Sample  int    // files compared with the set's hashes (default 200)
	// MaxBytes bounds the disk space the image may take (0: no bound but
	// the free space of WorkDir).
	MaxBytes int64
	Log      *slog.Logger
	Progress progress.Reporter
	Rand     *rand.Rand // the sample; nil seeds from the clock
	// Keys open an encrypted set (payload.LoadKeys); nil for none.
	Keys *payload.Keys
}

// Check is one judgement of the restored image.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

// Result is what Run found.
type Result struct {
	Set      string        `json:"set"`
	Duration time.Duration `json:"duration_ns"`
	Checks   []Check       `json:"checks"`
}

// OK reports whether every check passed.
func (r *Result) OK() bool {
	for _, c := range r.Checks {
		if !c.OK {
			return false
		}
	}
	return len(r.Checks) > 0
}

// Failed are the checks that did not pass.
func (r *Result) Failed() []Check {
	var out []Check
	for _, c := range r.Checks {
		if !c.OK {
			out = append(out, c)
		}
	}
	return out
}

func (r *Result) add(name string, ok bool, format string, a ...any) {
	r.Checks = append(r.Checks, Check{Name: name, OK: ok, Detail: fmt.Sprintf(format, a...)})
}

// ErrNoSpace means the work folder cannot hold the image.
var ErrNoSpace = errors.New("not enough space for the test image")

// ErrOverLimit means the image needs more than the space allowed for it
// (Options); it comes with ErrNoSpace.
var ErrOverLimit = errors.New("the image needs more than the space allowed")

// imagePrefix names the work images, with the PID of the run that made
// them so a later run can tell a killed run's leftover from a live one.
const imagePrefix = "pibackup-restore-test-"

// Run restores the set into a work image, judges it and removes it. An
// error means the test could not be carried out (no space, an unreadable
// set folder); a set that does not restore or does not pass a check is a
// Result with failed checks.
func Run(ctx context.Context, o Options) (*Result, error) {
	start := time.Now()
	if o.WorkDir == "" {
		o.WorkDir = "/var/tmp"
	}
	if o.Sample <= 0 {
		o.Sample = 200
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Rand == nil {
		o.Rand = rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(os.Getpid())))
	}
	fsys, setName, localDir := o.Set, o.SetName, ""
	if fsys == nil {
		setDir, err := filepath.Abs(o.SetDir)
		if err != nil {
			return nil, err
		}
		fsys, setName, localDir = os.DirFS(setDir), filepath.Base(setDir), setDir
	}
	name, err := backupset.Parse(setName)
	if err != nil {
		return nil, fmt.Errorf("restore test: %s is not a backup set folder: %w", cmp.Or(o.SetDir, setName), err)
	}
	if err := os.MkdirAll(o.WorkDir, 0o700); err != nil {
		return nil, fmt.Errorf("restore test: work folder: %w", err)
	}
	for _, p := range CleanStale(o.WorkDir) {
		o.Log.Info("removed the work image of a killed restore test", "file", p)
	}
	man, _, merr := backupset.ReadManifestIn(fsys, ".", name.Host)
	if merr != nil && !errors.Is(merr, os.ErrNotExist) {
		o.Log.Warn("manifest unreadable; testing the set as raspiBackup's", "err", merr)
		man = nil
	}
	diskSize, need := imageSize(fsys, man)
	if err := checkSpace(o.WorkDir, need, o.MaxBytes); err != nil {
		return nil, err
	}

	img := filepath.Join(o.WorkDir, imagePrefix+strconv.Itoa(os.Getpid())+".img")
	os.Remove(img) // our own PID: a leftover of a run before a reboot
	defer os.Remove(img)
	res := &Result{Set: setName}
	defer func() { res.Duration = time.Since(start) }()

	plan, err := restore.NewPlan(ctx, restore.Options{
		Set: fsys, SetName: setName, LocalDir: localDir,
		Target: img, Size: diskSize, KeepIDs: true, Keys: o.Keys, Log: o.Log, Progress: o.Progress,
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		res.add("restore", false, "the restore refuses the set: %v", err)
		return res, nil
	}
	rr, err := plan.Execute(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		res.add("restore", false, "%v", err)
		return res, nil
	}
	res.add("restore", true, "%s written in %s", size.Format(rr.Bytes), rr.Duration.Round(100*time.Millisecond))
	if !rr.Verified {
		res.add("restore verified", false, "the restore could not verify what it wrote (see the log)")
	}
	if err := judge(ctx, res, img, fsys, name.Host, man, o); err != nil {
		return nil, err
	}
	return res, nil
}

// CleanStale removes the work images in dir of runs that no longer exist
// (killed, or before a reboot) and returns their paths.
func CleanStale(dir string) []string {
	matches, _ := filepath.Glob(filepath.Join(dir, imagePrefix+"*.img"))
	var out []string
	for _, m := range matches {
		pid, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(m), imagePrefix), ".img"))
		if err != nil || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		if os.Remove(m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// imageSize is the size of the work image (the source disk's, so nothing
// is resized and the ids stay) and the space it will take.
func imageSize(fsys fs.FS, man *backupset.Manifest) (size, need int64) {
	if man != nil && man.Disk.Size > 0 {
		size = man.Disk.Size
		if man.ImageSize > size {
			size = man.ImageSize
		}
		var used int64
		for _, p := range man.Disk.Partitions {
			if p.FSUsed > 0 {
				used += p.FSUsed
			} else {
				used += p.Size
			}
		}
		return size, used + used/10 + 64<<20
	}
	// A set without a manifest (raspiBackup's): the sfdisk dump gives the
	// disk; else (a dd set) the image is at most what a card holds.
	if d := sfdiskOf(fsys); d != nil {
		size = d.Size
		for _, p := range d.Partitions {
			size = max(size, p.Start+p.Size)
		}
	}
	if size == 0 {
		size = 256 << 30 // sparse: only what is written takes space
	}
	// Compressed payloads grow about three times when written out.
	var payload int64
	entries, _ := fs.ReadDir(fsys, ".")
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() {
			payload += fi.Size()
		}
	}
	return size, 3*payload + 64<<20
}

func sfdiskOf(fsys fs.FS) *backupset.Disk {
	matches, _ := fs.Glob(fsys, "*"+backupset.SuffixSfdisk)
	if len(matches) == 0 {
		return nil
	}
	f, err := fsys.Open(matches[0])
	if err != nil {
		return nil
	}
	defer f.Close()
	d, err := disklayout.ParseSfdisk(f)
	if err != nil {
		return nil
	}
	return d
}

func checkSpace(dir string, need, maxBytes int64) error {
	if maxBytes > 0 && need > maxBytes {
		return fmt.Errorf("%w: %w: about %s, more than %s", ErrNoSpace, ErrOverLimit, size.Format(need), size.Format(maxBytes))
	}
	free, err := blockdev.FreeBytes(dir)
	if err != nil {
		return fmt.Errorf("restore test: free space of %s: %w", dir, err)
	}
	if free < need {
		return fmt.Errorf("%w: %s has %s free, the image needs about %s", ErrNoSpace, dir,
			size.Format(free), size.Format(need))
	}
	return nil
}

// judge runs the checks of the restored image.
func judge(ctx context.Context, res *Result, img string, fsys fs.FS, host string, man *backupset.Manifest, o Options) error {
	d, err := disklayout.ReadFile(img)
	if err != nil || len(d.Partitions) == 0 {
		res.add("partition table", false, "the restored image has no readable partition table: %v", err)
		return nil
	}
	var boot, root *backupset.Partition
	for i := range d.Partitions {
		p := &d.Partitions[i]
		switch {
		case boot == nil && p.FSType == "vfat":
			boot = p
		case root == nil && strings.HasPrefix(p.FSType, "ext"):
			root = p
		}
	}
	switch {
	case root == nil:
		res.add("partition table", false, "%d partitions, none with an ext2/3/4 root filesystem", len(d.Partitions))
	case boot == nil:
		res.add("partition table", false, "%d partitions, no FAT boot partition", len(d.Partitions))
	default:
		res.add("partition table", true, "%s table, %d partitions: boot %d (vfat), root %d (%s)", d.Table, len(d.Partitions), boot.Number, root.Number, root.FSType)
	}
	for _, p := range d.Partitions {
		switch {
		case strings.HasPrefix(p.FSType, "ext"):
			out, err := tool(ctx, "e2fsck", "-fn", fmt.Sprintf("%s?offset=%d", img, p.Start))
			res.add(fmt.Sprintf("e2fsck partition %d", p.Number), err == nil, "%s", lastLines(out, err))
		case p.FSType == "vfat":
			err := withPartition(ctx, img, &p, func(dev string) error {
				out, err := tool(ctx, "fsck.vfat", "-n", dev)
				if err != nil {
					return fmt.Errorf("%s", lastLines(out, err))
				}
				return nil
			})
			res.add(fmt.Sprintf("fsck.vfat partition %d", p.Number), err == nil, "%s", errText(err, "clean"))
		}
	}
	if boot == nil || root == nil {
		return nil
	}
	ids := idsOf(d)
	cmdline, err := readFATFile(img, boot, "cmdline.txt")
	if err != nil {
		res.add("cmdline.txt", false, "cannot read cmdline.txt from the boot partition: %v", err)
	} else {
		checkRefs(res, "cmdline.txt", cmdlineRefs(cmdline), ids)
	}
	return withPartition(ctx, img, root, func(dev string) error {
		mnt, unmount, err := blockdev.MountExt4(dev, true)
		if err != nil {
			res.add("root filesystem", false, "cannot mount it read-only: %v", err)
			return nil
		}
		defer unmount()
		fstab, err := readInRoot(mnt, "etc/fstab")
		if err != nil {
			res.add("/etc/fstab", false, "%v", err)
		} else {
			checkRefs(res, "/etc/fstab", fstabRefs(fstab), ids)
		}
		sampleFiles(ctx, res, mnt, fsys, man, o)
		return nil
	})
}

// idsOf collects what the restored disk can be named by.
func idsOf(d *backupset.Disk) map[string]bool {
	ids := map[string]bool{}
	for _, p := range d.Partitions {
		if p.PartUUID != "" {
			ids["PARTUUID="+strings.ToLower(p.PartUUID)] = true
		}
		if p.UUID != "" {
			ids["UUID="+strings.ToLower(p.UUID)] = true
		}
		if p.Label != "" {
			ids["LABEL="+p.Label] = true
		}
	}
	return ids
}

// checkRefs adds one check: every id-style reference must name something
// on the restored disk.
func checkRefs(res *Result, what string, refs []string, ids map[string]bool) {
	var missing []string
	for _, r := range refs {
		k, v, _ := strings.Cut(r, "=")
		key := k + "=" + v
		if k != "LABEL" {
			key = k + "=" + strings.ToLower(v)
		}
		if !ids[key] {
			missing = append(missing, r)
		}
	}
	if len(missing) > 0 {
		res.add(what, false, "names %s, which no partition of the restored disk has: the restored system would not find it", strings.Join(missing, ", "))
		return
	}
	res.add(what, true, "%d references, all on the restored disk", len(refs))
}

// cmdlineRefs are the PARTUUID=/UUID=/LABEL= values of root= and resume=.
func cmdlineRefs(b []byte) []string {
	var out []string
	for _, f := range strings.Fields(string(b)) {
		k, v, ok := strings.Cut(f, "=")
		if !ok || (k != "root" && k != "resume") {
			continue
		}
		if isRef(v) {
			out = append(out, v)
		}
	}
	return out
}

// fstabRefs are the id-style first fields of fstab lines.
func fstabRefs(b []byte) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if isRef(f[0]) {
			out = append(out, f[0])
		}
	}
	return out
}

func isRef(v string) bool {
	for _, p := range []string{"PARTUUID=", "UUID=", "LABEL="} {
		if strings.HasPrefix(v, p) {
			return true
		}
	}
	return false
}

// sampleFiles compares a random sample of the restored files (always
// /etc/fstab among them) with the hashes the set carries: an rsync set's
// listing. Tar and dd payloads were checked whole against the manifest's
// SHA-256 while the restore read them; a set without a manifest has no
// hashes to compare with.
func sampleFiles(ctx context.Context, res *Result, mnt string, fsys fs.FS, man *backupset.Manifest, o Options) {
	var listing string
	if man != nil {
		for _, t := range man.Trees {
			if t.Root == "." {
				listing = t.Listing
			}
		}
	}
	if listing == "" {
		how := "no per-file hashes in this set"
		if man != nil {
			how = "the payload was checked whole against the manifest's SHA-256 while it was restored"
		}
		res.add("sample of files", true, "not applicable: %s", how)
		return
	}
	hashes, err := listingHashes(fsys, listing)
	if err != nil {
		res.add("sample of files", false, "read the listing %s: %v", listing, err)
		return
	}
	paths := make([]string, 0, len(hashes))
	for p := range hashes {
		paths = append(paths, p)
	}
	slices.Sort(paths) // the sample depends on the seed only
	o.Rand.Shuffle(len(paths), func(i, j int) { paths[i], paths[j] = paths[j], paths[i] })
	sample := paths[:min(o.Sample, len(paths))]
	if _, ok := hashes["etc/fstab"]; ok && !slices.Contains(sample, "etc/fstab") {
		sample = append(sample, "etc/fstab")
	}
	var bad []string
	for _, p := range sample {
		if ctx.Err() != nil {
			return
		}
		got, err := hashInRoot(mnt, p)
		switch {
		case err != nil:
			bad = append(bad, fmt.Sprintf("%s (%v)", p, err))
		case got != hashes[p]:
			bad = append(bad, p+" (content differs from the listing)")
		}
	}
	if len(bad) > 0 {
		res.add("sample of files", false, "%d of %d files differ: %s", len(bad), len(sample), strings.Join(bad[:min(len(bad), 5)], "; "))
		return
	}
	res.add("sample of files", true, "%d files equal their hashes in %s", len(sample), listing)
}

// listingHashes reads the regular files' hashes of a tree listing.
func listingHashes(fsys fs.FS, name string) (map[string]string, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	first := true
	for sc.Scan() {
		if first {
			first = false
			if sc.Text() == treelist.Header {
				continue
			}
		}
		e, err := treelist.ParseLine(sc.Text())
		if err != nil {
			return nil, err
		}
		if e.Type == 'f' && e.Hash != treelist.None {
			out[e.Path] = e.Hash
		}
	}
	return out, sc.Err()
}

func hashInRoot(root, rel string) (string, error) {
	f, err := restore.OpenInRoot(root, rel)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func readInRoot(root, rel string) ([]byte, error) {
	f, err := restore.OpenInRoot(root, rel)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 1<<20))
}

// withPartition attaches partition p of img read-only for fn.
func withPartition(ctx context.Context, img string, p *backupset.Partition, fn func(dev string) error) error {
	a, err := blockdev.AttachPartition(ctx, img, 0, p.Start, p.Size, true)
	if err != nil {
		return err
	}
	defer a.Detach()
	return fn(a.Path)
}

func errText(err error, ok string) string {
	if err == nil {
		return ok
	}
	return err.Error()
}

// lastLines is the end of a tool's output, for a check's detail.
func lastLines(out []byte, err error) string {
	s := strings.TrimSpace(string(out))
	if i := strings.LastIndex(s, "\n"); i >= 0 && err == nil {
		s = s[i+1:]
	}
	if len(s) > 400 {
		s = "…" + s[len(s)-400:]
	}
	if err != nil {
		return fmt.Sprintf("%v: %s", err, s)
	}
	return s
}
