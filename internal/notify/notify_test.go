package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pibackup/pibackup/internal/runlog"
)

const pw = "s3cret-Pa55word"

func TestEmail(t *testing.T) {
	logFile := filepath.Join(t.TempDir(), "backupctl.log")
	if err := os.WriteFile(logFile, []byte("level=INFO msg=summary ok=false\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		implicit  bool
		security  Security
		auth      Auth
		wantMech  string
		attach    bool
		onFailure bool
		ok        bool
		wantMails int
	}{
		{name: "starttls plain", security: StartTLS, auth: AuthPlain, wantMech: "PLAIN", wantMails: 1},
		{name: "implicit tls login with log", implicit: true, security: ImplicitTLS, auth: AuthLogin, wantMech: "LOGIN", attach: true, wantMails: 1},
		{name: "starttls auto", security: StartTLS, auth: AuthAuto, wantMails: 1},
		{name: "failure only skips success", security: StartTLS, auth: AuthPlain, onFailure: true, ok: true, wantMails: 0},
		{name: "failure only sends failure", security: StartTLS, auth: AuthPlain, onFailure: true, wantMails: 1, wantMech: "PLAIN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, pool := newSMTPServer(t, tt.implicit, !tt.implicit, "pi@example.org", pw)
			e, err := NewEmail(EmailOptions{
				Host: "127.0.0.1", Port: srv.port(), Security: tt.security, Auth: tt.auth,
				Username: "pi@example.org", Password: runlog.Secret(pw),
				From: "backupctl@example.org", To: []string{"admin@example.org"},
				OnFailureOnly: tt.onFailure, AttachLog: tt.attach,
				TLSConfig: &tls.Config{RootCAs: pool},
			})
			if err != nil {
				t.Fatal(err)
			}
			err = e.Notify(context.Background(), Message{Subject: "backup of pi failed", Body: "disk full", OK: tt.ok, LogFile: logFile})
			if err != nil {
				t.Fatal(err)
			}
			mails, _ := srv.got()
			if len(mails) != tt.wantMails {
				t.Fatalf("server got %d mails, want %d", len(mails), tt.wantMails)
			}
			if tt.wantMails == 0 {
				return
			}
			m := mails[0]
			if !m.TLS {
				t.Error("mail was sent without TLS")
			}
			if tt.wantMech != "" && m.AuthMech != tt.wantMech {
				t.Errorf("AUTH %s, want %s", m.AuthMech, tt.wantMech)
			}
			if m.AuthUser != "pi@example.org" {
				t.Errorf("authenticated as %q", m.AuthUser)
			}
			for _, want := range []string{"Subject: backup of pi failed", "disk full"} {
				if !strings.Contains(m.Data, want) {
					t.Errorf("mail lacks %q:\n%s", want, m.Data)
				}
			}
			if got := strings.Contains(m.Data, `filename="backupctl.log"`); got != tt.attach {
				t.Errorf("log attached = %v, want %v\n%s", got, tt.attach, m.Data)
			}
			if strings.Contains(m.Data, pw) {
				t.Error("password in the mail")
			}
		})
	}
}

func TestEmailWrongPasswordIsMasked(t *testing.T) {
	srv, pool := newSMTPServer(t, false, true, "pi", "right-password")
	var logBuf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logBuf, nil))
	e, err := NewEmail(EmailOptions{Host: "127.0.0.1", Port: srv.port(), Auth: AuthPlain,
		Username: "pi", Password: runlog.Secret(pw), From: "a@b.c", To: []string{"d@e.f"},
		TLSConfig: &tls.Config{RootCAs: pool}})
	if err != nil {
		t.Fatal(err)
	}
	err = Send(context.Background(), log, []Notifier{e}, Message{Subject: "x"})
	if err == nil {
		t.Fatal("wrong password accepted")
	}
	_, tries := srv.got()
	if len(tries) == 0 || !strings.Contains(tries[0], pw) {
		t.Fatalf("the server never saw the password: %v", tries)
	}
	for what, s := range map[string]string{"error": err.Error(), "log": logBuf.String(),
		"String": e.String(), "%+v": fmt.Sprintf("%+v %#v", e.opts, e.opts)} {
		if strings.Contains(s, pw) {
			t.Errorf("password in %s: %s", what, s)
		}
	}
}

