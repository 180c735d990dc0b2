package model_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pibackup/pibackup/internal/payload"
	"github.com/pibackup/pibackup/internal/source"
	"github.com/pibackup/pibackup/internal/tui/model"
	"github.com/pibackup/pibackup/internal/tui/tuitest"
)

type step struct {
	name string
	do   func(m *model.Model, w *tuitest.World) error
	// want is the screen after the step, wantErr the sentinel (or
	// substring, for non-sentinel errors) the step fails with.
	want       model.Screen
	wantErr    error
	wantErrStr string
}

var ctx = context.Background()

func dirSpec(p string) source.Spec { return source.Spec{Kind: source.KindDir, Path: p} }

func sftpSpec(pw string) source.Spec {
	sp, err := source.ParseURL(tuitest.SFTPURL)
	if err != nil {
		panic(err)
	}
	sp.Password = pw
	return sp
}

// Steps used by many cases.
var (
	startRestore = step{"start restore", func(m *model.Model, _ *tuitest.World) error { return m.Start(model.TaskRestore) }, model.Source, nil, ""}
	connectLocal = step{"connect local", func(m *model.Model, w *tuitest.World) error { return m.Connect(ctx, dirSpec(w.BackupDir)) }, model.Sets, nil, ""}
	pickNewest   = step{"pick newest complete", func(m *model.Model, _ *tuitest.World) error { return m.SelectSet(ctx, 1) }, model.Target, nil, ""}
	pickTarget   = step{"pick sdb", func(m *model.Model, w *tuitest.World) error { return m.SelectTarget(ctx, w.DiskIndex("sdb")) }, model.Plan, nil, ""}
	proceed      = step{"proceed", func(m *model.Model, _ *tuitest.World) error { return m.Proceed() }, model.Confirm, nil, ""}
	confirm      = step{"confirm sdb", func(m *model.Model, _ *tuitest.World) error { return m.Confirm(ctx, "sdb") }, model.Result, nil, ""}
	back         = func(want model.Screen) step {
		return step{"back", func(m *model.Model, _ *tuitest.World) error { return m.Back() }, want, nil, ""}
	}
)

