// Package backup is the backup engine: it writes one backup set in
// raspiBackup's layout (dd, ddz, tar, tgz, rsync; normal and
// partition-oriented mode) plus our manifest, from the running system or
// from an unmounted disk or image (--source-disk).
//
// Every file of a set is created through a store.Store: a local folder
// or a server. On stores that rename, a set is written under
// <host>/tmp/<name>/ and renamed into place only when it is complete,
// verified, its manifest written and everything durable; on stores that
// cannot (S3), it is written in place and its manifest, written last
// after the set verified, makes it a set. On any error or cancellation
// the partial set is removed; older sets are never touched. A flock
// keeps two runs of a host apart: <host>/.backupctl.lock in a local
// folder, a lock file under Deps.LockDir named for the server's folder
// otherwise. The layout is documented in docs/FORMAT.md.
package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/blockdev"
	"github.com/pibackup/pibackup/internal/compress"
	"github.com/pibackup/pibackup/internal/payload"
	"github.com/pibackup/pibackup/internal/progress"
	"github.com/pibackup/pibackup/internal/readback"
	"github.com/pibackup/pibackup/internal/size"
	"github.com/pibackup/pibackup/internal/store"
)

// Options says what to back up and how; it mirrors `backupctl backup`.
type Options struct {
	// Target is BACKUPDIR, the set goes to BACKUPDIR/<host>/<name>: the
	// local folder opened when Deps.Store is nil, else only named in
	// messages.
	Target string

	Type backupset.Type // dd, ddz, tar, tgz, rsync
	// Compression for dd and tar: "" is the type's own (none for dd, tar;
	// gzip for ddz, tgz). gzip turns dd into ddz and tar into tgz; zstd
	// makes dd a ddz with .img.zst and keeps tar with .tar.zst.
	Compression        backupset.Compression
	UsedPartitionsOnly bool     // dd: stop at the end of the last partition
	Partitions         []int    // partition-oriented mode: these partitions
	AllPartitions      bool     // partition-oriented mode: every partition ("*")
	Snapshot           string   // -M text: a named set, never recycled
	Excludes           []string // path globs, see CheckExclude
	SourceDisk         string   // back up this unmounted disk or image instead of the running system
	DryRun             bool     // check and print the plan, write nothing
	BootTar            bool     // boot partition as <host>-backup.tmg instead of .img
	// CopyBootFiles stores the boot files of normal mode (boot image or
	// .tmg, .sfdisk, .mbr) in every set even when they equal the previous
	// set's; by default they are hardlinked to it (raspiBackup's
	// DEFAULT_LINK_BOOTPARTITIONFILES=1), which needs a target that can
	// hardlink and ties the two sets' copies together.
	CopyBootFiles bool
	FullRead      bool   // images read every block, as dd does, not only those filesystems use
	Hostname      string // default: /etc/hostname of the source root
	ToolVersion   string // recorded in the manifest
	// Encrypt, if set, encrypts every payload (compressed first) with age
	// into <name>.age; layout files, the manifest and the log stay
	// readable. rsync sets cannot be encrypted.
	Encrypt *payload.Sealer
}

// PartitionMode reports whether opts select partition-oriented mode.
func (o Options) PartitionMode() bool { return o.AllPartitions || len(o.Partitions) > 0 }

