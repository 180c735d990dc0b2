// Package config holds backupctl's settings: one option table from which
// both the config file keys and the command-line flags are derived, the
// files they are read from and their precedence, `config show` with the
// origin of every value, and the import of a raspiBackup.conf.
//
// # Why TOML
//
// The file format is TOML (github.com/BurntSushi/toml), not raspiBackup's
// KEY="value" lines. raspiBackup's file is a shell script that the tool
// sources, so a value is whatever bash makes of it: `-o "systemctl stop a
// && systemctl stop b"` is shell code, and a stray `$` or quote changes
// the meaning silently. We run nothing through a shell, so we need lists
// (services, excludes, hook commands) and typed values (numbers, booleans,
// durations) that a parser checks and reports by line. TOML gives exactly
// that, reads like the INI files Pi users know, is the format of our
// board configs already, and its dotted keys let `config show` print a
// file that can be read back. raspiBackup users move over once with
// `backupctl config import`.
//
// # Precedence
//
// Later wins: defaults < /etc/backupctl/backupctl.conf <
// /usr/local/etc/backupctl.conf < ~/.config/backupctl/config <
// ./backupctl.conf < -f FILE < flags. A missing file is skipped, except
// the one named by -f.
//
// # Secrets
//
// smtp.password, webhook.url and webhook.token are secrets: a file that
// sets one must not be readable by group or others (chmod 600), and they
// are masked wherever they are shown.
package config

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pibackup/pibackup/internal/runlog"
)

// Config is the merged configuration.
type Config struct {
	BackupPath         string
	SSHIdentity        string   // sftp:// backup folders: private key file
	SSHKnownHosts      string   // sftp:// backup folders: known_hosts pinning the server
	SMBPasswordFile    string   // smb:// backup folders: file holding the password
	EncryptTo          []string // age recipients (or recipients files) of the payloads
	EncryptPassFile    string   // file holding the passphrase payloads are encrypted with
	AgeIdentity        string   // age identity file or SSH private key that opens encrypted sets
	Type               string
	Compress           string // "", gzip, zstd or none; "" is the type's own
	Keep               int
	KeepDD             int
	KeepDDZ            int
	KeepTar            int
	KeepTGZ            int
	KeepRsync          int
	SmartRecycle       bool
	SmartDaily         int
	SmartWeekly        int
	SmartMonthly       int
	SmartYearly        int
	Exclude            []string
	LinkBootFiles      bool
	BootTar            bool
	UsedPartitionsOnly bool
	Partitions         string // -P: partition-oriented mode, e.g. "1 2 5" or "*"
	FullRead           bool
	Hostname           string
	Progress           bool

	Services      []string
	StopCommands  []string
	StartCommands []string

	HooksDir         string
	HooksTimeout     time.Duration
	HooksPreBackup   []string
	HooksReady       []string
	HooksPostBackup  []string
	HooksPreRestore  []string
	HooksPostRestore []string

	EmailTo          []string
	EmailFrom        string
	EmailOnErrorOnly bool
	EmailAttachLog   bool
	SMTPHost         string
	SMTPPort         int
	SMTPSecurity     string
	SMTPAuth         string
	SMTPUser         string
	SMTPPassword     runlog.Secret

	WebhookURL         runlog.Secret
	WebhookToken       runlog.Secret
	WebhookTopic       string
	WebhookOnErrorOnly bool

	TelegramToken       runlog.Secret
	TelegramChatID      string
	TelegramAPIURL      runlog.Secret
	TelegramOnErrorOnly bool
	PushoverToken       runlog.Secret
	PushoverUser        string
	PushoverAPIURL      runlog.Secret
	PushoverOnErrorOnly bool
	DiscordURL          runlog.Secret
	DiscordOnErrorOnly  bool
	SlackURL            runlog.Secret
	SlackOnErrorOnly    bool
	NtfyURL             runlog.Secret
	NtfyTopic           string
	NtfyToken           runlog.Secret
	NtfyOnErrorOnly     bool
	NotifyStart         bool

	LogJSON bool
	Lang    string // en or de; "" follows LC_ALL, LC_MESSAGES, LANG

	RestoreTestWorkDir  string
	MountCacheDir       string
	RestoreTestSample   int
	RestoreTestMaxSpace string
	RemindMonths        int

	ScheduleOnCalendar  string
	ScheduleRestoreTest string

	// s3:// backup folders (see S3Options).
	S3Endpoint      string
	S3Region        string
	S3AccessKey     string
	S3SecretKeyFile string
	S3PathStyle     bool
}

