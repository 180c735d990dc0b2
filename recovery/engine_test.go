package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pibackup/pibackup/internal/i18n"
	"github.com/pibackup/pibackup/internal/source"
	"github.com/pibackup/pibackup/internal/testfs"
	"github.com/pibackup/pibackup/internal/tui/model"
)

// TestEnginePlanLanguage: the plan the recovery's screen shows is in the
// UI's language (run.go gives the engine recovery.lang); an engine
// without a language plans in English.
func TestEnginePlanLanguage(t *testing.T) {
	testfs.Require(t, "pidisk")
	dir := t.TempDir()
	d, err := testfs.BuildPiDisk(dir, testfs.DiskOptions{})
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(dir, "target.img")
	if err := os.WriteFile(target, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(target, 384<<20); err != nil {
		t.Fatal(err)
	}
	req := model.Request{Task: model.TaskClone, From: source.Disk{Path: d.Path}, Target: source.Disk{Path: target}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tt := range []struct {
		lang      i18n.Lang
		want, not string
	}{
		{i18n.German, "Partitionstabelle der Quelle:", "Source partition table:"},
		{"", "Source partition table:", "Partitionstabelle der Quelle:"},
	} {
		p, err := engine{log: log, lang: tt.lang}.Plan(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if s := p.String(); !strings.Contains(s, tt.want) || strings.Contains(s, tt.not) {
			t.Errorf("lang %q: plan lacks %q or has %q:\n%s", tt.lang, tt.want, tt.not, s)
		}
	}
}
