// Package notify tells people how a run went: by e-mail over SMTP, spoken
// natively (STARTTLS or implicit TLS, AUTH PLAIN or LOGIN; no mailx, ssmtp
// or msmtp to install and configure), and by a JSON POST to a webhook,
// which covers ntfy, Gotify, Slack-style incoming webhooks and Home
// Assistant.
//
// Passwords and tokens are runlog.Secret values: they print as a mask, and
// every error that leaves this package is masked as well, in case a server
// or the HTTP client echoes them.
package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
)

// Message is one notification.
type Message struct {
	Subject string
	Body    string
	OK      bool   // the run succeeded
	Host    string // the Pi the run was on
	// LogFile is the run log; e-mail attaches it when asked to.
	LogFile string
}

// Notifier sends a Message somewhere.
type Notifier interface {
	// Notify sends m, or does nothing when the notifier is set to report
	// failures only and m.OK is true.
	Notify(ctx context.Context, m Message) error
	String() string
}

// Send sends m through every notifier and returns the failures joined.
// One channel failing does not stop the others; a notification failure
// never changes the outcome of the backup, so callers log it.
func Send(ctx context.Context, log *slog.Logger, notifiers []Notifier, m Message) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var errs []error
	for _, n := range notifiers {
		if err := n.Notify(ctx, m); err != nil {
			log.Warn("notification failed", "via", n.String(), "error", err)
			errs = append(errs, fmt.Errorf("notify via %s: %w", n, err))
			continue
		}
		log.Debug("notification sent", "via", n.String())
	}
	return errors.Join(errs...)
}

// maxAttach caps an attached log; a runaway debug log must not make the
// mail bounce. The tail is kept because the error is at the end.
const maxAttach = 2 << 20

func readTail(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	off := int64(0)
	if fi.Size() > maxAttach {
		off = fi.Size() - maxAttach
	}
	buf := make([]byte, fi.Size()-off)
	n, err := f.ReadAt(buf, off)
	if err != nil && n != len(buf) {
		return nil, err
	}
	return buf[:n], nil
}
