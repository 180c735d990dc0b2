package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/bootcmdline"
	"github.com/pibackup/pibackup/internal/progress"
	"github.com/pibackup/pibackup/internal/size"
	"github.com/pibackup/pibackup/internal/source"
	"github.com/pibackup/pibackup/internal/tui/model"
)

// result is the RECOVERY-RESULT line: one JSON object that a test or a
// person at any console reads to learn how unattended mode ended.
type result struct {
	Set      string  `json:"set"`
	Target   string  `json:"target"`
	Bytes    int64   `json:"bytes"`
	Seconds  float64 `json:"seconds"`
	Verified bool    `json:"verified"`
	// Incomplete: the restore failed after it started writing; the
	// target has no partition table and must not be booted.
	Incomplete bool   `json:"incomplete"`
	Error      string `json:"error"`
}

func (r result) line() string {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Sprintf(`{"error":"BUG: %s"}`, err)
	}
	return "RECOVERY-RESULT " + string(b)
}

// unattendedDeps are what unattended mode needs; tests pass fakes.
type unattendedDeps struct {
	Opener   model.Opener
	Disks    source.DiskLister
	Engine   model.Engine
	BootDisk string
	Log      *slog.Logger
	Out      io.Writer // progress for the consoles
	// WaitNet waits for the network (network sources only).
	WaitNet func(ctx context.Context) error
	// ProgressEvery is how often progress is printed; 0: 5 s.
	ProgressEvery time.Duration
}

// unattended restores as cfg says, without asking, and reports. It
// never proceeds with an SFTP host key that is not pinned, and writes
// nothing unless cfg.Yes.
func unattended(ctx context.Context, cfg bootcmdline.Config, identity []byte, d unattendedDeps) (res result) {
	start := time.Now()
	res.Target = cfg.Target
	defer func() { res.Seconds = time.Since(start).Round(time.Millisecond).Seconds() }()
	fail := func(err error) result {
		res.Error = err.Error()
		d.Log.Error("unattended restore failed", "err", err)
		return res
	}
	sp, err := cfg.Spec(identity)
	if err != nil {
		return fail(err)
	}
	if sp.Kind == source.KindSFTP && sp.KnownHost == "" {
		return fail(errors.New("sftp host key not pinned: add known_host=SHA256:... to recovery.conf"))
	}
	if sp.Kind.Network() {
		if err := d.WaitNet(ctx); err != nil {
			return fail(fmt.Errorf("network: %w", err))
		}
	}
	fmt.Fprintf(d.Out, "recovery: opening %s\n", sp)
	src, err := d.Opener.Open(ctx, sp)
	var hk *source.HostKeyError
	if errors.As(err, &hk) {
		return fail(fmt.Errorf("host key %s %s of %s is not pinned: add known_host=%s to recovery.conf", hk.KeyType, hk.Fingerprint, hk.Addr, hk.Fingerprint))
	}
	if err != nil {
		return fail(err)
	}
	defer src.Close()
	set, err := pickSet(src, cfg)
	if err != nil {
		return fail(err)
	}
	res.Set = set.String()
	target, err := findTarget(d.Disks, cfg.Target)
	if err != nil {
		return fail(err)
	}
	if why := model.Ineligible(target, d.BootDisk, src.Device()); why != "" {
		return fail(fmt.Errorf("target %s: %s: %w", target.Path, why, model.ErrIneligible))
	}
	req := model.Request{Task: model.TaskRestore, Source: src, Set: set, Target: target}
	plan, err := d.Engine.Plan(ctx, req)
	if err != nil {
		return fail(fmt.Errorf("plan: %w", err))
	}
	fmt.Fprintf(d.Out, "%s\n", plan)
	if !cfg.Yes {
		return fail(errors.New("planned only: recovery.yes=1 not given, nothing written"))
	}
	var counter progress.Counter
	stop := printProgress(d.Out, &counter, d.ProgressEvery)
	out, err := d.Engine.Run(ctx, plan, req, &counter)
	stop()
	res.Bytes, res.Verified, res.Incomplete = out.Bytes, out.Verified, out.Incomplete
	if err != nil {
		if out.Incomplete {
			fmt.Fprintf(d.Out, "recovery: RESTORE FAILED: %s is incomplete and will not boot; fix the cause and restore again: %v\n", target.Path, err)
		} else {
			fmt.Fprintf(d.Out, "recovery: RESTORE FAILED: %v\n", err)
		}
		return fail(err)
	}
	d.Log.Info("unattended restore done", "set", res.Set, "target", res.Target, "bytes", res.Bytes)
	return res
}

// pickSet finds cfg.Set ("latest" or a name) among the sets of src.
func pickSet(src source.Source, cfg bootcmdline.Config) (backupset.Set, error) {
	infos, err := model.FindSets(src.FS())
	if err != nil {
		return backupset.Set{}, err
	}
	sets := make([]backupset.Set, 0, len(infos))
	for _, si := range infos {
		sets = append(sets, si.Set)
	}
	want := cfg.SetOrLatest()
	if want == "latest" {
		s, err := backupset.Latest(sets, cfg.Host)
		if err != nil {
			return s, fmt.Errorf("%s (host %q) in %s: %w", want, cfg.Host, src, err)
		}
		return s, nil
	}
	for _, s := range sets {
		if s.String() == want && !s.InProgress {
			return s, nil
		}
	}
	return backupset.Set{}, fmt.Errorf("set %s not found in %s: %w", want, src, backupset.ErrNoSet)
}

// findTarget finds the disk at path. An image file (tests, or a restore
// into a file on a mounted disk) is accepted as a disk of its size.
func findTarget(disks source.DiskLister, path string) (source.Disk, error) {
	ds, err := disks.Disks()
	if err != nil {
		return source.Disk{}, err
	}
	for _, d := range ds {
		if d.Path == path {
			return d, nil
		}
	}
	fi, err := os.Stat(path)
	if err == nil && fi.Mode().IsRegular() {
		return source.Disk{Name: filepath.Base(path), Path: path, Size: fi.Size()}, nil
	}
	return source.Disk{}, fmt.Errorf("target %s: no such disk (is it plugged in?): %w", path, source.ErrNotFound)
}

// printProgress prints c every interval until stop is called.
func printProgress(w io.Writer, c *progress.Counter, every time.Duration) (stop func()) {
	if every == 0 {
		every = 5 * time.Second
	}
	return progress.Poll(every, func(time.Time) {
		phase, n, total, all := c.Snapshot()
		fmt.Fprintf(w, "RECOVERY-PROGRESS %s %s/%s total %s\n", phase,
			size.Format(n), size.Format(total), size.Format(all))
	})
}