func TestTransitions(t *testing.T) {
	toConfirm := []step{startRestore, connectLocal, pickNewest, pickTarget, proceed}
	for _, tt := range []struct {
		name  string
		steps []step
		check func(t *testing.T, m *model.Model, w *tuitest.World)
	}{
		{
			name:  "restore from local folder",
			steps: append(append([]step{}, toConfirm...), confirm),
			check: func(t *testing.T, m *model.Model, w *tuitest.World) {
				st := m.State()
				if st.RunErr != nil || !st.Outcome.Verified || st.Outcome.Bytes != int64(len(w.Payload)+len("label: dos\n")) {
					t.Errorf("result = %+v, %v", st.Outcome, st.RunErr)
				}
				got, _ := w.TargetContent(len(w.Payload) + len("label: dos\n"))
				if !bytes.Contains(got, w.Payload) {
					t.Errorf("target does not hold the payload")
				}
			},
		},
		{
			name: "back through every screen",
			steps: append(append([]step{}, toConfirm...),
				back(model.Plan), back(model.Target), back(model.Sets), back(model.Source), back(model.Home), back(model.Home)),
			check: func(t *testing.T, m *model.Model, w *tuitest.World) {
				if st := m.State(); st.Source != "" || st.Set != nil || st.Target != nil || len(st.Sets) != 0 {
					t.Errorf("state not reset at home: %+v", st)
				}
			},
		},
		{
			name:  "back from result goes home",
			steps: append(append([]step{}, toConfirm...), confirm, back(model.Home)),
		},
		{
			name: "sets newest first, in-progress not restorable",
			steps: []step{startRestore, connectLocal,
				{"pick in-progress", func(m *model.Model, _ *tuitest.World) error { return m.SelectSet(ctx, 0) }, model.Sets, nil, "in progress"},
			},
			check: func(t *testing.T, m *model.Model, w *tuitest.World) {
				sets := m.State().Sets
				if len(sets) != 3 || sets[0].Available || !sets[1].Available || sets[1].Set.String() != w.NewestSet || !sets[1].HasManifest || sets[2].HasManifest {
					t.Fatalf("sets = %+v", sets)
				}
				if sets[1].Size != int64(len(w.Payload)+len("label: dos\n")) || sets[2].Size != 4096 {
					t.Errorf("sizes = %d, %d", sets[1].Size, sets[2].Size)
				}
			},
		},
		{
			name: "unreachable server stays on source",
			steps: []step{startRestore,
				{"connect", func(m *model.Model, _ *tuitest.World) error {
					return m.Connect(ctx, source.Spec{Kind: source.KindNFS, Host: "nowhere", Export: "/x", Path: "."})
				}, model.Source, source.ErrUnreachable, ""},
			},
			check: func(t *testing.T, m *model.Model, w *tuitest.World) {
				if !errors.Is(m.State().Err, source.ErrUnreachable) {
					t.Errorf("State().Err = %v", m.State().Err)
				}
			},
		},
		{
			name: "empty folder has no sets",
			steps: []step{startRestore,
				{"connect empty", func(m *model.Model, w *tuitest.World) error { return m.Connect(ctx, dirSpec(w.EmptyDir)) }, model.Source, model.ErrNoSets, ""},
			},
		},
		{
			name: "sftp host key then wrong password then right",
			steps: []step{startRestore,
				{"connect", func(m *model.Model, _ *tuitest.World) error { return m.Connect(ctx, sftpSpec("wrong")) }, model.HostKey, nil, ""},
				{"accept", func(m *model.Model, _ *tuitest.World) error { return m.AcceptHostKey(ctx) }, model.Source, source.ErrAuth, ""},
				// The key is remembered: no second question.
				{"connect again", func(m *model.Model, _ *tuitest.World) error { return m.Connect(ctx, sftpSpec(tuitest.SFTPPassword)) }, model.Sets, nil, ""},
				pickNewest, pickTarget, proceed, confirm,
			},
		},
		{
			name: "sftp host key shown then rejected",
			steps: []step{startRestore,
				{"connect", func(m *model.Model, _ *tuitest.World) error { return m.Connect(ctx, sftpSpec(tuitest.SFTPPassword)) }, model.HostKey, nil, ""},
				back(model.Source),
			},
			check: func(t *testing.T, m *model.Model, w *tuitest.World) {
				if w.Opener.Opened != 0 {
					t.Errorf("opened %d sources after rejecting the key", w.Opener.Opened)
				}
			},
		},
		{
			name: "boot disk is not a target",
			steps: []step{startRestore, connectLocal, pickNewest,
				{"pick boot", func(m *model.Model, w *tuitest.World) error { return m.SelectTarget(ctx, w.DiskIndex("mmcblk0")) }, model.Target, model.ErrIneligible, ""},
			},
		},
		{
			name: "disk holding the set is not a target",
			steps: []step{startRestore, connectLocal, pickNewest,
				{"pick sda", func(m *model.Model, w *tuitest.World) error { return m.SelectTarget(ctx, w.DiskIndex("sda")) }, model.Target, model.ErrIneligible, ""},
			},
			check: func(t *testing.T, m *model.Model, w *tuitest.World) {
				for _, d := range m.State().Disks {
					if want := d.Name == "sdb" || d.Name == "sdc"; d.Eligible() != want {
						t.Errorf("%s eligible = %v (%s)", d.Name, d.Eligible(), d.Why)
					}
				}
			},
		},
		{
			name: "target too small",
			steps: []step{startRestore, connectLocal, pickNewest,
				{"pick sdc", func(m *model.Model, w *tuitest.World) error { return m.SelectTarget(ctx, w.DiskIndex("sdc")) }, model.Target, tuitest.ErrTooSmall, ""},
				pickTarget,
			},
		},
		{
			name: "corrupt set fails at plan, nothing written",
			steps: []step{startRestore,
				{"connect corrupt", func(m *model.Model, w *tuitest.World) error { return m.Connect(ctx, dirSpec(w.CorruptDir)) }, model.Sets, nil, ""},
				{"pick it", func(m *model.Model, _ *tuitest.World) error { return m.SelectSet(ctx, 0) }, model.Target, nil, ""},
				{"pick sdb", func(m *model.Model, w *tuitest.World) error { return m.SelectTarget(ctx, w.DiskIndex("sdb")) }, model.Target, nil, "corrupt set"},
			},
		},
		{
			name: "encrypted set asks for the key, plans with it",
			steps: []step{startRestore, connectLocal, pickNewest,
				{"set encrypted", func(m *model.Model, w *tuitest.World) error { w.Engine.SetKey("correct horse"); return nil }, model.Target, nil, ""},
				{"pick sdb", func(m *model.Model, w *tuitest.World) error { return m.SelectTarget(ctx, w.DiskIndex("sdb")) }, model.Key, payload.ErrNoKey, ""},
				{"wrong key", func(m *model.Model, _ *tuitest.World) error { return m.EnterKey(ctx, "battery staple") }, model.Key, payload.ErrWrongKey, ""},
				{"right key", func(m *model.Model, _ *tuitest.World) error { return m.EnterKey(ctx, " correct horse\n") }, model.Plan, nil, ""},
				proceed, confirm,
			},
		},
		{
			name: "wrong confirmation writes nothing",
			steps: append(append([]step{}, toConfirm...),
				step{"confirm sda", func(m *model.Model, _ *tuitest.World) error { return m.Confirm(ctx, "sda") }, model.Confirm, model.ErrConfirm, ""},
				step{"confirm empty", func(m *model.Model, _ *tuitest.World) error { return m.Confirm(ctx, "") }, model.Confirm, model.ErrConfirm, ""},
				step{"confirm path", func(m *model.Model, w *tuitest.World) error { return m.Confirm(ctx, w.Target.Path) }, model.Result, nil, ""},
			),
		},
		{
			name: "disk pulled mid-restore",
			steps: append(append([]step{
				{"fail after 100k", func(m *model.Model, w *tuitest.World) error { w.Engine.FailAfter = 100 << 10; return nil }, model.Home, nil, ""},
			}, toConfirm...),
				step{"confirm", func(m *model.Model, _ *tuitest.World) error { return m.Confirm(ctx, "sdb") }, model.Result, tuitest.ErrDiskRemoved, ""},
				back(model.Home),
			),
			check: func(t *testing.T, m *model.Model, w *tuitest.World) {
				if len(w.Powered()) != 0 {
					t.Errorf("powered off after a failure")
				}
			},
		},
		{
			name: "verify",
			steps: []step{
				{"start verify", func(m *model.Model, _ *tuitest.World) error { return m.Start(model.TaskVerify) }, model.Source, nil, ""},
				connectLocal,
				{"verify newest", func(m *model.Model, _ *tuitest.World) error { return m.SelectSet(ctx, 1) }, model.Result, nil, ""},
			},
			check: func(t *testing.T, m *model.Model, w *tuitest.World) {
				if st := m.State(); !st.Outcome.Verified || st.Task != model.TaskVerify {
					t.Errorf("outcome = %+v", st.Outcome)
				}
				if b, _ := w.TargetContent(16); !bytes.Equal(b, make([]byte, 16)) {
					t.Errorf("verify wrote to a disk")
				}
			},
		},
		{
			name: "clone",
			steps: []step{
				{"start clone", func(m *model.Model, _ *tuitest.World) error { return m.Start(model.TaskClone) }, model.CloneFrom, nil, ""},
				{"from sdc", func(m *model.Model, w *tuitest.World) error { return m.SelectFrom(w.DiskIndex("sdc")) }, model.Target, nil, ""},
				{"onto sdc", func(m *model.Model, w *tuitest.World) error { return m.SelectTarget(ctx, w.DiskIndex("sdc")) }, model.Target, model.ErrIneligible, ""},
				{"onto boot", func(m *model.Model, w *tuitest.World) error { return m.SelectTarget(ctx, w.DiskIndex("mmcblk0")) }, model.Target, model.ErrIneligible, ""},
				pickTarget, proceed, confirm,
				back(model.Home),
			},
		},
		{
			name: "clone back",
			steps: []step{
				{"start clone", func(m *model.Model, _ *tuitest.World) error { return m.Start(model.TaskClone) }, model.CloneFrom, nil, ""},
				{"from sdc", func(m *model.Model, w *tuitest.World) error { return m.SelectFrom(w.DiskIndex("sdc")) }, model.Target, nil, ""},
				back(model.CloneFrom), back(model.Home),
			},
		},
		{
			name: "wrong screen",
			steps: []step{
				{"confirm at home", func(m *model.Model, _ *tuitest.World) error { return m.Confirm(ctx, "sdb") }, model.Home, model.ErrWrongScreen, ""},
				{"accept at home", func(m *model.Model, _ *tuitest.World) error { return m.AcceptHostKey(ctx) }, model.Home, model.ErrWrongScreen, ""},
				{"cancel at home", func(m *model.Model, _ *tuitest.World) error { return m.Cancel() }, model.Home, model.ErrWrongScreen, ""},
			},
		},
		{
			name: "power off from result",
			steps: append(append([]step{}, toConfirm...), confirm,
				step{"power off", func(m *model.Model, _ *tuitest.World) error { return m.Reboot(false) }, model.Result, nil, ""}),
			check: func(t *testing.T, m *model.Model, w *tuitest.World) {
				if p := w.Powered(); len(p) != 1 || p[0] {
					t.Errorf("Powered() = %v; want [false]", p)
				}
			},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w, err := tuitest.NewWorld(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			m := model.New(w.Deps())
			for i, s := range tt.steps {
				err := s.do(m, w)
				switch {
				case s.wantErr != nil && !errors.Is(err, s.wantErr):
					t.Fatalf("step %d (%s): error = %v; want %v", i, s.name, err, s.wantErr)
				case s.wantErrStr != "" && (err == nil || !strings.Contains(err.Error(), s.wantErrStr)):
					t.Fatalf("step %d (%s): error = %v; want it to contain %q", i, s.name, err, s.wantErrStr)
				case s.wantErr == nil && s.wantErrStr == "" && err != nil:
					t.Fatalf("step %d (%s): error = %v", i, s.name, err)
				}
				if got := m.State().Screen; got != s.want {
					t.Fatalf("step %d (%s): screen = %s; want %s", i, s.name, got, s.want)
				}
				if err != nil && m.State().Screen != model.Result && m.State().Err == nil && !errors.Is(err, model.ErrWrongScreen) {
					t.Errorf("step %d (%s): error not shown in State().Err", i, s.name)
				}
			}
			if tt.check != nil {
				tt.check(t, m, w)
			}
		})
	}
}

