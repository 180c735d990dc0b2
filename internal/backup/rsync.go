package backup

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/blockdev"
	"github.com/pibackup/pibackup/internal/progress"
	"github.com/pibackup/pibackup/internal/treelist"
)

// An rsync set in normal mode is a tree of the root filesystem's files:
// the set folder is the root, next to the boot files (normal.go); in -P
// mode each partition is a tree in a folder named for it (partmode.go).
// Unchanged files are hardlinks to the previous set's (--link-dest), and
// every tree has a listing of its files with their hashes (treelist), so
// a verify needs no second copy.

// planRootTree plans the tree of the root filesystem.
func planRootTree(p *Plan, in planInput) {
	est := in.rootUsed
	if in.previous != "" {
		est = 0 // unchanged files are hardlinks; the changes are not known yet
		p.Notes = append(p.Notes, "incremental: unchanged files are hardlinked to "+in.previous+"; the space estimate leaves out the changed files")
	}
	p.Items = append(p.Items, PlanItem{File: "./", From: "files of the root filesystem " + rootDesc(in.src), Estimate: est,
		step: step{kind: stepTree, excludes: in.rootExcludes, expect: in.rootUsed}})
}

// writeTree copies the filesystem at dir with rsync into dst and lists
// the result. part is "" in normal mode, the partition name in -P mode.
func (r *runner) writeTree(ctx context.Context, dir, dst, part string, excludes []string, estimate int64) error {
	r.rep.Phase("files of "+cmp.Or(part, "the root filesystem"), estimate)
	linkDest := ""
	var prevTree string
	if r.prev != nil {
		prevTree = r.prev.dir
		if part != "" {
			prevTree = filepath.Join(r.prev.dir, part)
		}
		if fi, err := os.Stat(prevTree); err == nil && fi.IsDir() {
			linkDest = prevTree
		}
	}
	if part == "" {
		excludes = append(slices.Clone(excludes), backupset.OwnFilePatterns(r.host)...)
	}
	args := RsyncArgs(dir, dst, linkDest, excludes, true)
	// Hash what rsync copies while it copies; with --link-dest the names
	// it gives also tell the listing which files are hardlinks of the
	// previous tree (prehash.go).
	pre := startPrehash(dst, linkDest != "")
	args = withOutFormat(args)
	err := r.runRsync(ctx, args, pre.copied)
	reuse := pre.finish(r.log)
	if err != nil {
		return err
	}
	return r.writeListing(ctx, dst, dir, part, linkDestOrEmpty(linkDest), reuse)
}

// listingOf is the file name of the listing of the tree part ("" for the
// root tree) in the set with manifest m, as m names it: a set made before
// backupctl named its files <host>-backup.* has pibackup-tree.list.
func listingOf(m *backupset.Manifest, part string) string {
	root := cmp.Or(part, ".")
	for _, t := range m.Trees {
		if t.Root == root {
			return t.Listing
		}
	}
	return backupset.TreeListingName(m.Host, part)
}

func linkDestOrEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// writeListing writes the tree listing of dst (an rsync tree in the set)
// and records it in the manifest. srcDir is where the tree came from:
// the tree's root folder gets its times back after the listing file is
// added. prevTree, if set, is the link-dest tree whose hashes may be
// reused for files that are hardlinks of it; without one, hashed, if
// set, has the hashes of files taken while rsync ran (prehash.go).
func (r *runner) writeListing(ctx context.Context, dst, srcDir, part string, prevTree *string, hashed *treelist.Reuse) error {
	rel, xrel := backupset.TreeListingName(r.host, part), backupset.TreeExtrasName(r.host, part)
	out, err := r.createOut(ctx, rel, 0o600, false)
	if err != nil {
		return err
	}
	xout, err := r.createOut(ctx, xrel, 0o600, false)
	if err != nil {
		out.Abort()
		return err
	}
	if part == "" {
		// Creating the listing and extras in the tree's root changed its
		// mtime.
		if err := setTimesLike(dst, srcDir); err != nil {
			out.Abort()
			xout.Abort()
			return err
		}
	}
	opts := treelist.Options{Extras: xout}
	if part == "" {
		opts.Exclude = backupset.TreeExclude(r.host)
	}
	if prevTree != nil && r.prev.manifest != nil {
		if f, err := os.Open(filepath.Join(r.prev.dir, listingOf(r.prev.manifest, part))); err == nil {
			reuse, err := hashed.WithPrevious(*prevTree, f)
			f.Close()
			if err == nil {
				opts.Reuse = reuse
			}
		}
	}
	if opts.Reuse == nil && hashed != nil {
		opts.Reuse = hashed
	}
	r.rep.Phase("listing "+cmp.Or(part, "the tree"), 0)
	st, err := treelist.WriteOptions(ctx, out, dst, opts)
	if err != nil {
		out.Abort()
		xout.Abort()
		return noSpace(err)
	}
	f, err := out.Close()
	if err != nil {
		xout.Abort()
		return err
	}
	xf, err := xout.Close()
	if err != nil {
		return err
	}
	r.man.Files = append(r.man.Files, f, xf)
	r.man.Trees = append(r.man.Trees, backupset.Tree{Root: cmp.Or(part, "."), Listing: rel, Extras: xrel, Entries: st.Entries, Bytes: st.Bytes})
	r.log.Info("tree listed", "entries", st.Entries, "bytes", st.Bytes, "hashed", st.Hashed)
	return nil
}

// runRsync runs rsync, feeding its --info=progress2 output to the
// progress reporter and the names of copied files (--out-format lines,
// see withOutFormat) to copied.
func (r *runner) runRsync(ctx context.Context, args []string, copied func(name string)) error {
	cmd := exec.CommandContext(ctx, "rsync", args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.SysProcAttr = childAttr()
	stderr := &blockdev.TailBuffer{Max: 4096}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	r.log.Debug("exec", "cmd", "rsync "+strings.Join(args, " "))
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start rsync: %w", err)
	}
	feedRsyncOutput(stdout, r.rep, copied)
	err = cmd.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	r.log.Info("rsync ended", "duration", time.Since(start).Round(time.Millisecond), "err", err)
	if err != nil {
		var ee *exec.ExitError
		msg := strings.TrimSpace(stderr.String())
		if errors.As(err, &ee) && ee.ExitCode() == 24 && r.src.running {
			note := "rsync: some files vanished while they were copied"
			r.log.Warn(note)
			r.man.Notes = append(r.man.Notes, note)
			return nil
		}
		if strings.Contains(msg, "No space left on device") || strings.Contains(msg, "Disk quota exceeded") {
			return fmt.Errorf("%w: %s", ErrNoSpace, lineWith(msg, "No space left on device", "Disk quota exceeded"))
		}
		return fmt.Errorf("rsync: %w: %s", err, oneLine(msg))
	}
	return nil
}

// feedRsyncOutput reads rsync's --info=progress2 lines ("  1,234,567
// 12%  1.2MB/s  0:00:12 ...", separated by \r) and reports the growth of
// the first number; lines naming a copied file go to copied.
func feedRsyncOutput(rd io.Reader, rep progress.Reporter, copied func(name string)) {
	sc := bufio.NewScanner(rd)
	sc.Split(func(data []byte, atEOF bool) (int, []byte, error) {
		if i := bytes.IndexAny(data, "\r\n"); i >= 0 {
			return i + 1, data[:i], nil
		}
		if atEOF && len(data) > 0 {
			return len(data), data, nil
		}
		return 0, nil, nil
	})
	var last int64
	for sc.Scan() {
		if name, ok := strings.CutPrefix(sc.Text(), rsyncNamePrefix); ok {
			if copied != nil {
				copied(name)
			}
			continue
		}
		f := strings.Fields(sc.Text())
		if len(f) < 2 || !strings.HasSuffix(f[1], "%") {
			continue
		}
		n, err := strconv.ParseInt(strings.ReplaceAll(f[0], ",", ""), 10, 64)
		if err != nil || n < last {
			continue
		}
		rep.Add(n - last)
		last = n
	}
	io.Copy(io.Discard, rd)
}
