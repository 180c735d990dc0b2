package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/pibackup/pibackup/internal/runlog"
)

// The services raspiBackup's users are notified through, each spoken in
// its own API with its own required fields: Telegram (bot token + chat),
// Pushover (application token + user key), Discord and Slack (incoming
// webhook URL), ntfy (server + topic, optional access token). A generic
// JSON webhook (Webhook) covers the rest.

// ServiceOptions configure one service notifier. Which fields are needed
// depends on the service (see NewTelegram and friends).
type ServiceOptions struct {
	Token  runlog.Secret // Telegram bot token, Pushover application token, ntfy access token
	User   string        // Telegram chat id, Pushover user or group key
	URL    runlog.Secret // Discord/Slack webhook URL; ntfy server; the API base of Telegram/Pushover (tests, proxies)
	Topic  string        // ntfy topic
	Client *http.Client  // nil: a 30 s timeout
	// OnFailureOnly sends only when the run failed.
	OnFailureOnly bool
}

// service is a notifier that posts one request per message.
type service struct {
	name          string
	where         string // shown in logs: never a credential
	onFailureOnly bool
	client        *http.Client
	masker        *runlog.Masker
	request       func(ctx context.Context, m Message) (*http.Request, error)
}

func (s *service) String() string { return s.name + " " + s.where }

// Notify implements Notifier.
func (s *service) Notify(ctx context.Context, m Message) error {
	if s.onFailureOnly && m.OK {
		return nil
	}
	req, err := s.request(ctx, m)
	if err != nil {
		return fmt.Errorf("%s: %w", s.name, s.masker.MaskError(err))
	}
	return send(s.client, req, s.name, s.masker)
}

// send posts req and turns a failure into an error that names label and
// never shows a secret masker knows (a *url.Error quotes the whole URL,
// which may hold a token).
func send(client *http.Client, req *http.Request, label string, masker *runlog.Masker) error {
	req.Header.Set("User-Agent", "backupctl")
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("%s: %w", label, masker.MaskError(err))
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%s: HTTP %s: %s", label, resp.Status, masker.Mask(strings.TrimSpace(string(snippet))))
	}
	return nil
}

func newService(name, where string, o ServiceOptions, secrets []string, req func(ctx context.Context, m Message) (*http.Request, error)) *service {
	client := o.Client
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	return &service{name: name, where: where, onFailureOnly: o.OnFailureOnly, client: client,
		masker: runlog.NewMasker(longestFirst(secrets)...), request: req}
}

// text is the message as one block of text: subject, then body.
func text(m Message) string {
	if m.Body == "" {
		return m.Subject
	}
	return m.Subject + "\n\n" + strings.TrimRight(m.Body, "\n")
}

func postJSON(ctx context.Context, u string, v any) (*http.Request, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	return req, nil
}

// apiBase checks an http(s) base URL, defaulting to def.
func apiBase(s runlog.Secret, def, what string) (string, error) {
	base := s.Reveal()
	if base == "" {
		base = def
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", fmt.Errorf("%w: %s is not an http(s) URL", ErrConfig, what)
	}
	return strings.TrimRight(base, "/"), nil
}

func hostOf(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return runlog.Mask
	}
	return p.Scheme + "://" + p.Host
}

// NewTelegram sends through a Telegram bot: Token is the bot token from
// @BotFather, User the chat id (a number, or @channelname). URL overrides
// https://api.telegram.org.
func NewTelegram(o ServiceOptions) (Notifier, error) {
	if !o.Token.IsSet() || o.User == "" {
		return nil, fmt.Errorf("%w: telegram needs both telegram.token (the bot token) and telegram.chat-id", ErrConfig)
	}
	base, err := apiBase(o.URL, "https://api.telegram.org", "telegram.api-url")
	if err != nil {
		return nil, err
	}
	endpoint := base + "/bot" + o.Token.Reveal() + "/sendMessage"
	return newService("telegram", hostOf(base), o, []string{endpoint, o.Token.Reveal()}, func(ctx context.Context, m Message) (*http.Request, error) {
		return postJSON(ctx, endpoint, map[string]any{"chat_id": o.User, "text": text(m), "disable_web_page_preview": true})
	}), nil
}

