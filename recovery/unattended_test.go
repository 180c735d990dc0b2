package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/pibackup/pibackup/internal/bootcmdline"
	"github.com/pibackup/pibackup/internal/tui/tuitest"
)

func TestUnattended(t *testing.T) {
	for _, tt := range []struct {
		name    string
		cmdline func(w *tuitest.World) string
		conf    string
		wantErr string // substring of result.Error; "" = success
		check   func(t *testing.T, w *tuitest.World, r result)
	}{
		{
			name: "latest onto image",
			cmdline: func(w *tuitest.World) string {
				return "console=ttyS0 recovery.source=dir:" + w.BackupDir + " recovery.target=" + w.Target.Path + " recovery.yes=1 recovery.host=pi"
			},
			check: func(t *testing.T, w *tuitest.World, r result) {
				if r.Set != w.NewestSet || !r.Verified || r.Bytes != int64(len(w.Payload)+len("label: dos\n")) {
					t.Errorf("result = %+v", r)
				}
				b, _ := w.TargetContent(int(w.Target.Size))
				if !bytes.Contains(b, w.Payload) {
					t.Errorf("target does not hold the payload")
				}
			},
		},
		{
			name: "named set",
			cmdline: func(w *tuitest.World) string {
				return "recovery.source=dir:" + w.BackupDir + " recovery.target=" + w.Target.Path + " recovery.yes=1 recovery.set=pi@debian12-dd-backup-20260301-120000"
			},
			check: func(t *testing.T, w *tuitest.World, r result) {
				if r.Set != "pi@debian12-dd-backup-20260301-120000" || r.Bytes != 4096 {
					t.Errorf("result = %+v", r)
				}
			},
		},
		{
			name: "dry run without yes writes nothing",
			cmdline: func(w *tuitest.World) string {
				return "recovery.source=dir:" + w.BackupDir + " recovery.target=" + w.Target.Path
			},
			wantErr: "planned only",
			check: func(t *testing.T, w *tuitest.World, r result) {
				if w.Engine.Runs != 0 {
					t.Errorf("engine ran")
				}
			},
		},
		{
			name: "set in progress is never picked by name",
			cmdline: func(w *tuitest.World) string {
				return "recovery.source=dir:" + w.BackupDir + " recovery.target=" + w.Target.Path + " recovery.yes=1 recovery.set=pi@debian12-tar-backup-20260304-120000"
			},
			wantErr: "not found",
		},
		{
			name: "unknown host",
			cmdline: func(w *tuitest.World) string {
				return "recovery.source=dir:" + w.BackupDir + " recovery.target=" + w.Target.Path + " recovery.yes=1 recovery.host=other"
			},
			wantErr: "no complete backup set",
		},
		{
			name: "boot disk refused",
			cmdline: func(w *tuitest.World) string {
				return "recovery.source=dir:" + w.BackupDir + " recovery.target=/dev/mmcblk0 recovery.yes=1"
			},
			wantErr: "the recovery runs from it",
		},
		{
			name: "disk holding the set refused",
			cmdline: func(w *tuitest.World) string {
				return "recovery.source=dir:" + w.BackupDir + " recovery.target=/dev/sda recovery.yes=1"
			},
			wantErr: "it holds the backup",
		},
		{
			name: "missing target",
			cmdline: func(w *tuitest.World) string {
				return "recovery.source=dir:" + w.BackupDir + " recovery.target=/dev/sdz recovery.yes=1"
			},
			wantErr: "no such disk",
		},
		{
			name: "too small",
			cmdline: func(w *tuitest.World) string {
				return "recovery.source=dir:" + w.BackupDir + " recovery.target=" + w.Small.Path + " recovery.yes=1"
			},
			wantErr: "too small",
		},
		{
			name: "corrupt set",
			cmdline: func(w *tuitest.World) string {
				return "recovery.source=dir:" + w.CorruptDir + " recovery.target=" + w.Target.Path + " recovery.yes=1"
			},
			wantErr: "corrupt set",
		},
		{
			name: "unpinned host key",
			cmdline: func(w *tuitest.World) string {
				return "recovery.source=" + tuitest.SFTPURL + " recovery.target=" + w.Target.Path + " recovery.yes=1"
			},
			conf:    "password=" + tuitest.SFTPPassword + "\nknown_host=SHA256:AAAAztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s\n",
			wantErr: "host key does not match",
		},
		{
			name: "sftp pinned, wrong password",
			cmdline: func(w *tuitest.World) string {
				return "recovery.source=" + tuitest.SFTPURL + " recovery.target=" + w.Target.Path + " recovery.yes=1"
			},
			conf:    "password=nope\nknown_host=" + tuitest.SFTPHostKey + "\n",
			wantErr: "authentication failed",
		},
		{
			name: "sftp pinned",
			cmdline: func(w *tuitest.World) string {
				return "recovery.source=" + tuitest.SFTPURL + " recovery.target=" + w.Target.Path + " recovery.yes=1"
			},
			conf: "password=" + tuitest.SFTPPassword + "\nknown_host=" + tuitest.SFTPHostKey + "\n",
		},
		{
			name: "disk pulled mid-restore",
			cmdline: func(w *tuitest.World) string {
				w.Engine.FailAfter = 100 << 10
				return "recovery.source=dir:" + w.BackupDir + " recovery.target=" + w.Target.Path + " recovery.yes=1"
			},
			wantErr: "disk removed",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w, err := tuitest.NewWorld(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := bootcmdline.Parse(tt.cmdline(w), strings.NewReader(tt.conf))
			if err != nil {
				t.Fatal(err)
			}
			if !cfg.Unattended() {
				t.Fatal("not unattended")
			}
			var out bytes.Buffer
			r := unattended(context.Background(), cfg, nil, unattendedDeps{
				Opener: w.Opener, Disks: w.Disks, Engine: w.Engine, BootDisk: w.Boot.Path,
				Log: slog.New(slog.DiscardHandler), Out: &out,
				WaitNet: func(context.Context) error { return nil },
			})
			switch {
			case tt.wantErr == "" && r.Error != "":
				t.Fatalf("result error %q; output:\n%s", r.Error, out.String())
			case tt.wantErr != "" && !strings.Contains(r.Error, tt.wantErr):
				t.Fatalf("result error %q; want it to contain %q", r.Error, tt.wantErr)
			}
			line := r.line()
			var back map[string]any
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "RECOVERY-RESULT ")), &back); err != nil {
				t.Fatalf("line %q: %v", line, err)
			}
			for _, k := range []string{"set", "target", "bytes", "seconds", "verified", "error"} {
				if _, ok := back[k]; !ok {
					t.Errorf("line %q has no key %q", line, k)
				}
			}
			if strings.Contains(line, tuitest.SFTPPassword) || strings.Contains(out.String(), tuitest.SFTPPassword) {
				t.Errorf("password in the output")
			}
			if tt.check != nil {
				tt.check(t, w, r)
			}
		})
	}
}

func TestConsoles(t *testing.T) {
	dev := t.TempDir() // no ttyS0 in it: serial0 resolves to ttyAMA0
	for _, tt := range []struct {
		cmdline string
		want    string
		ui      string
	}{
		{"", "console", "console"},
		{"console=ttyAMA0", "ttyAMA0", "ttyAMA0"},
		{"console=serial0,115200 console=tty1 rootwait", "ttyAMA0 tty1", "tty1"},
		{"console=tty0 console=ttyS0,115200n8 console=ttyS0", "tty1 ttyS0", "ttyS0"},
		{`quiet console= recovery.source="usb:X/y z"`, "console", "console"},
	} {
		got := strings.Join(consoles(tt.cmdline, dev), " ")
		if got != tt.want {
			t.Errorf("consoles(%q) = %q; want %q", tt.cmdline, got, tt.want)
		}
		if ui := uiTTY("", tt.cmdline, dev); ui != tt.ui {
			t.Errorf("uiTTY(%q) = %q; want %q", tt.cmdline, ui, tt.ui)
		}
	}
	if ui := uiTTY("ttyS1", "console=tty1", dev); ui != "ttyS1" {
		t.Errorf("uiTTY with recovery.tty = %q", ui)
	}
}