// Deps are the engine's connections to the world.
type Deps struct {
	Log      *slog.Logger      // nil discards
	Progress progress.Reporter // nil reports nothing
	Out      io.Writer         // the plan and the result summary; nil discards
	Sys      blockdev.Sys      // kernel paths; zero value means the running kernel's
	Now      func() time.Time  // nil means time.Now
	// Store is where the set goes (store.Open of BACKUPDIR); nil opens
	// Options.Target as a local folder. The caller closes it.
	Store store.Store
	// LockDir holds the locks of runs into servers (one Pi per host
	// folder, see store's package comment); "" is /run/backupctl.
	LockDir string
	// BeforeCommit, if set, is called with the complete set, after
	// everything is written and durable and before the set is committed
	// (renamed into place, or its manifest written). An error fails the
	// run and the set is removed; backupctl verifies the set here.
	BeforeCommit func(ctx context.Context, set Staged) error
	// ContentCheck, if set, is verify's content check of a file of a set
	// (verify.ContentCheck; the engine does not import verify). With it,
	// payloads written to a local folder are read back from the disk
	// while they are written and checked, and Staged.Proofs says so.
	ContentCheck func(setName, file string, imageSize int64) (func(io.Reader) error, error)
	// afterWriteback, if set, is called when bytes [off, off+n) of the
	// local file path were written back to the disk and dropped from the
	// page cache, right before they are read back: tests corrupt them.
	afterWriteback func(path string, off, n int64) error
	// ImageCheck, if set with ContentCheck, is verify's check of a raw
	// disk image of size bytes, given its first MiB (verify.ImageCheck):
	// with it, a raw image written sparse to a local folder is proven
	// from the disk by its data ranges (sparseproof.go).
	ImageCheck func(setName, file string, size int64) (func(head []byte) error, error)
	// beforeRangesRead, if set, is called with the path of a sparse
	// image whose pages were dropped, before its ranges are read back.
	beforeRangesRead func(path string) error
}

// Staged is a complete set before its commit, as BeforeCommit sees it.
type Staged struct {
	// FS is the set's folder. On a store that cannot rename, the
	// manifest is not written yet: FS serves it from memory.
	FS       fs.FS
	Name     string // the set's name
	Dir      string // where it is, for messages
	LocalDir string // its local path; "" on a server
	Manifest *backupset.Manifest
	// Store and Rel are the store and the set's folder in it, for
	// files that go with the set but not in its manifest (the run log).
	Store store.Store
	Rel   string
	// Proofs are the files proven while they were written (read back
	// from the disk), by name, for the verify before the commit
	// (verify.Options.Proofs).
	Proofs map[string]readback.Proof
}

// Result describes a finished (or, with DryRun, planned) set.
type Result struct {
	Plan     *Plan
	SetDir   string // the completed set folder; "" after a dry run
	Manifest *backupset.Manifest
}

// ParsePartitions parses the -P list: "1 2 5" (spaces or commas) or "*".
func ParsePartitions(s string) (nums []int, all bool, err error) {
	s = strings.TrimSpace(s)
	if s == "*" {
		return nil, true, nil
	}
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' }) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > 128 {
			return nil, false, fmt.Errorf("partition %q: want numbers 1..128 or \"*\"", f)
		}
		if !slices.Contains(nums, n) {
			nums = append(nums, n)
		}
	}
	if len(nums) == 0 {
		return nil, false, errors.New(`no partitions given: want e.g. "1 2" or "*"`)
	}
	slices.Sort(nums)
	return nums, false, nil
}

// ResolveType turns the -t/-z pair into the set type, the compression and
// the payload extension (raspiBackup: -t dd -z is ddz, -t tar -z is tgz;
// zstd keeps tar as tar with .tar.zst and makes dd a ddz with .img.zst).
func ResolveType(t backupset.Type, c backupset.Compression) (backupset.Type, backupset.Compression, string, error) {
	switch {
	case t == backupset.TypeDD && c == backupset.CompressGzip:
		t = backupset.TypeDDZ
	case t == backupset.TypeDD && c == backupset.CompressZstd:
		t = backupset.TypeDDZ
	case t == backupset.TypeTar && c == backupset.CompressGzip:
		t = backupset.TypeTGZ
	}
	if c == "" {
		switch t {
		case backupset.TypeDDZ, backupset.TypeTGZ:
			c = backupset.CompressGzip
		default:
			c = backupset.CompressNone
		}
	}
	ext, err := backupset.PayloadExt(t, c)
	if err != nil {
		return "", "", "", err
	}
	return t, c, ext, nil
}

// Run writes one backup set (or, with opts.DryRun, only plans it): it is
// Prepare, Write and Close in one call.
func Run(ctx context.Context, opts Options, deps Deps) (*Result, error) {
	p, err := Prepare(ctx, opts, deps)
	if p == nil {
		return nil, err
	}
	if err == nil && !opts.DryRun {
		_, err = p.Write(ctx)
	}
	if cerr := p.Close(); cerr != nil {
		p.r.log.Error("remove partial set", "err", cerr)
	}
	return p.res, err
}

