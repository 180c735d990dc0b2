package runlog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const pw = "hunter22-secret"

func TestSecretNeverPrints(t *testing.T) {
	s := Secret(pw)
	var logBuf bytes.Buffer
	slog.New(slog.NewJSONHandler(&logBuf, nil)).Info("x", "pw", s, "group", slog.GroupValue(slog.Any("inner", s)))
	js, _ := json.Marshal(struct{ P Secret }{s})
	outs := map[string]string{
		"%s": fmt.Sprintf("%s", s), "%v": fmt.Sprintf("%v", s), "%q": fmt.Sprintf("%q", s),
		"%#v": fmt.Sprintf("%#v", s), "%x": fmt.Sprintf("%x", s), "%+v struct": fmt.Sprintf("%+v", struct{ P Secret }{s}),
		"slog": logBuf.String(), "json": string(js), "String": s.String(),
	}
	for what, out := range outs {
		if strings.Contains(out, pw) || strings.Contains(out, fmt.Sprintf("%x", pw)) {
			t.Errorf("%s reveals the secret: %s", what, out)
		}
	}
	if s.Reveal() != pw || Secret("").String() != "" {
		t.Error("Reveal or empty String wrong")
	}
}

// logName is the run log's name in a set of host pi (the name itself is
// backupset's business).
const logName = "pi-backup.backupctl.log"

func TestOpenTeeMaskSummary(t *testing.T) {
	dir := t.TempDir()
	var console bytes.Buffer
	now := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := now
	l, err := Open(Options{
		Path:    filepath.Join(dir, logName),
		Console: slog.NewTextHandler(&console, &slog.HandlerOptions{Level: slog.LevelWarn}),
		JSON:    true,
		Secrets: []string{pw},
		Now:     func() time.Time { return clock },
	})
	if err != nil {
		t.Fatal(err)
	}
	l.Logger.Info("smtp dialogue", "line", "AUTH PLAIN user "+pw)
	l.Logger.With("cfg", "password="+pw).Warn("auth failed", "error", errors.New("535 bad password "+pw))
	clock = now.Add(90 * time.Second)
	l.Summary(context.Background(), Summary{Operation: "backup", Set: "pi@debian12-rsync-backup-20240102-030405",
		Type: "rsync", Bytes: 1234, Err: errors.New("rsync exit 23")})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, logName))
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(filepath.Join(dir, logName))
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("log mode %o", fi.Mode().Perm())
	}
	file := string(b)
	for what, out := range map[string]string{"file": file, "console": console.String()} {
		if strings.Contains(out, pw) {
			t.Errorf("%s reveals the secret:\n%s", what, out)
		}
	}
	lines := strings.Split(strings.TrimSpace(file), "\n")
	if len(lines) != 3 {
		t.Fatalf("file has %d lines:\n%s", len(lines), file)
	}
	var sum map[string]any
	if err := json.Unmarshal([]byte(lines[2]), &sum); err != nil {
		t.Fatal(err)
	}
	if sum["msg"] != "summary" || sum["ok"] != false || sum["duration"] != float64(90*time.Second) ||
		sum["error"] != "rsync exit 23" || sum["level"] != "ERROR" {
		t.Errorf("summary = %v", sum)
	}
	// The console got only Warn and above (its own level).
	if strings.Contains(console.String(), "smtp dialogue") || !strings.Contains(console.String(), "auth failed") {
		t.Errorf("console:\n%s", console.String())
	}
}

func TestLogSurvivesSetRename(t *testing.T) {
	// The log is opened in <host>/tmp/<set> and the set is renamed into
	// place while the run still logs.
	root := t.TempDir()
	tmp := filepath.Join(root, "tmp", "set")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := Open(Options{Path: filepath.Join(tmp, logName)})
	if err != nil {
		t.Fatal(err)
	}
	l.Logger.Info("before move")
	final := filepath.Join(root, "set")
	if err := os.Rename(tmp, final); err != nil {
		t.Fatal(err)
	}
	l.Logger.Info("after move")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(final, logName))
	if !strings.Contains(string(b), "before move") || !strings.Contains(string(b), "after move") {
		t.Errorf("log after rename:\n%s", b)
	}
}

func TestMaskError(t *testing.T) {
	base := errors.New("dial: password " + pw + " rejected")
	m := NewMasker(pw, "ab") // too short to mask
	err := m.MaskError(fmt.Errorf("send: %w", base))
	if strings.Contains(err.Error(), pw) || !errors.Is(err, base) {
		t.Errorf("MaskError = %v (Is base: %v)", err, errors.Is(err, base))
	}
	if got := m.Mask("abc"); got != "abc" {
		t.Errorf("short secret masked: %q", got)
	}
}
