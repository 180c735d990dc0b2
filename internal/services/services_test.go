package services

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeRunner records argvs and fails the ones listed in fail. It also
// records whether the context was already done when a start ran, which is
// the bug Run must never have.
type fakeRunner struct {
	mu        sync.Mutex
	calls     []string
	fail      map[string]bool
	deadCtxOn []string
}

func (f *fakeRunner) Run(ctx context.Context, argv []string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := strings.Join(argv, " ")
	f.calls = append(f.calls, c)
	if ctx.Err() != nil {
		f.deadCtxOn = append(f.deadCtxOn, c)
	}
	if f.fail[c] {
		return nil, errors.New("exit status 1")
	}
	return nil, nil
}

func threeServices(r Runner) []Stopper {
	return []Stopper{
		Unit{Name: "nginx.service", Runner: r},
		Container{Name: "homeassistant", Runner: r},
		Commands{Label: "app", StopCmds: [][]string{{"app", "stop"}}, StartCmds: [][]string{{"app", "start"}}, Runner: r},
	}
}

var (
	allStops = []string{
		"systemctl stop -- nginx.service",
		"docker stop -- homeassistant",
		"app stop",
	}
	allStartsReversed = []string{
		"app start",
		"docker start -- homeassistant",
		"systemctl start -- nginx.service",
	}
)

func TestRun(t *testing.T) {
	errBackup := errors.New("backup failed")
	tests := []struct {
		name      string
		fail      []string
		fn        func(ctx context.Context, cancel func()) error
		wantCalls []string
		wantErr   []error // each must match errors.Is
		wantFnRun bool
	}{
		{
			name:      "success",
			fn:        func(context.Context, func()) error { return nil },
			wantCalls: append(slices.Clone(allStops), allStartsReversed...),
			wantFnRun: true,
		},
		{
			name:      "backup error still starts everything",
			fn:        func(context.Context, func()) error { return errBackup },
			wantCalls: append(slices.Clone(allStops), allStartsReversed...),
			wantErr:   []error{errBackup},
			wantFnRun: true,
		},
		{
			name: "cancelled context still starts everything",
			fn: func(ctx context.Context, cancel func()) error {
				cancel()
				<-ctx.Done()
				return ctx.Err()
			},
			wantCalls: append(slices.Clone(allStops), allStartsReversed...),
			wantErr:   []error{context.Canceled},
			wantFnRun: true,
		},
		{
			name: "stop failure skips the backup and starts what was touched",
			fail: []string{"docker stop -- homeassistant"},
			wantCalls: []string{
				"systemctl stop -- nginx.service",
				"docker stop -- homeassistant",
				"docker start -- homeassistant",
				"systemctl start -- nginx.service",
			},
			wantErr: []error{ErrStop},
		},
		{
			name:      "start failure does not stop the other starts",
			fail:      []string{"docker start -- homeassistant"},
			fn:        func(context.Context, func()) error { return nil },
			wantCalls: append(slices.Clone(allStops), allStartsReversed...),
			wantErr:   []error{ErrStart},
			wantFnRun: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &fakeRunner{fail: map[string]bool{}}
			for _, f := range tt.fail {
				r.fail[f] = true
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			fnRun := false
			err := Run(ctx, Options{}, threeServices(r), func(ctx context.Context) error {
				fnRun = true
				return tt.fn(ctx, cancel)
			})
			if !slices.Equal(r.calls, tt.wantCalls) {
				t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(r.calls, "\n"), strings.Join(tt.wantCalls, "\n"))
			}
			if len(r.deadCtxOn) > 0 {
				t.Errorf("commands ran with a cancelled context: %v", r.deadCtxOn)
			}
			if fnRun != tt.wantFnRun {
				t.Errorf("backup ran = %v, want %v", fnRun, tt.wantFnRun)
			}
			if len(tt.wantErr) == 0 && err != nil {
				t.Errorf("Run = %v, want nil", err)
			}
			for _, w := range tt.wantErr {
				if !errors.Is(err, w) {
					t.Errorf("Run = %v, want it to wrap %v", err, w)
				}
			}
		})
	}
}

func TestRunPanicStartsAndRepanics(t *testing.T) {
	r := &fakeRunner{}
	defer func() {
		p := recover()
		if p != "boom" {
			t.Errorf("recovered %v, want the original panic", p)
		}
		want := append(slices.Clone(allStops), allStartsReversed...)
		if !slices.Equal(r.calls, want) {
			t.Errorf("calls = %v, want %v", r.calls, want)
		}
	}()
	_ = Run(context.Background(), Options{}, threeServices(r), func(context.Context) error { panic("boom") })
	t.Error("Run returned instead of re-panicking")
}

func TestRunAlreadyCancelled(t *testing.T) {
	r := &fakeRunner{}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Run(ctx, Options{}, threeServices(r), func(context.Context) error {
		t.Error("backup ran with a cancelled context")
		return nil
	})
	if !errors.Is(err, context.Canceled) || len(r.calls) != 0 {
		t.Errorf("Run = %v with calls %v; want context.Canceled and nothing touched", err, r.calls)
	}
}

// slowStart checks that a start gets its own deadline even though the
// caller's context is gone.
type slowStart struct{ gotDeadline bool }

func (s *slowStart) Stop(context.Context) error { return nil }
func (s *slowStart) Start(ctx context.Context) error {
	_, s.gotDeadline = ctx.Deadline()
	return ctx.Err()
}
func (s *slowStart) String() string { return "slow" }

func TestStartTimeoutIsOwn(t *testing.T) {
	s := &slowStart{}
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	if err := Run(ctx, Options{StartTimeout: time.Minute}, []Stopper{s}, func(context.Context) error { cancel(); return nil }); err != nil {
		t.Fatal(err)
	}
	if !s.gotDeadline {
		t.Error("start ran without a deadline")
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		spec    string
		want    string // String() of the result, "" for an error
		argvOut string // stop argv
	}{
		{"unit:nginx", "unit nginx.service", "systemctl stop -- nginx.service"},
		{"systemd:docker.socket", "unit docker.socket", "systemctl stop -- docker.socket"},
		{"mariadb.service", "unit mariadb.service", "systemctl stop -- mariadb.service"},
		{"docker:homeassistant", "container homeassistant", "docker stop -- homeassistant"},
		{"podman:db", "container db", "podman stop -- db"},
		{"nginx", "", ""},
		{"unit:", "", ""},
		{"docker:-rm", "", ""},
		{"docker:a b", "", ""},
		{"lxc:x", "", ""},
	}
	for _, tt := range tests {
		r := &fakeRunner{}
		s, err := Parse(tt.spec, r)
		if tt.want == "" {
			if err == nil || !errors.Is(err, ErrSpec) {
				t.Errorf("Parse(%q) = %v, %v; want ErrSpec", tt.spec, s, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.spec, err)
			continue
		}
		if s.String() != tt.want {
			t.Errorf("Parse(%q) = %s, want %s", tt.spec, s, tt.want)
		}
		_ = s.Stop(context.Background())
		if got := fmt.Sprint(strings.Join(r.calls, "|")); got != tt.argvOut {
			t.Errorf("Parse(%q).Stop ran %q, want %q", tt.spec, got, tt.argvOut)
		}
	}
}
