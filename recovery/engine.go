package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"

	"github.com/pibackup/pibackup/internal/i18n"
	"github.com/pibackup/pibackup/internal/payload"
	"github.com/pibackup/pibackup/internal/progress"
	"github.com/pibackup/pibackup/internal/restore"
	"github.com/pibackup/pibackup/internal/tui/model"
	"github.com/pibackup/pibackup/internal/verify"
)

// engine adapts internal/restore and internal/verify to model.Engine.
type engine struct {
	log   *slog.Logger
	board string // restore.HostBoard: the Pi 5 boot-order note
	// lang is the language of the plans: the UI's, since the model hands
	// the plan's text to the screen as it is. The zero value is English.
	lang i18n.Lang
	// keys open encrypted sets (recovery.conf age_identity=); nil: none.
	keys *payload.Keys
}

var _ model.Engine = engine{}

// forward is the progress.Reporter the restore engine gets at plan time;
// Run points it at the UI's reporter.
type forward struct {
	mu sync.Mutex
	r  progress.Reporter
}

func (f *forward) to(r progress.Reporter) {
	f.mu.Lock()
	f.r = progress.OrNop(r)
	f.mu.Unlock()
}

func (f *forward) get() progress.Reporter {
	f.mu.Lock()
	defer f.mu.Unlock()
	return progress.OrNop(f.r)
}

func (f *forward) Phase(name string, total int64) { f.get().Phase(name, total) }
func (f *forward) Add(n int64)                    { f.get().Add(n) }

type restorePlan struct {
	p  *restore.Plan
	fw *forward
	pr *i18n.Printer
}

func (p *restorePlan) String() string { return p.p.Text(p.pr) }

type clonePlan struct {
	p  *restore.ClonePlan
	fw *forward
	pr *i18n.Printer
}

func (p *clonePlan) String() string { return p.p.Text(p.pr) }

type verifyPlan struct {
	fsys  fs.FS
	name  string
	local string
	pr    *i18n.Printer
}

func (p *verifyPlan) String() string { return p.pr.Sprintf(i18n.PlanVerify, p.name) }

// setFS is the set folder of a request as the engines want it: an fs.FS
// rooted at the set, and its local path when the source has one.
func setFS(r model.Request) (fs.FS, string, error) {
	sub, err := fs.Sub(r.Source.FS(), r.Set.Dir)
	if err != nil {
		return nil, "", fmt.Errorf("BUG: set folder %q: %w", r.Set.Dir, err)
	}
	local := ""
	if d := r.Source.LocalDir(); d != "" {
		local = filepath.Join(d, filepath.FromSlash(r.Set.Dir))
	}
	return sub, local, nil
}

// Plan implements model.Engine. It writes nothing.
func (e engine) Plan(ctx context.Context, r model.Request) (model.PlanText, error) {
	if r.Key != "" {
		// Typed on the Key screen: tried before recovery.conf's.
		k, err := payload.KeysTyped(r.Key)
		if err != nil {
			return nil, err
		}
		e.keys = k.With(e.keys)
	}
	fw := &forward{}
	pr := i18n.New(e.lang)
	switch r.Task {
	case model.TaskRestore:
		sub, local, err := setFS(r)
		if err != nil {
			return nil, err
		}
		p, err := restore.NewPlan(ctx, restore.Options{
			Set: sub, SetName: r.Set.String(), LocalDir: local,
			Target: r.Target.Path, Board: e.board, Keys: e.keys, Log: e.log, Progress: fw,
		})
		if err != nil {
			return nil, err
		}
		return &restorePlan{p: p, fw: fw, pr: pr}, nil
	case model.TaskClone:
		p, err := restore.NewClonePlan(ctx, restore.CloneOptions{Source: r.From.Path, Target: r.Target.Path, Log: e.log, Progress: fw})
		if err != nil {
			return nil, err
		}
		return &clonePlan{p: p, fw: fw, pr: pr}, nil
	case model.TaskVerify:
		sub, local, err := setFS(r)
		if err != nil {
			return nil, err
		}
		return &verifyPlan{fsys: sub, name: r.Set.String(), local: local, pr: pr}, nil
	}
	return nil, fmt.Errorf("BUG: unknown task %v", r.Task)
}

// Run implements model.Engine.
func (e engine) Run(ctx context.Context, pt model.PlanText, _ model.Request, rep progress.Reporter) (model.Outcome, error) {
	switch p := pt.(type) {
	case *restorePlan:
		p.fw.to(rep)
		res, err := p.p.Execute(ctx)
		return outcome(res), err
	case *clonePlan:
		p.fw.to(rep)
		res, err := p.p.Execute(ctx)
		if res == nil {
			return model.Outcome{}, err
		}
		return outcome(&res.Result), err
	case *verifyPlan:
		report, err := verify.Set(ctx, p.fsys, p.name, verify.Options{LocalDir: p.local, Keys: e.keys, Log: e.log, Progress: rep})
		var out model.Outcome
		if report != nil {
			out.Bytes = report.Bytes
			out.Verified = report.OK()
			if !report.OK() {
				var probs []string
				for _, pr := range report.Problems {
					probs = append(probs, pr.String())
				}
				err = errors.Join(err, fmt.Errorf("%s", strings.Join(probs, "; ")))
			}
		}
		return out, err
	}
	return model.Outcome{}, fmt.Errorf("BUG: plan of type %T", pt)
}

func outcome(res *restore.Result) model.Outcome {
	if res == nil {
		return model.Outcome{}
	}
	return model.Outcome{Bytes: res.Bytes, Duration: res.Duration, Verified: res.Verified, Incomplete: res.Incomplete}
}
