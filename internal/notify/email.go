package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/wneessen/go-mail"

	"github.com/pibackup/pibackup/internal/runlog"
)

// Security is how the SMTP connection is protected.
type Security string

// Securities.
const (
	// StartTLS connects in plain text and upgrades with STARTTLS, which is
	// then required (port 587). A server without STARTTLS is an error, not
	// a silent fallback to plain text.
	StartTLS Security = "starttls"
	// ImplicitTLS speaks TLS from the first byte (port 465).
	ImplicitTLS Security = "tls"
	// NoTLS sends in plain text (port 25); AUTH is then refused unless the
	// server is localhost, so a password never crosses a network unencrypted.
	NoTLS Security = "none"
)

// Auth is the SMTP AUTH mechanism.
type Auth string

// Auths.
const (
	AuthAuto  Auth = "auto" // the best the server offers (go-mail's autodiscovery)
	AuthPlain Auth = "plain"
	AuthLogin Auth = "login"
)

// EmailOptions configure an Email notifier.
type EmailOptions struct {
	Host     string
	Port     int      // 0 means 587, 465 or 25 by Security
	Security Security // "" means StartTLS
	Auth     Auth     // "" means AuthAuto; ignored without Username
	Username string
	Password runlog.Secret
	From     string
	To       []string
	// OnFailureOnly sends only when the run failed (raspiBackup's
	// DEFAULT_MAIL_ON_ERROR_ONLY).
	OnFailureOnly bool
	// AttachLog attaches Message.LogFile (its last 2 MiB).
	AttachLog bool
	// TLSConfig overrides the TLS settings (tests set RootCAs); ServerName
	// defaults to Host.
	TLSConfig *tls.Config
	Timeout   time.Duration // per connection; 0 means 30s
}

// Email sends notifications by SMTP.
type Email struct {
	opts   EmailOptions
	masker *runlog.Masker
}

// ErrConfig is wrapped by configuration errors.
var ErrConfig = errors.New("invalid notification settings")

// NewEmail checks opts and returns an Email notifier.
func NewEmail(opts EmailOptions) (*Email, error) {
	if opts.Host == "" {
		return nil, fmt.Errorf("%w: no SMTP host", ErrConfig)
	}
	if opts.From == "" {
		return nil, fmt.Errorf("%w: no sender address", ErrConfig)
	}
	if len(opts.To) == 0 {
		return nil, fmt.Errorf("%w: no recipient", ErrConfig)
	}
	if opts.Security == "" {
		opts.Security = StartTLS
	}
	if opts.Auth == "" {
		opts.Auth = AuthAuto
	}
	switch opts.Security {
	case StartTLS, ImplicitTLS, NoTLS:
	default:
		return nil, fmt.Errorf("%w: SMTP security %q (want starttls, tls or none)", ErrConfig, opts.Security)
	}
	switch opts.Auth {
	case AuthAuto, AuthPlain, AuthLogin:
	default:
		return nil, fmt.Errorf("%w: SMTP auth %q (want auto, plain or login)", ErrConfig, opts.Auth)
	}
	if opts.Password.IsSet() && opts.Username == "" {
		return nil, fmt.Errorf("%w: SMTP password without a user name", ErrConfig)
	}
	if opts.Port == 0 {
		opts.Port = map[Security]int{StartTLS: 587, ImplicitTLS: 465, NoTLS: 25}[opts.Security]
	}
	if opts.Timeout == 0 {
		opts.Timeout = 30 * time.Second
	}
	return &Email{opts: opts, masker: runlog.NewMasker(opts.Password.Reveal(), opts.Username+"\x00"+opts.Password.Reveal())}, nil
}

func (e *Email) String() string {
	return fmt.Sprintf("e-mail to %v via %s:%d", e.opts.To, e.opts.Host, e.opts.Port)
}

// Notify implements Notifier.
func (e *Email) Notify(ctx context.Context, m Message) error {
	if e.opts.OnFailureOnly && m.OK {
		return nil
	}
	msg, err := e.message(m)
	if err != nil {
		return err
	}
	c, err := e.client()
	if err != nil {
		return e.masker.MaskError(err)
	}
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		return e.masker.MaskError(fmt.Errorf("send mail via %s:%d: %w", e.opts.Host, e.opts.Port, err))
	}
	return nil
}

func (e *Email) message(m Message) (*mail.Msg, error) {
	msg := mail.NewMsg()
	if err := msg.From(e.opts.From); err != nil {
		return nil, fmt.Errorf("%w: sender %q: %w", ErrConfig, e.opts.From, err)
	}
	if err := msg.To(e.opts.To...); err != nil {
		return nil, fmt.Errorf("%w: recipients %v: %w", ErrConfig, e.opts.To, err)
	}
	msg.Subject(m.Subject)
	msg.SetDate()
	msg.SetBodyString(mail.TypeTextPlain, m.Body)
	if e.opts.AttachLog && m.LogFile != "" {
		data, err := readTail(m.LogFile)
		if err != nil {
			// Still send: the mail matters more than its attachment.
			msg.SetBodyString(mail.TypeTextPlain, m.Body+fmt.Sprintf("\n\n(log not attached: %v)\n", err))
		} else if err := msg.AttachReader(filepath.Base(m.LogFile), bytes.NewReader(data),
			mail.WithFileContentType(mail.TypeTextPlain)); err != nil {
			return nil, fmt.Errorf("attach %s: %w", m.LogFile, err)
		}
	}
	return msg, nil
}

func (e *Email) client() (*mail.Client, error) {
	o := e.opts
	tc := &tls.Config{ServerName: o.Host, MinVersion: tls.VersionTLS12}
	if o.TLSConfig != nil {
		tc = o.TLSConfig.Clone()
		if tc.ServerName == "" {
			tc.ServerName = o.Host
		}
	}
	opts := []mail.Option{
		mail.WithPort(o.Port),
		mail.WithTimeout(o.Timeout),
		mail.WithTLSConfig(tc),
	}
	switch o.Security {
	case StartTLS:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	case ImplicitTLS:
		opts = append(opts, mail.WithSSL())
	case NoTLS:
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	}
	if o.Username != "" {
		mech := map[Auth]mail.SMTPAuthType{AuthAuto: mail.SMTPAuthAutoDiscover, AuthPlain: mail.SMTPAuthPlain, AuthLogin: mail.SMTPAuthLogin}[o.Auth]
		opts = append(opts, mail.WithSMTPAuth(mech), mail.WithUsername(o.Username), mail.WithPassword(o.Password.Reveal()))
	}
	c, err := mail.NewClient(o.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("SMTP client for %s: %w", o.Host, err)
	}
	return c, nil
}