// Defaults returns the built-in settings; they follow raspiBackup's code
// defaults where an option exists there.
func Defaults() *Config {
	return &Config{
		BackupPath:    "/backup",
		Type:          "rsync",
		Keep:          3,
		LinkBootFiles: true,
		SmartDaily:    7,
		SmartWeekly:   4,
		SmartMonthly:  12,
		SmartYearly:   1,
		HooksDir:      "/etc/backupctl/hooks.d",
		HooksTimeout:  10 * time.Minute,
		SMTPSecurity:  "starttls",
		SMTPAuth:      "auto",

		RestoreTestWorkDir: "/var/tmp",
		RestoreTestSample:  200,
		RemindMonths:       6,
		ScheduleOnCalendar: "*-*-* 03:00:00",
	}
}

// The backupctl commands an option can belong to. `config show` takes
// every option as a flag, so it previews any command's settings.
const (
	CmdBackup          = "backup"
	CmdRestore         = "restore"
	CmdClone           = "clone"
	CmdRestoreTest     = "restore-test"
	CmdRetention       = "retention"
	CmdStatus          = "status"
	CmdSchedule        = "schedule"
	CmdRecoverServices = "recover-services"
	CmdMount           = "mount"
	CmdList            = "list"
	CmdVerify          = "verify"
	CmdExtract         = "extract"
	CmdDiff            = "diff"
)

// Groups of commands that share options.
var (
	backupOnly     = []string{CmdBackup}
	withRetention  = []string{CmdBackup, CmdRetention}
	withRestore    = []string{CmdRestore, CmdClone}
	everyHookUser  = []string{CmdBackup, CmdRestore, CmdClone}
	withBackupPath = []string{CmdBackup, CmdRestoreTest}
	// withBackupDir are the commands that open a BACKUPDIR, which may be
	// a server (see store.Open).
	withBackupDir = []string{CmdBackup, CmdRestore, CmdRestoreTest, CmdStatus, CmdMount, CmdRetention, CmdList, CmdVerify, CmdExtract, CmdDiff}
	// withPayloadReader are the commands that read payload contents
	// and open encrypted sets.
	withPayloadReader = []string{CmdRestore, CmdRestoreTest, CmdVerify, CmdMount, CmdExtract, CmdDiff}
	everyLangUser     = []string{CmdBackup, CmdRestore, CmdClone, CmdRestoreTest, CmdStatus, CmdSchedule, CmdRecoverServices}
)

// option is one row of the table: the file key, the flag (key with "."
// replaced by "-" unless flag says otherwise), its help, the commands
// that take it as a flag, and the Config field it sets, whose type is the
// option's type and whose value in Defaults is its default.
type option struct {
	key   string
	flag  string
	short string
	help  string
	// choices are the values a string option takes ("" is always allowed
	// and means the default); Validate checks them.
	choices []string
	// fromBool maps a boolean given for a string option to its value: an
	// option that was a boolean once keeps reading old files.
	fromBool map[bool]string
	cmds     []string
	field    func(c *Config) any // pointer to the Config field
}

func (o option) flagName() string {
	if o.flag != "" {
		return o.flag
	}
	return strings.ReplaceAll(o.key, ".", "-")
}

func (o option) secret(c *Config) bool {
	_, ok := o.field(c).(*runlog.Secret)
	return ok
}

func (o option) forCommand(cmd string) bool {
	return cmd == "" || slices.Contains(o.cmds, cmd)
}

