package model

import (
	"sync"
	"time"
)

// ProgressState is what the Running screen shows.
type ProgressState struct {
	Phase   string
	Done    int64 // bytes done in this phase
	Total   int64 // bytes expected in this phase, 0 unknown
	All     int64 // bytes done over all phases
	Rate    float64
	ETA     time.Duration // -1 unknown
	Elapsed time.Duration // since the phase began
}

// Percent is Done/Total in percent, or -1 when Total is unknown.
func (p ProgressState) Percent() float64 {
	if p.Total <= 0 {
		return -1
	}
	return 100 * float64(p.Done) / float64(p.Total)
}

// Progress implements progress.Reporter for the engine and computes rate
// and ETA for the view. It notifies at most every notifyEvery.
type Progress struct {
	now    func() time.Time
	notify func()

	mu         sync.Mutex
	st         ProgressState
	start      time.Time
	lastNotify time.Time
}

const notifyEvery = 100 * time.Millisecond

func newProgress(now func() time.Time, notify func()) *Progress {
	return &Progress{now: now, notify: notify}
}

func (p *Progress) reset() {
	p.mu.Lock()
	p.st = ProgressState{ETA: -1}
	p.mu.Unlock()
}

// Phase implements progress.Reporter.
func (p *Progress) Phase(name string, total int64) {
	p.mu.Lock()
	p.st.Phase, p.st.Total, p.st.Done = name, total, 0
	p.start = p.now()
	p.lastNotify = p.start
	p.mu.Unlock()
	p.notify()
}

// Add implements progress.Reporter.
func (p *Progress) Add(n int64) {
	p.mu.Lock()
	p.st.Done += n
	p.st.All += n
	t := p.now()
	due := t.Sub(p.lastNotify) >= notifyEvery
	if due {
		p.lastNotify = t
	}
	p.mu.Unlock()
	if due {
		p.notify()
	}
}

// State returns the progress with rate and ETA computed now.
func (p *Progress) State() ProgressState {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.st
	s.ETA = -1
	if p.start.IsZero() {
		return s
	}
	s.Elapsed = p.now().Sub(p.start)
	if secs := s.Elapsed.Seconds(); secs > 0 {
		s.Rate = float64(s.Done) / secs
	}
	if s.Rate > 0 && s.Total > 0 && s.Done <= s.Total {
		s.ETA = time.Duration(float64(s.Total-s.Done) / s.Rate * float64(time.Second)).Round(time.Second)
	}
	return s
}
