package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBackupNotifiesServices runs real backups with Telegram and ntfy
// pointed at fakes of their APIs on 127.0.0.1: with notify-start a
// start notice comes first, then the outcome; the outcome carries the
// test-restore reminder; ntfy, set to on-error-only, hears only the
// failure.
func TestBackupNotifiesServices(t *testing.T) {
	d := fixture(t)
	type msg struct{ path, text string }
	got := make(chan msg, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var body map[string]any
		json.Unmarshal(b, &body)
		text, _ := body["text"].(string)
		if title, ok := body["title"].(string); ok {
			text = title + "\n" + fmt.Sprint(body["message"])
		}
		got <- msg{r.URL.Path, text}
	}))
	defer srv.Close()
	conf := filepath.Join(t.TempDir(), "backupctl.conf")
	body := fmt.Sprintf(`notify-start = true
[telegram]
token = "42:TOKEN"
chat-id = "1234"
api-url = %q
[ntfy]
url = %q
topic = "pi"
on-error-only = true
`, srv.URL, srv.URL)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	drain := func() []msg {
		var out []msg
		for {
			select {
			case m := <-got:
				out = append(out, m)
			default:
				return out
			}
		}
	}
	target := t.TempDir()
	if code, out, errOut := cli(context.Background(), "backup", "-f", conf, "-t", "tgz", "--source-disk", d.Path, target); code != 0 {
		t.Fatalf("backup: exit %d\n%s%s", code, out, errOut)
	}
	ms := drain()
	if len(ms) != 2 || ms[0].path != "/bot42:TOKEN/sendMessage" || !strings.Contains(ms[0].text, "started") ||
		!strings.Contains(ms[1].text, "succeeded") || !strings.Contains(ms[1].text, "restore-test") {
		t.Errorf("a good backup sent %q; want Telegram's start notice, then its success notice with the restore-test reminder", ms)
	}
	if code, _, _ := cli(context.Background(), "backup", "-f", conf, "-t", "tgz", "--source-disk", d.Path, "--hook-ready", "false", target); code == 0 {
		t.Fatal("backup with a failing hook succeeded")
	}
	ms = drain()
	var ntfy, failed int
	for _, m := range ms {
		if m.path == "/" {
			ntfy++
		}
		if strings.Contains(m.text, "FAILED") {
			failed++
		}
	}
	if ntfy != 1 || failed != 2 {
		t.Errorf("a failed backup sent %q; want the failure through Telegram and ntfy (ntfy only that)", ms)
	}
}