func TestEmailRefusesPlainTextAuth(t *testing.T) {
	// A server that offers no STARTTLS: with the default starttls policy
	// the mail is not sent at all, rather than sending the password in
	// the clear.
	srv, _ := newSMTPServer(t, false, false, "pi", pw)
	e, err := NewEmail(EmailOptions{Host: "127.0.0.1", Port: srv.port(), Username: "pi",
		Password: runlog.Secret(pw), From: "a@b.c", To: []string{"d@e.f"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Notify(context.Background(), Message{Subject: "x"}); err == nil {
		t.Error("sent without TLS")
	}
	if _, tries := srv.got(); len(tries) != 0 {
		t.Errorf("password sent over plain text: %v", tries)
	}
}

func TestNewEmailValidates(t *testing.T) {
	ok := EmailOptions{Host: "h", From: "a@b.c", To: []string{"d@e.f"}}
	bad := []func(o *EmailOptions){
		func(o *EmailOptions) { o.Host = "" },
		func(o *EmailOptions) { o.From = "" },
		func(o *EmailOptions) { o.To = nil },
		func(o *EmailOptions) { o.Security = "ssl3" },
		func(o *EmailOptions) { o.Auth = "cram" },
		func(o *EmailOptions) { o.Password = "x" },
	}
	if _, err := NewEmail(ok); err != nil {
		t.Fatal(err)
	}
	for i, f := range bad {
		o := ok
		f(&o)
		if _, err := NewEmail(o); !errors.Is(err, ErrConfig) {
			t.Errorf("case %d: NewEmail = %v, want ErrConfig", i, err)
		}
	}
}

func TestWebhook(t *testing.T) {
	const token = "tk_0123456789abcdef"
	var got Payload
	var gotAuth, gotCT string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth, gotCT = r.Header.Get("Authorization"), r.Header.Get("Content-Type")
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &got); err != nil {
			t.Errorf("payload %s: %v", b, err)
		}
		if r.URL.Path == "/fail" {
			http.Error(w, "bad token "+gotAuth, http.StatusUnauthorized)
		}
	}))
	defer srv.Close()

	w, err := NewWebhook(WebhookOptions{URL: runlog.Secret(srv.URL + "/backups?token=" + token), Token: token, Topic: "pi-backups"})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Notify(context.Background(), Message{Subject: "backup of pi failed", Body: "disk full", Host: "pi"}); err != nil {
		t.Fatal(err)
	}
	want := Payload{Title: "backup of pi failed", Message: "disk full", Text: "backup of pi failed\ndisk full",
		Priority: 5, OK: false, Status: "failure", Host: "pi", Topic: "pi-backups"}
	if got != want {
		t.Errorf("payload = %+v\nwant      %+v", got, want)
	}
	if gotAuth != "Bearer "+token || gotCT != "application/json" {
		t.Errorf("headers: Authorization %q, Content-Type %q", gotAuth, gotCT)
	}
	if s := w.String(); strings.Contains(s, token) || strings.Contains(s, "/backups") {
		t.Errorf("String() = %q reveals the URL", s)
	}

	// An error response that echoes the token must not carry it further.
	w, err = NewWebhook(WebhookOptions{URL: runlog.Secret(srv.URL + "/fail"), Token: token})
	if err != nil {
		t.Fatal(err)
	}
	err = w.Notify(context.Background(), Message{Subject: "x"})
	if err == nil || !strings.Contains(err.Error(), "401") || strings.Contains(err.Error(), token) {
		t.Errorf("Notify = %v; want a 401 without the token", err)
	}

	// A connection error quotes the URL in net/http; ours must not.
	w, err = NewWebhook(WebhookOptions{URL: runlog.Secret("http://127.0.0.1:1/hook/" + token)})
	if err != nil {
		t.Fatal(err)
	}
	err = w.Notify(context.Background(), Message{Subject: "x"})
	if err == nil || strings.Contains(err.Error(), token) {
		t.Errorf("Notify = %v; want an error without the URL's secret", err)
	}
	if _, err := NewWebhook(WebhookOptions{URL: "ftp://x/" + token}); err == nil || strings.Contains(err.Error(), token) {
		t.Errorf("NewWebhook(ftp) = %v", err)
	}
}

func TestWebhookSuccessPayloadAndFilter(t *testing.T) {
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { calls++ }))
	defer srv.Close()
	w, err := NewWebhook(WebhookOptions{URL: runlog.Secret(srv.URL), OnFailureOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Notify(context.Background(), Message{Subject: "ok", OK: true}); err != nil || calls != 0 {
		t.Errorf("success with OnFailureOnly: err %v, %d calls", err, calls)
	}
	p := NewPayload(Message{Subject: "done", OK: true}, "")
	if p.Status != "success" || p.Priority != 3 || p.Text != "done" {
		t.Errorf("success payload %+v", p)
	}
}