// Prepared is a set that passed every check made before the first byte:
// its source is open, the host folder is locked and the set's folder
// exists (empty) under <host>/tmp/. The caller can open its run log in
// TmpDir and stop services before Write reads any data, so a failed
// pre-flight check never touches the services. Close always follows.
type Prepared struct {
	r   *runner
	res *Result

	unlock  func()
	written bool // Write moved the set into place
	closed  bool
}

// Prepare makes every check that needs no writing, takes the host lock
// and creates the set's folder under <host>/tmp/. With opts.DryRun it
// only plans: the result holds the plan, nothing is locked or created,
// and the error says why the run would fail. On error the returned
// Prepared (possibly nil) needs only Close.
func Prepare(ctx context.Context, opts Options, deps Deps) (*Prepared, error) {
	r := &runner{opts: opts, deps: deps, log: deps.Log, rep: progress.OrNop(deps.Progress), out: deps.Out}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.out == nil {
		r.out = io.Discard
	}
	r.deps.Sys = r.deps.Sys.OrHost()
	if r.deps.Now == nil {
		r.deps.Now = time.Now
	}
	p := &Prepared{r: r}
	err := p.prepare(ctx)
	if err != nil && r.src == nil {
		return nil, err
	}
	return p, err
}

// TmpDir is the folder the set is written in (<host>/tmp/<name>, or on
// a store that cannot rename, <host>/<name>); a local path or a server's
// URL with the path.
func (p *Prepared) TmpDir() string { return p.r.tmpDir }

// FinalDir is where the set appears once it is complete.
func (p *Prepared) FinalDir() string { return p.r.finalDir }

// Store is the store the set is written to.
func (p *Prepared) Store() store.Store { return p.r.st }

// Name is the set's name.
func (p *Prepared) Name() backupset.Name { return p.r.name }

// HostDir is the host's folder in the target.
func (p *Prepared) HostDir() string { return p.r.hostDir }

// Payload is the path the set's main payload file will have once the set
// is in place (the image or archive), or "" for an rsync set and
// partition-oriented mode, which have no single payload file.
func (p *Prepared) Payload() string {
	r := p.r
	if r.typ == backupset.TypeRsync || r.opts.PartitionMode() {
		return ""
	}
	name := r.name.String() + r.ext
	if r.opts.Encrypt != nil {
		name += backupset.EncryptedExt // as the plan names it
	}
	return filepath.Join(r.finalDir, name)
}

// SetLog makes Write log to l (the run log, opened in TmpDir).
func (p *Prepared) SetLog(l *slog.Logger) {
	if l != nil {
		p.r.log = l
	}
}

// Close releases the lock and the source and, unless Write completed,
// removes the set's folder from <host>/tmp/. The error says that the
// partial set could not be removed (a target that turned read-only): it
// stays in tmp/, where no listing takes it for a set, until the next run
// removes it. It is safe to call twice; the second call returns nil.
func (p *Prepared) Close() error {
	if p == nil || p.closed {
		return nil
	}
	p.closed = true
	r := p.r
	var err error
	if !p.written && r.tmpRel != "" {
		// Also after a cancellation: the removal must still happen.
		if rerr := r.st.RemoveAll(context.Background(), r.tmpRel); rerr != nil {
			err = fmt.Errorf("remove partial set %s: %w", r.tmpDir, rerr)
		}
		r.removeTmpIfEmpty()
	}
	if p.unlock != nil {
		p.unlock()
	}
	if r.src != nil {
		if cerr := r.src.close(); cerr != nil {
			r.log.Warn("release source", "err", cerr)
		}
	}
	if r.ownStore && r.st != nil {
		r.st.Close()
	}
	return err
}

