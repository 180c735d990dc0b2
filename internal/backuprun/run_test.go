package backuprun

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pibackup/pibackup/internal/backup"
	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/config"
	"github.com/pibackup/pibackup/internal/hooks"
	"github.com/pibackup/pibackup/internal/i18n"
	"github.com/pibackup/pibackup/internal/store"
	"github.com/pibackup/pibackup/internal/store/storetest"
	"github.com/pibackup/pibackup/internal/testfs"
	"github.com/pibackup/pibackup/internal/verify"
)

// The run is driven here without the CLI, as the timer's backupctl and
// the soak test drive it: a real Pi-like disk image as the source disk,
// real hook scripts and stop/start commands, the new set judged by
// verify and by what is left in the target folder.

var shared = testfs.SharedDisk{Prefix: "backuprun-fixture-", Opts: testfs.DiskOptions{Hostname: "testpi"}}

func TestMain(m *testing.M) {
	code := m.Run()
	shared.Remove()
	os.Exit(code)
}

func fixture(t *testing.T) *testfs.PiDisk {
	t.Helper()
	return shared.Get(t)
}

// env is a run's surroundings: a service the stop/start commands stop
// and start (a state file), hooks that record what they saw, and the run
// folder for the marker.
type env struct {
	dir    string // records and the service's state
	runDir string
	cfg    *config.Config
	log    bytes.Buffer
	stderr bytes.Buffer
}

func newEnv(t *testing.T, typ string) *env {
	t.Helper()
	e := &env{dir: t.TempDir(), runDir: t.TempDir()}
	e.cfg = config.Defaults()
	e.cfg.Type = typ
	e.cfg.HooksDir = filepath.Join(t.TempDir(), "no-hooks.d")
	e.cfg.StopCommands = []string{fmt.Sprintf("/bin/sh -c 'echo stopped > %s/service'", e.dir)}
	e.cfg.StartCommands = []string{fmt.Sprintf("/bin/sh -c 'echo running > %s/service'", e.dir)}
	// Every hook records the service's state and BACKUP_RC.
	for _, ev := range []*[]string{&e.cfg.HooksPreBackup, &e.cfg.HooksReady, &e.cfg.HooksPostBackup} {
		*ev = []string{fmt.Sprintf(`/bin/sh -c 'echo "$(cat %[1]s/service 2>/dev/null) rc=${BACKUP_RC-none}" > %[1]s/$BACKUP_EVENT'`, e.dir)}
	}
	if err := e.cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return e
}

// read returns what file name in the env's folder holds, "" if absent.
func (e *env) read(name string) string {
	b, _ := os.ReadFile(filepath.Join(e.dir, name))
	return strings.TrimSpace(string(b))
}

// run builds a Run as the CLI does and executes it; the RC it passes on
// is the CLI's in miniature (0, 1, 3 for a hook that aborted).
func (e *env) run(t *testing.T, ctx context.Context, d *testfs.PiDisk, target string) Result {
	t.Helper()
	return e.runWith(t, ctx, d, target, nil)
}

// runIn is run into the store st.
func (e *env) runIn(t *testing.T, ctx context.Context, d *testfs.PiDisk, st store.Store) Result {
	t.Helper()
	return e.runWith(t, ctx, d, st.String(), st)
}

func (e *env) runWith(t *testing.T, ctx context.Context, d *testfs.PiDisk, target string, st store.Store) Result {
	t.Helper()
	r := &Run{
		Store: st,
		Opts: backup.Options{Target: target, Type: backupset.Type(e.cfg.Type), SourceDisk: d.Path,
			CopyBootFiles: true, ToolVersion: "backuprun test"},
		Config: e.cfg, Msg: i18n.New(i18n.English), Log: slog.New(slog.NewTextHandler(&e.log, nil)),
		Out: io.Discard, Stderr: &e.stderr, RunDir: e.runDir, Version: "backuprun test",
		RC: func(_ context.Context, err error, stage Stage) int {
			switch {
			case err == nil:
				return 0
			case errors.Is(err, hooks.ErrHookFailed) && stage == StageHook:
				return 3
			}
			return 1
		},
	}
	defer r.Close()
	res, err := r.Execute(ctx)
	if err != res.Err {
		t.Errorf("Execute returned %v; Result.Err is %v", err, res.Err)
	}
	if res.RunLog != nil {
		if err := res.RunLog.Close(); err != nil {
			t.Error(err)
		}
	}
	return res
}