// TestNothingWrittenBeforeConfirm walks to the Confirm screen and checks
// that the engine ran no job and the target is untouched.
func TestNothingWrittenBeforeConfirm(t *testing.T) {
	w, err := tuitest.NewWorld(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m := model.New(w.Deps())
	for _, f := range []func() error{
		func() error { return m.Start(model.TaskRestore) },
		func() error { return m.Connect(ctx, dirSpec(w.BackupDir)) },
		func() error { return m.SelectSet(ctx, 1) },
		func() error { return m.SelectTarget(ctx, w.DiskIndex("sdb")) },
		func() error { return m.Proceed() },
	} {
		if err := f(); err != nil {
			t.Fatal(err)
		}
	}
	if w.Engine.Runs != 0 {
		t.Errorf("engine ran %d jobs before Confirm", w.Engine.Runs)
	}
	b, _ := w.TargetContent(int(w.Target.Size))
	if !bytes.Equal(b, make([]byte, len(b))) {
		t.Errorf("target written before Confirm")
	}
	if st := m.State(); st.ConfirmWord != "sdb" || !strings.Contains(st.Plan, "onto "+w.Target.Path) {
		t.Errorf("ConfirmWord = %q, Plan = %q", st.ConfirmWord, st.Plan)
	}
}

// TestRunningCancelBusy holds the engine, looks at Running, tries what
// is refused there, then cancels.
func TestRunningCancelBusy(t *testing.T) {
	w, err := tuitest.NewWorld(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	w.Engine.Hold = make(chan struct{})
	m := model.New(w.Deps())
	running := make(chan struct{}, 1)
	m.OnChange(func() {
		if m.State().Screen == model.Running {
			select {
			case running <- struct{}{}:
			default:
			}
		}
	})
	for _, f := range []func() error{
		func() error { return m.Start(model.TaskRestore) },
		func() error { return m.Connect(ctx, dirSpec(w.BackupDir)) },
		func() error { return m.SelectSet(ctx, 1) },
		func() error { return m.SelectTarget(ctx, w.DiskIndex("sdb")) },
		func() error { return m.Proceed() },
	} {
		if err := f(); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error)
	go func() { done <- m.Confirm(ctx, "sdb") }()
	select {
	case <-running:
	case <-time.After(5 * time.Second):
		t.Fatal("never reached Running")
	}
	if st := m.State(); !st.CanCancel {
		t.Errorf("CanCancel = false while running")
	}
	if err := m.Back(); !errors.Is(err, model.ErrRunning) {
		t.Errorf("Back() = %v; want ErrRunning", err)
	}
	if err := m.Reboot(true); !errors.Is(err, model.ErrRunning) {
		t.Errorf("Reboot() = %v; want ErrRunning", err)
	}
	if err := m.Cancel(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Confirm() = %v; want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("cancel did not stop the job")
	}
	st := m.State()
	if st.Screen != model.Result || st.RunErr == nil || !strings.Contains(st.RunErr.Error(), "cancelled") {
		t.Errorf("after cancel: screen %s, RunErr %v", st.Screen, st.RunErr)
	}
}

func TestBusy(t *testing.T) {
	w, err := tuitest.NewWorld(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m := model.New(w.Deps())
	if err := m.Start(model.TaskRestore); err != nil {
		t.Fatal(err)
	}
	block := make(chan struct{})
	entered := make(chan struct{})
	slow := &slowOpener{Opener: w.Opener, block: block, entered: entered}
	d := w.Deps()
	d.Opener = slow
	m = model.New(d)
	_ = m.Start(model.TaskRestore)
	go m.Connect(ctx, dirSpec(w.BackupDir))
	<-entered
	if st := m.State(); st.Busy.IsZero() {
		t.Errorf("Busy empty while connecting")
	}
	if err := m.Connect(ctx, dirSpec(w.BackupDir)); !errors.Is(err, model.ErrBusy) {
		t.Errorf("second Connect() = %v; want ErrBusy", err)
	}
	if err := m.Back(); !errors.Is(err, model.ErrBusy) {
		t.Errorf("Back() = %v; want ErrBusy", err)
	}
	close(block)
}

type slowOpener struct {
	*tuitest.Opener
	block, entered chan struct{}
}

func (s *slowOpener) Open(ctx context.Context, sp source.Spec) (source.Source, error) {
	close(s.entered)
	<-s.block
	return s.Opener.Open(ctx, sp)
}

func TestProgressRateAndETA(t *testing.T) {
	now := time.Unix(0, 0)
	p := model.NewProgressForTest(func() time.Time { return now })
	p.Phase("root", 1000)
	now = now.Add(2 * time.Second)
	p.Add(500)
	s := p.State()
	if s.Rate != 250 || s.ETA != 2*time.Second || s.Percent() != 50 || s.All != 500 || s.Elapsed != 2*time.Second {
		t.Errorf("State() = %+v, Percent %v", s, s.Percent())
	}
	p.Phase("boot", 0)
	if s := p.State(); s.ETA != -1 || s.Percent() != -1 || s.All != 500 || s.Done != 0 {
		t.Errorf("unknown total: %+v", s)
	}
}