// removeTmpIfEmpty removes <host>/tmp when nothing is left in it.
func (r *runner) removeTmpIfEmpty() {
	if !r.st.CanRename() {
		return // no tmp/ on such stores
	}
	tmp := path.Join(r.host, backupset.TmpDir)
	if r.local != "" {
		os.Remove(filepath.Join(r.local, filepath.FromSlash(tmp))) // only if empty, in one step
		return
	}
	if es, err := fs.ReadDir(r.st.FS(), tmp); err == nil && len(es) == 0 {
		r.st.RemoveAll(context.Background(), tmp)
	}
}

func (p *Prepared) prepare(ctx context.Context) error {
	r := p.r
	if err := r.checkOptions(); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: backupctl backup must run as root (it reads raw disks and keeps every owner)", ErrPreflight)
	}
	r.st = r.deps.Store
	if r.st == nil {
		st, err := store.OpenDir(r.opts.Target)
		if err != nil {
			return fmt.Errorf("%w: backup folder %s does not exist or is not a folder; create or mount it first", ErrPreflight, r.opts.Target)
		}
		r.st, r.ownStore = st, true
	}
	r.local = r.st.Local()
	if r.local != "" {
		r.opts.Target = r.local
	} else {
		r.opts.Target = r.st.String()
	}
	if r.typ == backupset.TypeRsync && r.local == "" {
		return fmt.Errorf("%w: %w: an rsync set is a tree of files hardlinked to the previous set, which needs a filesystem; "+
			"back up to %s with -t tgz (or tar, dd, ddz), or mount the share (sshfs, mount -t cifs) and give the mount point",
			ErrPreflight, ErrRsyncRemote, r.opts.Target)
	}
	var err error
	for _, mp := range cleanStaleMounts(r.deps.Sys) {
		r.log.Info("removed a source mount left by a killed backupctl run", "mount", mp)
	}

	var src *source
	if r.opts.SourceDisk != "" {
		src, err = openOffline(r.opts.SourceDisk, r.deps.Sys)
	} else {
		src, err = openRunning(r.deps.Sys, r.log)
	}
	if err != nil {
		return err
	}
	r.src = src
	if err := r.identify(); err != nil {
		return err
	}
	if err := r.checkTargetNotSource(); err != nil {
		return err
	}
	if err := r.findPrevious(); err != nil {
		return err
	}
	if err := r.makePlan(); err != nil {
		return err
	}
	p.res = &Result{Plan: r.plan}
	if r.opts.DryRun {
		r.plan.Print(r.out)
		if r.lockHeld() {
			return fmt.Errorf("%s: %w", r.hostDir, ErrLocked)
		}
		if r.plan.Free >= 0 && r.plan.Needed > r.plan.Free {
			return r.noSpaceError()
		}
		return nil
	}
	if r.plan.Free >= 0 && r.plan.Needed > r.plan.Free {
		return r.noSpaceError()
	}
	work := r.host
	if r.st.CanRename() {
		work = path.Join(r.host, backupset.TmpDir)
	}
	if err := r.st.MkdirAll(ctx, work); err != nil {
		return fmt.Errorf("%w: create %s: %w", ErrPreflight, r.hostDir, err)
	}
	if p.unlock, err = r.lock(); err != nil {
		return err
	}
	r.cleanStaleSets(ctx)
	if r.typ == backupset.TypeRsync {
		if err := probeTarget(r.hostDir); err != nil {
			return err
		}
	}
	planned := r.name.String()
	if err := r.claimName(ctx); err != nil {
		return err
	}
	if r.name.String() != planned {
		// Another set of this host got the same second: the payload names
		// in the plan carry the set name, so plan again under the new one.
		if err := r.makePlan(); err != nil {
			return err
		}
		p.res.Plan = r.plan
	}
	return nil
}