// TestExecute writes two verified sets of a real disk with services and
// hooks around them; keep = 1 makes the second run delete the first.
func TestExecute(t *testing.T) {
	d := fixture(t)
	e := newEnv(t, "tgz")
	e.cfg.Keep = 1
	target := t.TempDir()
	res := e.run(t, context.Background(), d, target)
	if res.Err != nil || res.StartErr != nil || res.RetErr != nil {
		t.Fatalf("run: %v, start %v, retention %v\n%s", res.Err, res.StartErr, res.RetErr, e.log.String())
	}
	if res.Host != "testpi" || res.Type != "tgz" || filepath.Base(res.SetDir) != res.Set || res.Engine == nil {
		t.Errorf("result %+v", res)
	}
	if _, err := verify.Dir(context.Background(), res.SetDir, verify.Options{}); err != nil {
		t.Errorf("the new set does not verify: %v", err)
	}
	for ev, want := range map[string]string{"pre-backup": "rc=none", "ready": "stopped rc=none", "post-backup": "stopped rc=0"} {
		if got := e.read(ev); got != want && !(ev == "pre-backup" && strings.HasSuffix(got, want)) {
			t.Errorf("%s hook saw %q; want %q", ev, got, want)
		}
	}
	if got := e.read("service"); got != "running" {
		t.Errorf("service after the run: %q; want running", got)
	}
	if _, err := os.Stat(filepath.Join(e.runDir, MarkerName)); !os.IsNotExist(err) {
		t.Errorf("marker of stopped services left after a good run: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(res.SetDir, backupset.RunLogName("testpi")))
	if err != nil || !strings.Contains(string(b), "new set verified") {
		t.Errorf("run log in the set: %v\n%s", err, b)
	}
	// The payload was read back from the disk while it was written, and
	// the boot image by its data ranges, so the verify before the commit
	// read neither again.
	if want := "read_back_while_written=testpi-backup.img," + res.Set + ".tgz"; !strings.Contains(string(b), want) {
		t.Errorf("run log in the set does not say %q:\n%s", want, b)
	}

	second := e.run(t, context.Background(), d, target)
	if second.Err != nil || second.RetErr != nil {
		t.Fatalf("second run: %v, retention %v", second.Err, second.RetErr)
	}
	if !slices.Equal(second.Removed, []string{res.Set}) || second.Kept != 1 {
		t.Errorf("retention removed %q, kept %d; want %s removed, 1 kept", second.Removed, second.Kept, res.Set)
	}
	if _, err := os.Stat(res.SetDir); !os.IsNotExist(err) {
		t.Errorf("first set still there with keep = 1: %v", err)
	}
}

// TestExecuteWriteFails fills the target from the ready hook, while the
// service is stopped: the write fails, post-backup sees rc=1, the service
// runs again, the partial set is gone, its log is kept and no retention
// ran (keep = 1 and an older set stays).
func TestExecuteWriteFails(t *testing.T) {
	testfs.Require(t, "loop")
	d := fixture(t)
	e := newEnv(t, "tgz")
	e.cfg.Keep = 1
	target := newExt4(t, 256<<20)
	first := e.run(t, context.Background(), d, target)
	if first.Err != nil {
		t.Fatalf("first run: %v", first.Err)
	}
	fill := filepath.Join(t.TempDir(), "fill.sh")
	script := fmt.Sprintf(`hostdir=$(dirname "$BACKUP_TARGETDIR")
set -- $(stat -f -c '%%f %%S' "$hostdir")
size=$(( $1 * $2 ))
until fallocate -l $size "%s/filler" 2>/dev/null; do size=$((size - 1048576)); done
`, target)
	if err := os.WriteFile(fill, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	e.cfg.HooksReady = append(e.cfg.HooksReady, "/bin/sh "+fill)

	res := e.run(t, context.Background(), d, target)
	if res.Err == nil || !strings.Contains(res.Err.Error(), "no space left") || res.Stage != StageWrite {
		t.Fatalf("run onto a full target: %v in stage %s; want no space left in %s", res.Err, res.Stage, StageWrite)
	}
	if got := e.read("service"); got != "running" {
		t.Errorf("service after the failed write: %q; want running", got)
	}
	if got := e.read("post-backup"); got != "stopped rc=1" {
		t.Errorf("post-backup hook saw %q; want stopped rc=1", got)
	}
	failedLog := filepath.Join(target, "testpi", FailedLogName)
	if res.LogFile != failedLog {
		t.Errorf("log file %q; want %s", res.LogFile, failedLog)
	}
	if _, err := os.Stat(failedLog); err != nil {
		t.Errorf("failed run's log: %v", err)
	}
	if res.Left != "" || len(res.Removed) != 0 {
		t.Errorf("left %q, removed %q; want nothing left, nothing removed", res.Left, res.Removed)
	}
	if _, err := os.Stat(first.SetDir); err != nil {
		t.Errorf("the older set is gone after a failed run: %v", err)
	}
	if es, _ := os.ReadDir(filepath.Join(target, "testpi", backupset.TmpDir)); len(es) != 0 {
		t.Errorf("partial set left in tmp: %v", es)
	}
}

// TestExecutePreHookAborts: a failing pre-backup hook stops the run
// before services stop and before a byte of a set is written.
func TestExecutePreHookAborts(t *testing.T) {
	d := fixture(t)
	e := newEnv(t, "tgz")
	e.cfg.HooksPreBackup = []string{"/bin/sh -c 'echo database dump failed >&2; exit 1'"}
	target := t.TempDir()
	res := e.run(t, context.Background(), d, target)
	if !errors.Is(res.Err, hooks.ErrHookFailed) || res.Stage != StageHook || !strings.Contains(res.Err.Error(), "database dump failed") {
		t.Fatalf("run with a failing pre-backup hook: %v in stage %s; want the hook's error in %s", res.Err, res.Stage, StageHook)
	}
	if got := e.read("service"); got != "" {
		t.Errorf("service was touched (%q) although pre-backup failed", got)
	}
	if e.read("ready") != "" || e.read("post-backup") != "" {
		t.Error("ready or post-backup hooks ran after pre-backup failed")
	}
	if res.LogFile != filepath.Join(target, "testpi", FailedLogName) {
		t.Errorf("log file %q; want the kept failed log", res.LogFile)
	}
	l, err := backupset.List(os.DirFS(target), ".")
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Sets) != 0 {
		t.Errorf("sets after the aborted run: %+v", l.Sets)
	}
}

// newExt4 makes a fresh ext4 of size bytes, mounted read-write.
func newExt4(t *testing.T, size int64) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "ext4.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	dir := t.TempDir()
	testfs.MountExt4(t, testfs.AttachLoop(t, img, 0, 0, false), dir, false)
	return dir
}

// TestExecuteServiceDoesNotStart: the set is complete and kept, the
// error of the start command is the result's, and the marker stays so
// recover-services tries once more.
func TestExecuteServiceDoesNotStart(t *testing.T) {
	d := fixture(t)
	e := newEnv(t, "tgz")
	e.cfg.StartCommands = []string{"/bin/sh -c 'echo unit failed >&2; exit 1'"}
	res := e.run(t, context.Background(), d, t.TempDir())
	if res.Err != nil {
		t.Fatalf("run: %v", res.Err)
	}
	if res.StartErr == nil || !strings.Contains(res.StartErr.Error(), "unit failed") {
		t.Errorf("start error %v; want the start command's", res.StartErr)
	}
	if _, err := os.Stat(res.SetDir); err != nil {
		t.Errorf("the complete set: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(e.runDir, MarkerName))
	if err != nil || !strings.Contains(string(b), "unit failed") {
		t.Errorf("marker for recover-services: %v\n%s", err, b)
	}
}

// TestExecuteManifestLast runs backups into a store that cannot rename
// (a local folder behind storetest.NoRename, as S3 is): the set is
// written in place and verified with its manifest served from memory,
// the manifest is written last, the run log is uploaded into the set; a
// set folder without a manifest (a killed run's) is never listed as a
// set and is removed by the next run; retention deletes the manifest
// first.
func TestExecuteManifestLast(t *testing.T) {
	d := fixture(t)
	e := newEnv(t, "tgz")
	e.cfg.Keep = 1
	target := t.TempDir()
	dir, err := store.OpenDir(target)
	if err != nil {
		t.Fatal(err)
	}
	st := storetest.NoRename(dir)
	list := func() *backupset.Listing {
		t.Helper()
		l, err := backupset.ListOptions{ManifestLast: true}.List(os.DirFS(target), ".")
		if err != nil {
			t.Fatal(err)
		}
		return l
	}

	res := e.runIn(t, context.Background(), d, st)
	if res.Err != nil || res.RetErr != nil {
		t.Fatalf("run: %v, retention %v\n%s", res.Err, res.RetErr, e.log.String())
	}
	setDir := filepath.Join(target, "testpi", res.Set)
	if _, err := verify.Dir(context.Background(), setDir, verify.Options{}); err != nil {
		t.Errorf("the new set does not verify: %v", err)
	}
	if _, err := os.Stat(filepath.Join(target, "testpi", backupset.TmpDir)); !os.IsNotExist(err) {
		t.Errorf("tmp/ on a store that cannot rename: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(setDir, backupset.RunLogName("testpi"))); err != nil || !strings.Contains(string(b), "new set verified") {
		t.Errorf("run log uploaded into the set: %v\n%s", err, b)
	}
	if b, err := os.ReadFile(LocalRunLog(e.runDir, st, "testpi")); err != nil || !strings.Contains(string(b), "new set verified") {
		t.Errorf("local run log in the run folder: %v", err)
	}

	// A killed run's leftover: a set folder with payloads, no manifest.
	killed := filepath.Join(target, "testpi", res.Set[:len(res.Set)-len("HHMMSS")]+"000001")
	if err := os.MkdirAll(killed, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(killed, filepath.Base(killed)+".tgz"), []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, s := range list().Sets {
		if s.String() == filepath.Base(killed) && !s.InProgress {
			t.Errorf("a set folder without a manifest is listed as a complete set: %+v", s)
		}
	}
	if l, err := backupset.List(os.DirFS(target), "."); err != nil || len(l.Sets) != 2 {
		t.Fatalf("plain listing: %v %+v", err, l)
	}

	second := e.runIn(t, context.Background(), d, st)
	if second.Err != nil || second.RetErr != nil {
		t.Fatalf("second run: %v, retention %v\n%s", second.Err, second.RetErr, e.log.String())
	}
	if _, err := os.Stat(killed); !os.IsNotExist(err) {
		t.Errorf("the killed run's set folder is still there: %v", err)
	}
	if !slices.Equal(second.Removed, []string{res.Set}) {
		t.Errorf("retention removed %q; want %s", second.Removed, res.Set)
	}
	var names []string
	for _, s := range list().Sets {
		names = append(names, s.String())
		if s.InProgress {
			t.Errorf("set in progress left: %s", s)
		}
	}
	if !slices.Equal(names, []string{second.Set}) {
		t.Errorf("sets after the second run: %q; want %s", names, second.Set)
	}
}

// TestExecuteRsyncOnServer: an rsync set needs a filesystem; on a
// store that is no local folder it is refused before anything is
// written, with advice.
func TestExecuteRsyncOnServer(t *testing.T) {
	d := fixture(t)
	e := newEnv(t, "rsync")
	target := t.TempDir()
	dir, err := store.OpenDir(target)
	if err != nil {
		t.Fatal(err)
	}
	res := e.runIn(t, context.Background(), d, storetest.NoRename(dir))
	if !errors.Is(res.Err, backup.ErrPreflight) || !errors.Is(res.Err, backup.ErrRsyncRemote) || !strings.Contains(res.Err.Error(), "tgz") {
		t.Fatalf("rsync onto a server: %v; want a pre-flight refusal advising tgz", res.Err)
	}
	if es, _ := os.ReadDir(target); len(es) != 0 {
		t.Errorf("written although refused: %v", es)
	}
	if got := e.read("service"); got != "" {
		t.Errorf("service was touched (%q) although the run was refused", got)
	}
}