// NewPushover sends through Pushover: Token is the application's API
// token, User the user (or group) key. A failure is sent with high
// priority. URL overrides https://api.pushover.net.
func NewPushover(o ServiceOptions) (Notifier, error) {
	if !o.Token.IsSet() || o.User == "" {
		return nil, fmt.Errorf("%w: pushover needs both pushover.token (the application token) and pushover.user (the user key)", ErrConfig)
	}
	base, err := apiBase(o.URL, "https://api.pushover.net", "pushover.api-url")
	if err != nil {
		return nil, err
	}
	return newService("pushover", hostOf(base), o, []string{o.Token.Reveal(), o.User}, func(ctx context.Context, m Message) (*http.Request, error) {
		prio := 0
		if !m.OK {
			prio = 1
		}
		msg := strings.TrimRight(m.Body, "\n")
		if msg == "" {
			msg = m.Subject
		}
		return postJSON(ctx, base+"/1/messages.json", map[string]any{"token": o.Token.Reveal(), "user": o.User,
			"title": m.Subject, "message": msg, "priority": prio})
	}), nil
}

// NewDiscord posts to a Discord channel's webhook URL.
func NewDiscord(o ServiceOptions) (Notifier, error) {
	u, err := webhookURL(o.URL, "discord.webhook-url")
	if err != nil {
		return nil, err
	}
	return newService("discord", hostOf(u), o, []string{u}, func(ctx context.Context, m Message) (*http.Request, error) {
		// Discord caps content at 2000 characters.
		t := text(m)
		if len(t) > 1900 {
			t = t[:1900] + "…"
		}
		return postJSON(ctx, u, map[string]any{"content": t, "username": "backupctl"})
	}), nil
}

// NewSlack posts to a Slack incoming webhook URL.
func NewSlack(o ServiceOptions) (Notifier, error) {
	u, err := webhookURL(o.URL, "slack.webhook-url")
	if err != nil {
		return nil, err
	}
	return newService("slack", hostOf(u), o, []string{u}, func(ctx context.Context, m Message) (*http.Request, error) {
		return postJSON(ctx, u, map[string]any{"text": text(m)})
	}), nil
}

// NewNtfy publishes to an ntfy topic: URL is the server (default
// https://ntfy.sh), Topic the topic, Token an optional access token. A
// failure is sent with the highest priority.
func NewNtfy(o ServiceOptions) (Notifier, error) {
	if o.Topic == "" || strings.ContainsAny(o.Topic, "/?# ") {
		return nil, fmt.Errorf("%w: ntfy needs ntfy.topic (letters, digits, - and _)", ErrConfig)
	}
	base, err := apiBase(o.URL, "https://ntfy.sh", "ntfy.url")
	if err != nil {
		return nil, err
	}
	return newService("ntfy", hostOf(base)+"/"+o.Topic, o, []string{o.Token.Reveal()}, func(ctx context.Context, m Message) (*http.Request, error) {
		body := strings.TrimRight(m.Body, "\n")
		if body == "" {
			body = m.Subject
		}
		prio, tag := 3, "white_check_mark"
		if !m.OK {
			prio, tag = 5, "rotating_light"
		}
		// JSON publishing (to the server root): titles in any language,
		// which HTTP headers could not carry.
		req, err := postJSON(ctx, base+"/", map[string]any{"topic": o.Topic, "title": m.Subject, "message": body,
			"priority": prio, "tags": []string{tag}})
		if err != nil {
			return nil, err
		}
		if o.Token.IsSet() {
			req.Header.Set("Authorization", "Bearer "+o.Token.Reveal())
		}
		return req, nil
	}), nil
}

func webhookURL(s runlog.Secret, key string) (string, error) {
	u := s.Reveal()
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
		return "", fmt.Errorf("%w: %s is not an http(s) URL", ErrConfig, key)
	}
	return u, nil
}