// Write writes the set into TmpDir, writes its manifest, calls
// Deps.BeforeCommit and moves the set into place. On error the partial
// set is left for Close to remove (a caller may first save its run log).
func (p *Prepared) Write(ctx context.Context) (res *Result, err error) {
	r := p.r
	if p.closed || r.tmpDir == "" || p.written {
		return nil, errors.New("BUG: Write on a set that is not prepared")
	}
	defer func() {
		if err != nil && ctx.Err() != nil && !errors.Is(err, context.Canceled) {
			err = fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
	}()
	r.log.Info("backing up", "set", r.name.String(), "source", r.src.path)
	if r.src.running {
		// The services are stopped now: what they wrote last reaches the
		// disk (and the journal) before anything is read, so an image of
		// the running system holds their files as they were at the stop.
		r.log.Debug("sync before reading the running system")
		syncAll()
	}
	if err := r.writeSet(ctx); err != nil {
		return p.res, err
	}
	if err := r.finish(ctx); err != nil {
		return p.res, err
	}
	p.written = true
	p.res.SetDir, p.res.Manifest = r.finalDir, &r.man
	return p.res, nil
}

// runner holds the state of one run.
type runner struct {
	opts Options
	// proofs are the files read back from the disk while they were
	// written (Staged.Proofs), by name in the set.
	proofs map[string]readback.Proof
	deps   Deps
	log    *slog.Logger
	rep    progress.Reporter
	out    io.Writer

	typ  backupset.Type
	comp backupset.Compression
	ext  string

	st       store.Store
	ownStore bool   // opened by Prepare from Options.Target
	local    string // st.Local(): the folder's path here, "" on a server

	src  *source
	name backupset.Name
	host string
	// The set's folders as names in the store (tmpRel is where it is
	// written: <host>/tmp/<name>, or <host>/<name> on a store that
	// cannot rename), and as the user reads them (local paths, or the
	// store's URL and the name).
	tmpRel, finalRel string
	hostDir          string
	tmpDir, finalDir string
	prev             *previous
	excludes         []string // user excludes, checked
	man              backupset.Manifest
	plan             *Plan
}

// previous is the newest complete set of the same series: the link-dest
// of rsync and the source of boot-file hardlinks.
type previous struct {
	name     string
	rel      string              // its folder in the store
	dir      string              // its local path; "" on a server
	manifest *backupset.Manifest // nil for sets made by raspiBackup
}

// where is the store name rel as the user reads it: a local path, or
// the server's folder and the name.
func (r *runner) where(rel string) string {
	if r.local != "" {
		return filepath.Join(r.local, filepath.FromSlash(rel))
	}
	return r.st.String() + "/" + rel
}

// list lists the sets under dir in the store. On a store that cannot
// rename, a set folder without its manifest is one being written.
func (r *runner) list(dir string) (*backupset.Listing, error) {
	return backupset.ListOptions{ManifestLast: !r.st.CanRename()}.List(r.st.FS(), dir)
}

func (r *runner) noSpaceError() error {
	return fmt.Errorf("%w: %w: the set needs about %s, %s has %s free", ErrPreflight, ErrNoSpace,
		size.Format(r.plan.Needed), r.opts.Target, size.Format(r.plan.Free))
}

// OptionError is a combination of Options that does not go together,
// found before anything is opened. Options names the fields involved
// (as in Options: "BootTar", "Partitions", "Type", ...), so the CLI can
// name its flags and another front end its own controls. It is a
// preflight error.
type OptionError struct {
	Options []string
	Why     string
}

func (e *OptionError) Error() string { return e.Why }

// Unwrap makes an OptionError a preflight error.
func (e *OptionError) Unwrap() error { return ErrPreflight }

// checkOptions validates option combinations before anything is opened.
func (r *runner) checkOptions() error {
	o := r.opts
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrPreflight, fmt.Sprintf(format, args...))
	}
	var err error
	if r.typ, r.comp, r.ext, err = ResolveType(o.Type, o.Compression); err != nil {
		return bad("%v", err)
	}
	dd := r.typ == backupset.TypeDD || r.typ == backupset.TypeDDZ
	conflict := func(why string, options ...string) error {
		return &OptionError{Options: options, Why: why}
	}
	switch {
	case o.Target == "":
		return bad("no backup folder given")
	case o.PartitionMode() && dd:
		return conflict(fmt.Sprintf("partition-oriented mode works with tar, tgz and rsync, not %s", r.typ), "Partitions", "Type")
	case o.PartitionMode() && o.BootTar:
		return conflict("a tar of the boot partition is for normal mode; partition-oriented mode already saves each partition as a tar or tree", "BootTar", "Partitions")
	case o.UsedPartitionsOnly && !dd:
		return conflict("stopping the image at the last partition is for dd and ddz", "UsedPartitionsOnly", "Type")
	case o.BootTar && dd:
		return conflict("a tar of the boot partition is for tar, tgz and rsync sets; a dd image holds the boot partition", "BootTar", "Type")
	case o.FullRead && (o.PartitionMode() || o.BootTar):
		return conflict("reading every block is for images (dd, ddz and the boot partition image of tar and rsync sets); partition-oriented mode and a boot partition tar write none", "FullRead", "Partitions", "BootTar")
	case len(o.Excludes) > 0 && dd:
		return conflict("excludes do not apply to dd images", "Excludes", "Type")
	case o.Encrypt != nil && r.typ == backupset.TypeRsync:
		return conflict("an rsync set is a tree of plain files and cannot be encrypted; a tgz or tar.zst set can", "Encrypt", "Type")
	}
	if o.Snapshot != "" && backupset.SnapshotTag(o.Snapshot) == "" {
		return bad("snapshot name %q is empty after cleaning", o.Snapshot)
	}
	for _, p := range o.Excludes {
		if err := CheckExclude(p); err != nil {
			return bad("%v", err)
		}
	}
	r.excludes = o.Excludes
	return nil
}