// table lists every option once; flags, file keys, show, the packaged
// config file and import are all derived from it. Order is the order of
// `config show`.
var table = []option{
	{key: "backup-path", help: "backup folder (holds one folder per host); raspiBackup -p", cmds: withBackupPath, field: func(c *Config) any { return &c.BackupPath }},
	{key: "ssh-identity", help: "sftp:// backup folder: private key file (OpenSSH or PEM, no passphrase); \"\" uses the ssh-agent at SSH_AUTH_SOCK", cmds: withBackupDir, field: func(c *Config) any { return &c.SSHIdentity }},
	{key: "ssh-known-hosts", help: "sftp:// backup folder: OpenSSH known_hosts file that pins the server's host key (\"\" is /root/.ssh/known_hosts; add it with ssh-keyscan -p PORT HOST >> FILE)", cmds: withBackupDir, field: func(c *Config) any { return &c.SSHKnownHosts }},
	{key: "smb-password-file", help: "smb:// backup folder: file holding the user's password (chmod 600)", cmds: withBackupDir, field: func(c *Config) any { return &c.SMBPasswordFile }},
	{key: "encrypt-to", help: "encrypt the payloads with age to this recipient: an age public key (age1…), an SSH public key line (ssh-ed25519 …, ssh-rsa …) or a recipients file as age -R reads (repeatable); rsync sets cannot be encrypted", cmds: backupOnly, field: func(c *Config) any { return &c.EncryptTo }},
	{key: "encrypt-passphrase-file", help: "encrypt the payloads with age to the passphrase on the first line of this file (chmod 600; scrypt); reading commands open such sets with it", cmds: append([]string{CmdBackup}, withPayloadReader...), field: func(c *Config) any { return &c.EncryptPassFile }},
	{key: "age-identity", help: "age identity file (age-keygen) or SSH private key without passphrase that opens encrypted sets", cmds: withPayloadReader, field: func(c *Config) any { return &c.AgeIdentity }},
	{key: "type", short: "t", help: "backup type: dd, ddz, tar, tgz or rsync; raspiBackup -t", cmds: backupOnly, field: func(c *Config) any { return &c.Type }},
	{key: "compress", short: "z", help: `compression for dd and tar: gzip, zstd or none (dd+gzip = ddz, tar+gzip = tgz); "" is the type's own; true means gzip (raspiBackup -z)`,
		choices: []string{"gzip", "zstd", "none"}, fromBool: map[bool]string{true: "gzip", false: ""}, cmds: backupOnly, field: func(c *Config) any { return &c.Compress }},
	{key: "partitions", short: "P", help: `partition-oriented mode: back up these partitions, e.g. "1 2 5" or "*"; raspiBackup -P -T`, cmds: backupOnly, field: func(c *Config) any { return &c.Partitions }},
	{key: "keep", short: "k", help: "backups to keep per host, OS release and type; -1 keeps all; raspiBackup -k", cmds: withRetention, field: func(c *Config) any { return &c.Keep }},
	{key: "keep-dd", help: "keep for dd backups; 0 means --keep", cmds: withRetention, field: func(c *Config) any { return &c.KeepDD }},
	{key: "keep-ddz", help: "keep for ddz backups; 0 means --keep", cmds: withRetention, field: func(c *Config) any { return &c.KeepDDZ }},
	{key: "keep-tar", help: "keep for tar backups; 0 means --keep", cmds: withRetention, field: func(c *Config) any { return &c.KeepTar }},
	{key: "keep-tgz", help: "keep for tgz backups; 0 means --keep", cmds: withRetention, field: func(c *Config) any { return &c.KeepTGZ }},
	{key: "keep-rsync", help: "keep for rsync backups; 0 means --keep", cmds: withRetention, field: func(c *Config) any { return &c.KeepRsync }},
	{key: "smart-recycle.enabled", flag: "smart-recycle", help: "keep daily/weekly/monthly/yearly backups instead of the newest --keep", cmds: withRetention, field: func(c *Config) any { return &c.SmartRecycle }},
	{key: "smart-recycle.daily", help: "smart recycle: days with their newest backup kept", cmds: withRetention, field: func(c *Config) any { return &c.SmartDaily }},
	{key: "smart-recycle.weekly", help: "smart recycle: weeks (Mon–Sun) with their oldest backup kept", cmds: withRetention, field: func(c *Config) any { return &c.SmartWeekly }},
	{key: "smart-recycle.monthly", help: "smart recycle: months with their oldest backup kept", cmds: withRetention, field: func(c *Config) any { return &c.SmartMonthly }},
	{key: "smart-recycle.yearly", help: "smart recycle: years with their oldest backup kept", cmds: withRetention, field: func(c *Config) any { return &c.SmartYearly }},
	{key: "exclude", short: "u", help: `leave out paths matching this glob (repeatable); "/x/*" is anchored at the filesystem root, "*.tmp" matches at any depth; raspiBackup -u`, cmds: backupOnly, field: func(c *Config) any { return &c.Exclude }},
	{key: "link-boot-files", help: "hard-link boot partition files (image or .tmg, sfdisk, mbr) equal to the previous set's instead of storing them again; raspiBackup DEFAULT_LINK_BOOTPARTITIONFILES", cmds: backupOnly, field: func(c *Config) any { return &c.LinkBootFiles }},
	{key: "boot-tar", short: "B", help: "save the boot partition as tar (.tmg) instead of an image; raspiBackup -B", cmds: backupOnly, field: func(c *Config) any { return &c.BootTar }},
	{key: "used-partitions-only", help: "dd: stop the image at the end of the last partition", cmds: backupOnly, field: func(c *Config) any { return &c.UsedPartitionsOnly }},
	{key: "full-read", help: "dd: read every block instead of only the blocks filesystems use (also for the boot partition image of tar and rsync sets)", cmds: backupOnly, field: func(c *Config) any { return &c.FullRead }},
	{key: "hostname", help: "host name for the set (default: /etc/hostname of the source root)", cmds: backupOnly, field: func(c *Config) any { return &c.Hostname }},
	{key: "progress", short: "g", help: "show a progress bar on stderr; raspiBackup -g", cmds: backupOnly, field: func(c *Config) any { return &c.Progress }},
	{key: "services", flag: "service", help: "service stopped before and started after the backup, in reverse order: unit:NAME, NAME.service, docker:NAME or podman:NAME (repeatable)", cmds: backupOnly, field: func(c *Config) any { return &c.Services }},
	{key: "stop-commands", flag: "stop-command", help: "command run to stop services, as words with shell-style quotes, not run by a shell (repeatable); raspiBackup -o", cmds: backupOnly, field: func(c *Config) any { return &c.StopCommands }},
	{key: "start-commands", flag: "start-command", help: "command run to start services again (repeatable); raspiBackup -a", cmds: backupOnly, field: func(c *Config) any { return &c.StartCommands }},
	{key: "hooks.dir", help: "folder with one subfolder of executables per event", cmds: everyHookUser, field: func(c *Config) any { return &c.HooksDir }},
	{key: "hooks.timeout", help: "time limit of one hook", cmds: everyHookUser, field: func(c *Config) any { return &c.HooksTimeout }},
	{key: "hooks.pre-backup", flag: "hook-pre-backup", help: "command before services stop; failure aborts (repeatable)", cmds: backupOnly, field: func(c *Config) any { return &c.HooksPreBackup }},
	{key: "hooks.ready", flag: "hook-ready", help: "command after services stopped, before data is read; failure aborts (repeatable)", cmds: backupOnly, field: func(c *Config) any { return &c.HooksReady }},
	{key: "hooks.post-backup", flag: "hook-post-backup", help: "command after the backup, before services start (repeatable)", cmds: backupOnly, field: func(c *Config) any { return &c.HooksPostBackup }},
	{key: "hooks.pre-restore", flag: "hook-pre-restore", help: "command before a restore or clone writes anything; failure aborts (repeatable)", cmds: withRestore, field: func(c *Config) any { return &c.HooksPreRestore }},
	{key: "hooks.post-restore", flag: "hook-post-restore", help: "command after a restore or clone, also a failed one; BACKUP_RC has its exit code (repeatable)", cmds: withRestore, field: func(c *Config) any { return &c.HooksPostRestore }},
	{key: "email.to", flag: "email", short: "e", help: "mail the outcome to this address (repeatable); raspiBackup -e", cmds: backupOnly, field: func(c *Config) any { return &c.EmailTo }},
	{key: "email.from", help: "sender address", cmds: backupOnly, field: func(c *Config) any { return &c.EmailFrom }},
	{key: "email.on-error-only", help: "mail only when the run failed", cmds: backupOnly, field: func(c *Config) any { return &c.EmailOnErrorOnly }},
	{key: "email.attach-log", help: "attach the run log to the mail", cmds: backupOnly, field: func(c *Config) any { return &c.EmailAttachLog }},
	{key: "smtp.host", help: "SMTP server", cmds: backupOnly, field: func(c *Config) any { return &c.SMTPHost }},
	{key: "smtp.port", help: "SMTP port; 0 means 587 (starttls), 465 (tls) or 25 (none)", cmds: backupOnly, field: func(c *Config) any { return &c.SMTPPort }},
	{key: "smtp.security", help: "starttls, tls or none", cmds: backupOnly, field: func(c *Config) any { return &c.SMTPSecurity }},
	{key: "smtp.auth", help: "auto, plain or login", cmds: backupOnly, field: func(c *Config) any { return &c.SMTPAuth }},
	{key: "smtp.user", help: "SMTP user name", cmds: backupOnly, field: func(c *Config) any { return &c.SMTPUser }},
	{key: "smtp.password", help: "SMTP password (secret: better in a chmod 600 file than on the command line)", cmds: backupOnly, field: func(c *Config) any { return &c.SMTPPassword }},
	{key: "webhook.url", help: "POST a JSON notice here (ntfy, Gotify, Slack, Home Assistant); secret", cmds: backupOnly, field: func(c *Config) any { return &c.WebhookURL }},
	{key: "webhook.token", help: "sent as Authorization: Bearer; secret", cmds: backupOnly, field: func(c *Config) any { return &c.WebhookToken }},
	{key: "webhook.topic", help: "ntfy topic, added to the JSON", cmds: backupOnly, field: func(c *Config) any { return &c.WebhookTopic }},
	{key: "webhook.on-error-only", help: "notify the webhook only when the run failed", cmds: backupOnly, field: func(c *Config) any { return &c.WebhookOnErrorOnly }},
	{key: "telegram.token", help: "Telegram bot token (from @BotFather); with telegram.chat-id; secret", cmds: backupOnly, field: func(c *Config) any { return &c.TelegramToken }},
	{key: "telegram.chat-id", help: "Telegram chat id (a number, or @channel) the bot writes to", cmds: backupOnly, field: func(c *Config) any { return &c.TelegramChatID }},
	{key: "telegram.api-url", help: "Telegram Bot API base (default https://api.telegram.org; a self-hosted Bot API server); secret", cmds: backupOnly, field: func(c *Config) any { return &c.TelegramAPIURL }},
	{key: "telegram.on-error-only", help: "notify Telegram only when the run failed", cmds: backupOnly, field: func(c *Config) any { return &c.TelegramOnErrorOnly }},
	{key: "pushover.token", help: "Pushover application API token; with pushover.user; secret", cmds: backupOnly, field: func(c *Config) any { return &c.PushoverToken }},
	{key: "pushover.user", help: "Pushover user or group key", cmds: backupOnly, field: func(c *Config) any { return &c.PushoverUser }},
	{key: "pushover.api-url", help: "Pushover API base (default https://api.pushover.net); secret", cmds: backupOnly, field: func(c *Config) any { return &c.PushoverAPIURL }},
	{key: "pushover.on-error-only", help: "notify Pushover only when the run failed", cmds: backupOnly, field: func(c *Config) any { return &c.PushoverOnErrorOnly }},
	{key: "discord.webhook-url", help: "Discord channel webhook URL; secret", cmds: backupOnly, field: func(c *Config) any { return &c.DiscordURL }},
	{key: "discord.on-error-only", help: "notify Discord only when the run failed", cmds: backupOnly, field: func(c *Config) any { return &c.DiscordOnErrorOnly }},
	{key: "slack.webhook-url", help: "Slack incoming webhook URL; secret", cmds: backupOnly, field: func(c *Config) any { return &c.SlackURL }},
	{key: "slack.on-error-only", help: "notify Slack only when the run failed", cmds: backupOnly, field: func(c *Config) any { return &c.SlackOnErrorOnly }},
	{key: "ntfy.url", help: "ntfy server (default https://ntfy.sh); secret", cmds: backupOnly, field: func(c *Config) any { return &c.NtfyURL }},
	{key: "ntfy.topic", help: "ntfy topic to publish to", cmds: backupOnly, field: func(c *Config) any { return &c.NtfyTopic }},
	{key: "ntfy.token", help: "ntfy access token; secret", cmds: backupOnly, field: func(c *Config) any { return &c.NtfyToken }},
	{key: "ntfy.on-error-only", help: "notify ntfy only when the run failed", cmds: backupOnly, field: func(c *Config) any { return &c.NtfyOnErrorOnly }},
	{key: "notify-start", help: "also notify when a backup starts (notifiers set to on-error-only stay quiet)", cmds: backupOnly, field: func(c *Config) any { return &c.NotifyStart }},
	{key: "log.json", help: "write the run log as JSON lines instead of text", cmds: backupOnly, field: func(c *Config) any { return &c.LogJSON }},
	{key: "lang", help: `language of result lines, notices, status and the restore and clone plans: en or de ("" follows LC_ALL, LC_MESSAGES, LANG); raspiBackup -G`, choices: []string{"en", "de"}, cmds: everyLangUser, field: func(c *Config) any { return &c.Lang }},
	{key: "mount.cache-dir", flag: "cache-dir", help: "mount: folder for archive indexes and decompressed payloads (\"\" is /var/cache/backupctl for root)", cmds: []string{CmdMount}, field: func(c *Config) any { return &c.MountCacheDir }},
	{key: "restore-test.work-dir", flag: "work-dir", help: "restore-test: folder for the scratch image (it needs about the used space of the backed-up filesystems)", cmds: []string{CmdRestoreTest}, field: func(c *Config) any { return &c.RestoreTestWorkDir }},
	{key: "restore-test.sample", flag: "sample", help: "restore-test: number of files compared with the set's hashes", cmds: []string{CmdRestoreTest}, field: func(c *Config) any { return &c.RestoreTestSample }},
	{key: "restore-test.max-space", flag: "max-space", help: `restore-test: refuse to start when the image would need more than this (e.g. "8G"; "" no limit)`, cmds: []string{CmdRestoreTest}, field: func(c *Config) any { return &c.RestoreTestMaxSpace }},
	{key: "restore-test.remind-months", flag: "remind-months", help: "status and a backup's result: remind when the last test restore is older than this many months; 0 never reminds", cmds: []string{CmdStatus, CmdBackup}, field: func(c *Config) any { return &c.RemindMonths }},
	{key: "schedule.on-calendar", flag: "on-calendar", help: "schedule install: when to back up, as a systemd calendar expression", cmds: []string{CmdSchedule}, field: func(c *Config) any { return &c.ScheduleOnCalendar }},
	{key: "schedule.restore-test", flag: "restore-test", help: "schedule install: also run `backupctl restore-test` on this calendar (daily, weekly, monthly or a systemd calendar expression) from its own timer", cmds: []string{CmdSchedule}, field: func(c *Config) any { return &c.ScheduleRestoreTest }},
	{key: "s3.endpoint", help: `S3 server for s3://bucket/prefix backup folders, e.g. "https://minio.lan:9000" ("" is AWS, or AWS_ENDPOINT_URL_S3)`, cmds: withBackupDir, field: func(c *Config) any { return &c.S3Endpoint }},
	{key: "s3.region", help: `S3 region ("" is AWS_REGION, else us-east-1 for a server given by s3.endpoint)`, cmds: withBackupDir, field: func(c *Config) any { return &c.S3Region }},
	{key: "s3.access-key", help: `S3 access key id ("" is AWS_ACCESS_KEY_ID)`, cmds: withBackupDir, field: func(c *Config) any { return &c.S3AccessKey }},
	{key: "s3.secret-key-file", help: `file holding the S3 secret key, mode 600 ("" is AWS_SECRET_ACCESS_KEY); the key itself is never a flag`, cmds: withBackupDir, field: func(c *Config) any { return &c.S3SecretKeyFile }},
	{key: "s3.path-style", help: "address the bucket in the URL path, not the host name (MinIO, Garage, most servers on a LAN)", cmds: withBackupDir, field: func(c *Config) any { return &c.S3PathStyle }},
}

