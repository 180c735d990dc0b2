package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/hooks"
	"github.com/pibackup/pibackup/internal/notify"
	"github.com/pibackup/pibackup/internal/retention"
	"github.com/pibackup/pibackup/internal/runlog"
	"github.com/pibackup/pibackup/internal/services"
)

// Validate checks the merged configuration as a whole; it names keys, so
// the message fits both the file and the flag.
func (c *Config) Validate() error {
	var errs []error
	if _, err := backupset.ParseType(c.Type); err != nil {
		errs = append(errs, fmt.Errorf("type: %w", err))
	}
	if c.Compress != "" {
		if _, err := backupset.ParseCompression(c.Compress); err != nil {
			errs = append(errs, fmt.Errorf("compress: %w", err))
		}
	}
	for _, o := range table {
		if o.key == "compress" {
			continue // checked above, with the words of the engine
		}
		if v, ok := o.field(c).(*string); ok && len(o.choices) > 0 && *v != "" && !slices.Contains(o.choices, *v) {
			errs = append(errs, fmt.Errorf("%s %q: want %s", o.key, *v, strings.Join(o.choices, ", ")))
		}
	}
	if err := c.RetentionPolicy().Validate(); err != nil {
		errs = append(errs, err)
	}
	if _, err := c.Stoppers(services.ExecRunner{}); err != nil {
		errs = append(errs, err)
	}
	if _, err := c.HookOptions(); err != nil {
		errs = append(errs, err)
	}
	if _, err := c.Notifiers(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// RetentionPolicy is the retention.Policy the options describe.
func (c *Config) RetentionPolicy() retention.Policy {
	p := retention.Policy{Keep: c.Keep, KeepType: map[backupset.Type]int{
		backupset.TypeDD: c.KeepDD, backupset.TypeDDZ: c.KeepDDZ, backupset.TypeTar: c.KeepTar,
		backupset.TypeTGZ: c.KeepTGZ, backupset.TypeRsync: c.KeepRsync,
	}}
	if c.SmartRecycle {
		p.Smart = &retention.Smart{Daily: c.SmartDaily, Weekly: c.SmartWeekly, Monthly: c.SmartMonthly, Yearly: c.SmartYearly}
	}
	return p
}

// Stoppers builds the services to stop, in stop order: the services list,
// then the stop/start commands as one more service (so they stop last and
// start first, as raspiBackup's -o/-a wrap the backup innermost).
func (c *Config) Stoppers(r services.Runner) ([]services.Stopper, error) {
	var out []services.Stopper
	for _, spec := range c.Services {
		s, err := services.Parse(spec, r)
		if err != nil {
			return nil, fmt.Errorf("services: %w", err)
		}
		out = append(out, s)
	}
	stop, err := splitAll("stop-commands", c.StopCommands)
	if err != nil {
		return nil, err
	}
	start, err := splitAll("start-commands", c.StartCommands)
	if err != nil {
		return nil, err
	}
	if len(stop) > 0 || len(start) > 0 {
		if len(stop) == 0 || len(start) == 0 {
			// raspiBackup insists on both (RBK0019E): stopping without a
			// way back is how services stay down.
			return nil, errors.New("stop-commands and start-commands must be given together")
		}
		out = append(out, services.Commands{Label: "stop/start commands", StopCmds: stop, StartCmds: start, Runner: r})
	}
	return out, nil
}

func splitAll(key string, lines []string) ([][]string, error) {
	var out [][]string
	for _, l := range lines {
		argv, err := SplitCommand(l)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		out = append(out, argv)
	}
	return out, nil
}

// HookOptions builds hooks.Options (without a logger; the caller sets Log).
func (c *Config) HookOptions() (hooks.Options, error) {
	o := hooks.Options{Dir: c.HooksDir, Timeout: c.HooksTimeout, Commands: map[hooks.Event][][]string{}}
	for _, h := range []struct {
		key   string
		e     hooks.Event
		lines []string
	}{
		{"hooks.pre-backup", hooks.PreBackup, c.HooksPreBackup},
		{"hooks.ready", hooks.Ready, c.HooksReady},
		{"hooks.post-backup", hooks.PostBackup, c.HooksPostBackup},
		{"hooks.pre-restore", hooks.PreRestore, c.HooksPreRestore},
		{"hooks.post-restore", hooks.PostRestore, c.HooksPostRestore},
	} {
		argvs, err := splitAll(h.key, h.lines)
		if err != nil {
			return hooks.Options{}, err
		}
		if len(argvs) > 0 {
			o.Commands[h.e] = argvs
		}
	}
	return o, nil
}

// Notifiers builds the configured notifiers: e-mail when email.to is set,
// a webhook when webhook.url is set, and each of Telegram, Pushover,
// Discord, Slack and ntfy whose settings are given (a service with only
// some of its required settings is an error naming the missing one).
func (c *Config) Notifiers() ([]notify.Notifier, error) {
	var out []notify.Notifier
	if len(c.EmailTo) > 0 {
		e, err := notify.NewEmail(notify.EmailOptions{
			Host: c.SMTPHost, Port: c.SMTPPort, Security: notify.Security(c.SMTPSecurity), Auth: notify.Auth(c.SMTPAuth),
			Username: c.SMTPUser, Password: c.SMTPPassword, From: c.EmailFrom, To: c.EmailTo,
			OnFailureOnly: c.EmailOnErrorOnly, AttachLog: c.EmailAttachLog,
		})
		if err != nil {
			return nil, fmt.Errorf("email: %w", err)
		}
		out = append(out, e)
	}
	if c.WebhookURL.IsSet() {
		w, err := notify.NewWebhook(notify.WebhookOptions{URL: c.WebhookURL, Token: c.WebhookToken,
			Topic: c.WebhookTopic, OnFailureOnly: c.WebhookOnErrorOnly})
		if err != nil {
			return nil, fmt.Errorf("webhook: %w", err)
		}
		out = append(out, w)
	}
	for _, s := range []struct {
		set  bool
		make func(notify.ServiceOptions) (notify.Notifier, error)
		opts notify.ServiceOptions
	}{
		{c.TelegramToken.IsSet() || c.TelegramChatID != "", notify.NewTelegram,
			notify.ServiceOptions{Token: c.TelegramToken, User: c.TelegramChatID, URL: c.TelegramAPIURL, OnFailureOnly: c.TelegramOnErrorOnly}},
		{c.PushoverToken.IsSet() || c.PushoverUser != "", notify.NewPushover,
			notify.ServiceOptions{Token: c.PushoverToken, User: c.PushoverUser, URL: c.PushoverAPIURL, OnFailureOnly: c.PushoverOnErrorOnly}},
		{c.DiscordURL.IsSet(), notify.NewDiscord, notify.ServiceOptions{URL: c.DiscordURL, OnFailureOnly: c.DiscordOnErrorOnly}},
		{c.SlackURL.IsSet(), notify.NewSlack, notify.ServiceOptions{URL: c.SlackURL, OnFailureOnly: c.SlackOnErrorOnly}},
		{c.NtfyTopic != "" || c.NtfyToken.IsSet(), notify.NewNtfy,
			notify.ServiceOptions{URL: c.NtfyURL, Topic: c.NtfyTopic, Token: c.NtfyToken, OnFailureOnly: c.NtfyOnErrorOnly}},
	} {
		if !s.set {
			continue
		}
		n, err := s.make(s.opts)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// Secrets lists the secret values set, for runlog.Options.Secrets.
func (c *Config) Secrets() []string {
	var out []string
	for _, o := range table {
		if p, ok := o.field(c).(*runlog.Secret); ok && p.IsSet() {
			out = append(out, p.Reveal())
		}
	}
	return out
}