// identify finds the host name and OS release of the source and names the
// set.
func (r *runner) identify() error {
	host := r.opts.Hostname
	if host == "" && r.src.rootDir != "" {
		b, err := os.ReadFile(filepath.Join(r.src.rootDir, "etc/hostname"))
		if err == nil {
			host, _, _ = strings.Cut(strings.TrimSpace(string(b)), "\n")
			host = strings.TrimSpace(host)
		}
	}
	if host == "" {
		return fmt.Errorf("%w: %w (no /etc/hostname on the source root)", ErrPreflight, ErrNoHostName)
	}
	if strings.ContainsAny(host, "/@ \t\n\\") || host == "." || host == ".." || host == backupset.TmpDir {
		return fmt.Errorf("%w: %w: %q", ErrPreflight, ErrBadHostName, host)
	}
	osr := "unknownOS"
	if r.src.rootDir != "" {
		for _, p := range []string{"etc/os-release", "usr/lib/os-release"} {
			if b, err := os.ReadFile(filepath.Join(r.src.rootDir, p)); err == nil {
				osr = backupset.OSReleaseTag(backupset.ParseOSRelease(string(b)))
				break
			}
		}
	}
	r.host = host
	r.hostDir = r.where(host)
	r.name = backupset.Name{Host: host, OSRelease: osr, Type: r.typ, Time: r.deps.Now(),
		Snapshot: backupset.SnapshotTag(r.opts.Snapshot)}
	r.name.Time = r.name.Time.Truncate(time.Second)
	return nil
}

// checkTargetNotSource refuses a backup folder on the disk being backed
// up: the set would read itself, and a dead disk would take both.
func (r *runner) checkTargetNotSource() error {
	if !r.src.isDevice || r.local == "" {
		return nil // an image file, or a server: not read as the source
	}
	p, err := r.deps.Sys.DiskOfPath(r.opts.Target)
	if err != nil {
		return nil // not on a block device (NFS, SMB, tmpfs): cannot be the source
	}
	disks := []string{r.src.partBase}
	if r.src.running {
		if rs, err := r.deps.Sys.FindSystem(); err == nil {
			disks = rs.Disks()
		}
	}
	if slices.Contains(disks, p.Disk) {
		return fmt.Errorf("%w: backup folder %s is on /dev/%s, the disk being backed up; use a USB disk or a network share", ErrPreflight, r.opts.Target, p.Disk)
	}
	return nil
}