func lookup(key string) (option, bool) {
	for _, o := range table {
		if o.key == key {
			return o, true
		}
	}
	return option{}, false
}

// Keys lists every config key in table order.
func Keys() []string {
	out := make([]string, len(table))
	for i, o := range table {
		out[i] = o.key
	}
	return out
}

// Option describes one setting, for the CLI's tests and documentation.
type Option struct {
	Key      string
	Flag     string   // the long flag, without --
	Short    string   // the one-letter flag, or ""
	Help     string   // the flag's usage and the config file's comment
	Type     string   // bool, int, string, duration, list or secret
	Choices  []string // the values a string takes besides "", if limited
	Commands []string // the commands that take it as a flag (and `config show`)
	Default  string   // the default as a TOML value
}

// Options lists every setting in table order.
func Options() []Option {
	d := Defaults()
	out := make([]Option, len(table))
	for i, o := range table {
		out[i] = Option{Key: o.key, Flag: o.flagName(), Short: o.short, Help: o.help, Type: kindOf(o.field(d)),
			Choices: slices.Clone(o.choices), Commands: slices.Clone(o.cmds), Default: format(d, o, true)}
	}
	return out
}

// OptionForFlag returns the setting whose long flag is name.
func OptionForFlag(name string) (Option, bool) {
	for _, o := range Options() {
		if o.Flag == name {
			return o, true
		}
	}
	return Option{}, false
}

// Value renders the setting key of c as a TOML value, secrets revealed.
func (c *Config) Value(key string) (string, error) {
	o, ok := lookup(key)
	if !ok {
		return "", fmt.Errorf("unknown key %s%s", key, suggest(key))
	}
	return format(c, o, true), nil
}

func kindOf(p any) string {
	switch p.(type) {
	case *bool:
		return "bool"
	case *int:
		return "int"
	case *time.Duration:
		return "duration"
	case *[]string:
		return "list"
	case *runlog.Secret:
		return "secret"
	}
	return "string"
}
