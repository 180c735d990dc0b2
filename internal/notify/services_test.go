package notify

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pibackup/pibackup/internal/runlog"
)

// request is what a fake service saw.
type request struct {
	Path, Auth string
	Body       map[string]any
}

func fakeService(t *testing.T) (*httptest.Server, <-chan request) {
	t.Helper()
	got := make(chan request, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var body map[string]any
		if err := json.Unmarshal(b, &body); err != nil {
			t.Errorf("%s: body is not JSON: %q", r.URL.Path, b)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type %q", r.URL.Path, ct)
		}
		got <- request{Path: r.URL.Path, Auth: r.Header.Get("Authorization"), Body: body}
		if strings.Contains(r.URL.Path, "fail") {
			http.Error(w, `{"ok":false,"description":"Unauthorized"}`, http.StatusUnauthorized)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

// TestServices sends a failure through each service to a fake of its API
// and checks the request the service's documentation asks for.
func TestServices(t *testing.T) {
	failed := Message{Subject: "backupctl: backup of pi FAILED", Body: "no space left\n", OK: false, Host: "pi"}
	srv, got := fakeService(t)
	base := runlog.Secret(srv.URL)
	cases := []struct {
		name  string
		make  func(ServiceOptions) (Notifier, error)
		opts  ServiceOptions
		check func(t *testing.T, r request)
	}{
		{"telegram", NewTelegram, ServiceOptions{Token: "123:ABC", User: "-1001", URL: base}, func(t *testing.T, r request) {
			if r.Path != "/bot123:ABC/sendMessage" || r.Body["chat_id"] != "-1001" || !strings.Contains(r.Body["text"].(string), "FAILED") {
				t.Errorf("telegram request %+v", r)
			}
		}},
		{"pushover", NewPushover, ServiceOptions{Token: "apptok", User: "userkey", URL: base}, func(t *testing.T, r request) {
			if r.Path != "/1/messages.json" || r.Body["token"] != "apptok" || r.Body["user"] != "userkey" ||
				r.Body["title"] != failed.Subject || r.Body["message"] != "no space left" || r.Body["priority"] != float64(1) {
				t.Errorf("pushover request %+v", r)
			}
		}},
		{"discord", NewDiscord, ServiceOptions{URL: base + "/api/webhooks/1/secret"}, func(t *testing.T, r request) {
			if r.Path != "/api/webhooks/1/secret" || !strings.Contains(r.Body["content"].(string), "no space left") {
				t.Errorf("discord request %+v", r)
			}
		}},
		{"slack", NewSlack, ServiceOptions{URL: base + "/services/T/B/X"}, func(t *testing.T, r request) {
			if r.Path != "/services/T/B/X" || !strings.HasPrefix(r.Body["text"].(string), failed.Subject) {
				t.Errorf("slack request %+v", r)
			}
		}},
		{"ntfy", NewNtfy, ServiceOptions{URL: base, Topic: "pi-backups", Token: "tk_x"}, func(t *testing.T, r request) {
			if r.Path != "/" || r.Body["topic"] != "pi-backups" || r.Body["priority"] != float64(5) || r.Auth != "Bearer tk_x" || r.Body["title"] != failed.Subject {
				t.Errorf("ntfy request %+v", r)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n, err := c.make(c.opts)
			if err != nil {
				t.Fatal(err)
			}
			if err := n.Notify(context.Background(), failed); err != nil {
				t.Fatal(err)
			}
			c.check(t, <-got)
			// On-error-only stays quiet on success.
			c.opts.OnFailureOnly = true
			n, _ = c.make(c.opts)
			if err := n.Notify(context.Background(), Message{Subject: "ok", OK: true}); err != nil {
				t.Fatal(err)
			}
			select {
			case r := <-got:
				t.Errorf("on-error-only sent a success: %+v", r)
			default:
			}
		})
	}
}

// TestServiceErrors: missing required settings are refused with the key
// to set, and a failing API answer is an error that never shows the
// token.
func TestServiceErrors(t *testing.T) {
	for name, f := range map[string]func() (Notifier, error){
		"telegram.chat-id": func() (Notifier, error) { return NewTelegram(ServiceOptions{Token: "1:A"}) },
		"pushover.user":    func() (Notifier, error) { return NewPushover(ServiceOptions{Token: "t"}) },
		"discord.webhook-url": func() (Notifier, error) {
			return NewDiscord(ServiceOptions{URL: "ftp://x"})
		},
		"ntfy.topic": func() (Notifier, error) { return NewNtfy(ServiceOptions{}) },
	} {
		if _, err := f(); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: err = %v; want one naming %s", name, err, name)
		}
	}
	srv, got := fakeService(t)
	n, err := NewTelegram(ServiceOptions{Token: "999:SECRETTOKEN", User: "1", URL: runlog.Secret(srv.URL + "/fail")})
	if err != nil {
		t.Fatal(err)
	}
	err = n.Notify(context.Background(), Message{Subject: "x"})
	<-got
	if err == nil || !strings.Contains(err.Error(), "401") || strings.Contains(err.Error(), "SECRETTOKEN") || strings.Contains(n.String(), "SECRETTOKEN") {
		t.Errorf("failed send: %v (%s); want HTTP 401 without the token", err, n)
	}
}