// findPrevious looks for the newest complete set of the same series.
func (r *runner) findPrevious() error {
	if _, err := fs.Stat(r.st.FS(), r.host); err != nil {
		return nil
	}
	l, err := r.list(r.host)
	if err != nil {
		return fmt.Errorf("%w: list %s: %w", ErrPreflight, r.hostDir, err)
	}
	for _, s := range l.Strays {
		r.log.Warn("folder in the host folder looks like a set but is none; ignored", "dir", s.Dir, "reason", s.Reason)
	}
	for _, s := range l.Sets {
		if s.InProgress || s.Name.Series() != r.name.Series() {
			continue
		}
		p := &previous{name: s.String(), rel: s.Dir}
		if r.local != "" {
			p.dir = filepath.Join(r.local, filepath.FromSlash(s.Dir))
		}
		// A set made before backupctl named its files <host>-backup.* has
		// its manifest under the legacy name; FindManifest tries both.
		if m, _, err := backupset.ReadManifestIn(r.st.FS(), p.rel, s.Name.Host); err == nil {
			p.manifest = m
		} else if !errors.Is(err, fs.ErrNotExist) {
			r.log.Warn("previous set has an unreadable manifest; not reusing its hashes", "set", p.name, "err", err)
		}
		r.prev = p
		return nil
	}
	return nil
}

// claimName makes the set name unique (two runs within one second get
// different names) and creates the folder the set is written in. The
// host lock is held: nobody else creates sets of this host.
func (r *runner) claimName(ctx context.Context) error {
	for try := 0; ; try++ {
		name := r.name.String()
		finalRel := path.Join(r.host, name)
		tmpRel := finalRel
		if r.st.CanRename() {
			tmpRel = path.Join(r.host, backupset.TmpDir, name)
		}
		if !r.exists(finalRel) && !r.exists(tmpRel) {
			if err := r.st.MkdirAll(ctx, tmpRel); err != nil {
				return noSpace(fmt.Errorf("create %s: %w", r.where(tmpRel), err))
			}
			r.tmpRel, r.finalRel = tmpRel, finalRel
			r.tmpDir, r.finalDir = r.where(tmpRel), r.where(finalRel)
			r.plan.SetName, r.plan.SetDir = name, r.finalDir
			return nil
		}
		if try >= 5 {
			return fmt.Errorf("set %s exists already", name)
		}
		// Wait for the next second rather than invent a time.
		next := r.name.Time.Add(time.Second)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Until(next)):
		}
		r.name.Time = next
	}
}

// exists says whether rel names anything in the store.
func (r *runner) exists(rel string) bool {
	_, err := fs.Stat(r.st.FS(), rel)
	return err == nil
}

// cleanStaleSets removes what killed runs left: everything in
// <host>/tmp/ on stores that rename, set folders without a manifest on
// those that cannot (the manifest is written last). We hold the lock,
// so nothing there is in progress.
func (r *runner) cleanStaleSets(ctx context.Context) {
	var stale []string
	if r.st.CanRename() {
		tmp := path.Join(r.host, backupset.TmpDir)
		entries, err := fs.ReadDir(r.st.FS(), tmp)
		if err != nil {
			return
		}
		for _, e := range entries {
			stale = append(stale, path.Join(tmp, e.Name()))
		}
	} else {
		// A run killed before its first object was complete leaves only an
		// unfinished multipart upload: no folder to list, but parts that
		// take space (S3 keeps them until they are aborted).
		if up, ok := r.st.(interface {
			AbortStaleUploads(ctx context.Context, name string) (int, error)
		}); ok {
			if n, err := up.AbortStaleUploads(ctx, r.host); err != nil {
				r.log.Error("abort unfinished uploads", "dir", r.where(r.host), "err", err)
			} else if n > 0 {
				r.log.Info("aborted unfinished uploads left by an earlier run", "dir", r.where(r.host), "uploads", n)
			}
		}
		l, err := r.list(r.host)
		if err != nil {
			return
		}
		for _, s := range l.Sets {
			if s.InProgress {
				stale = append(stale, s.Dir)
			}
		}
	}
	for _, rel := range stale {
		r.log.Info("removing an incomplete set left by an earlier run", "dir", r.where(rel))
		if err := r.st.RemoveAll(ctx, rel); err != nil {
			r.log.Error("remove incomplete set", "dir", r.where(rel), "err", err)
		}
	}
}

