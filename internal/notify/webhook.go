package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/pibackup/pibackup/internal/runlog"
)

// WebhookOptions configure a Webhook notifier.
type WebhookOptions struct {
	// URL receives the POST. It is treated as a secret: Slack and Home
	// Assistant webhook URLs are bearer credentials themselves, and
	// Gotify takes ?token=. Logs and errors show scheme://host/… only.
	URL runlog.Secret
	// Token, if set, is sent as "Authorization: Bearer <token>" (ntfy
	// access tokens, Gotify client tokens, Home Assistant long-lived
	// tokens for the REST API).
	Token runlog.Secret
	// Topic is added to the payload as "topic", which ntfy needs when
	// JSON is posted to the server root.
	Topic string
	// Headers are extra request headers (e.g. X-Gotify-Key); their values
	// are masked like secrets.
	Headers map[string]string
	// OnFailureOnly sends only when the run failed.
	OnFailureOnly bool
	// Client is the HTTP client; nil means one with a 30s timeout.
	Client *http.Client
}

// Webhook posts a JSON document. The one payload serves several services,
// because each reads only the fields it knows:
//
//	{"title": …, "message": …, "text": …, "priority": 3|5, "ok": bool,
//	 "status": "success"|"failure", "host": …, "topic": …}
//
// ntfy (JSON publishing: topic, title, message, priority), Gotify
// (title, message, priority), Slack-style webhooks including Mattermost
// and Rocket.Chat (text), Home Assistant webhook triggers (any JSON, in
// trigger.json).
type Webhook struct {
	opts   WebhookOptions
	masker *runlog.Masker
}

// Payload is the JSON body a Webhook posts.
type Payload struct {
	Title    string `json:"title"`
	Message  string `json:"message"`
	Text     string `json:"text"`
	Priority int    `json:"priority"`
	OK       bool   `json:"ok"`
	Status   string `json:"status"`
	Host     string `json:"host,omitempty"`
	Topic    string `json:"topic,omitempty"`
}

// NewWebhook checks opts and returns a Webhook notifier.
func NewWebhook(opts WebhookOptions) (*Webhook, error) {
	u, err := url.Parse(opts.URL.Reveal())
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		// Do not echo the URL (or url.Parse's error, which quotes it).
		return nil, fmt.Errorf("%w: webhook URL is not an http(s) URL", ErrConfig)
	}
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: 30 * time.Second}
	}
	secrets := []string{opts.URL.Reveal(), opts.Token.Reveal(), u.RawQuery, u.EscapedPath()}
	for _, v := range opts.Headers {
		secrets = append(secrets, v)
	}
	if u.User != nil {
		p, _ := u.User.Password()
		secrets = append(secrets, p)
	}
	// Longest first, so the whole URL is replaced before its parts.
	return &Webhook{opts: opts, masker: runlog.NewMasker(longestFirst(secrets)...)}, nil
}

func longestFirst(ss []string) []string {
	out := append([]string(nil), ss...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && len(out[j]) > len(out[j-1]); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// Redacted shows where the webhook goes without its credentials.
func (w *Webhook) Redacted() string {
	u, err := url.Parse(w.opts.URL.Reveal())
	if err != nil {
		return runlog.Mask
	}
	return u.Scheme + "://" + u.Host + "/…"
}

func (w *Webhook) String() string { return "webhook " + w.Redacted() }

// NewPayload builds the JSON document for m.
func NewPayload(m Message, topic string) Payload {
	p := Payload{Title: m.Subject, Message: m.Body, OK: m.OK, Host: m.Host, Topic: topic,
		Status: "success", Priority: 3}
	if !m.OK {
		p.Status, p.Priority = "failure", 5
	}
	p.Text = m.Subject
	if m.Body != "" {
		p.Text += "\n" + m.Body
	}
	return p
}

// Notify implements Notifier.
func (w *Webhook) Notify(ctx context.Context, m Message) error {
	if w.opts.OnFailureOnly && m.OK {
		return nil
	}
	body, err := json.Marshal(NewPayload(m, w.opts.Topic))
	if err != nil {
		return fmt.Errorf("BUG: encode webhook payload: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.opts.URL.Reveal(), bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook %s: %w", w.Redacted(), w.masker.MaskError(err))
	}
	req.Header.Set("Content-Type", "application/json")
	if w.opts.Token.IsSet() {
		req.Header.Set("Authorization", "Bearer "+w.opts.Token.Reveal())
	}
	for k, v := range w.opts.Headers {
		req.Header.Set(k, v)
	}
	return send(w.opts.Client, req, "webhook "+w.Redacted(), w.masker)
}