// finish writes the manifest, makes everything durable, lets the caller
// check the set (Deps.BeforeCommit) and commits it: on a store that
// renames, the manifest is written and the folder renamed into place;
// on one that cannot, the set is checked with the manifest served from
// memory and the manifest written last, which makes it a set.
func (r *runner) finish(ctx context.Context) error {
	r.man.Finished = r.deps.Now()
	var mb bytes.Buffer
	if err := backupset.WriteManifest(&mb, &r.man); err != nil {
		return err
	}
	manifest := backupset.ManifestName(r.host)
	staged := Staged{Name: r.name.String(), Dir: r.tmpDir, Manifest: &r.man, Store: r.st, Rel: r.tmpRel, Proofs: r.proofs}
	if r.local != "" {
		staged.LocalDir = r.tmpDir
	}
	sub, err := fs.Sub(r.st.FS(), r.tmpRel)
	if err != nil {
		return err
	}
	if !r.st.CanRename() {
		staged.FS = withFile{FS: sub, name: manifest, data: mb.Bytes(), mtime: r.man.Finished}
		if r.deps.BeforeCommit != nil {
			if err := r.deps.BeforeCommit(ctx, staged); err != nil {
				return err
			}
		}
		// The manifest makes the set a set: the commit.
		return r.writeManifest(ctx, manifest, mb.Bytes())
	}
	if err := r.writeManifest(ctx, manifest, mb.Bytes()); err != nil {
		return err
	}
	if r.typ == backupset.TypeRsync && !r.opts.PartitionMode() {
		// The set folder is the root of the tree: give it the source
		// root's times again after adding the metadata files.
		if err := setTimesLike(r.tmpDir, r.src.rootDir); err != nil {
			return fmt.Errorf("set times of %s: %w", r.tmpDir, err)
		}
	}
	if r.local != "" {
		if err := fsyncDir(r.tmpDir); err != nil {
			return noSpace(err)
		}
	}
	if r.deps.BeforeCommit != nil {
		// Checked before the rename, so a set that does not verify never
		// shows up as complete (and retention never counts it).
		staged.FS = sub
		if err := r.deps.BeforeCommit(ctx, staged); err != nil {
			return err
		}
	}
	if err := r.st.Rename(ctx, r.tmpRel, r.finalRel); err != nil {
		return noSpace(fmt.Errorf("move the set into place: %w", err))
	}
	r.removeTmpIfEmpty()
	return nil
}

// writeManifest writes the manifest into the set's folder.
func (r *runner) writeManifest(ctx context.Context, name string, data []byte) error {
	out, err := r.createOut(ctx, name, 0o644, false)
	if err != nil {
		return err
	}
	if _, err := out.Write(data); err != nil {
		out.Abort()
		return noSpace(err)
	}
	_, err = out.Close()
	return err
}

// streamTo writes the payload rel into the set with the compression
// comp (and the run's encryption), its content written by fill.
func (r *runner) streamTo(ctx context.Context, rel string, comp backupset.Compression, sparse bool, fill func(w io.Writer) error) (backupset.File, error) {
	return r.stream(ctx, rel, comp, sparse, true, fill)
}

// stream is streamTo for a payload or (isPayload false) a metadata file,
// which is never encrypted.
func (r *runner) stream(ctx context.Context, rel string, comp backupset.Compression, sparse, isPayload bool, fill func(w io.Writer) error) (backupset.File, error) {
	sparse = sparse && (comp == backupset.CompressNone || comp == "")
	var out *outFile
	var err error
	if isPayload {
		out, err = r.createPayload(ctx, rel, sparse)
	} else {
		out, err = r.createOut(ctx, rel, 0o600, sparse)
	}
	if err != nil {
		return backupset.File{}, err
	}
	cw, err := compress.NewWriter(out, comp)
	if err != nil {
		out.Abort()
		return backupset.File{}, err
	}
	err = fill(cw)
	if cerr := cw.Close(); err == nil {
		err = cerr
	}
	return r.finishOut(out, err)
}
