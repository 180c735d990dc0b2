package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/pibackup/pibackup/internal/backupset"
	"github.com/pibackup/pibackup/internal/hooks"
	"github.com/pibackup/pibackup/internal/runlog"
	"github.com/pibackup/pibackup/internal/services"
)

func write(t *testing.T, path, text string, mode os.FileMode) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // umask may have narrowed it
		t.Fatal(err)
	}
	return path
}

func parseFlags(t *testing.T, args ...string) *Flags {
	t.Helper()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	f := AddFlags(fs, "")
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	src := Sources{
		System:   []string{write(t, dir+"/etc.conf", "keep = 1\ntype = \"dd\"\nbackup-path = \"/sys\"\n", 0o644), dir + "/missing.conf"},
		User:     write(t, dir+"/user", "keep = 2\ntype = \"tar\"\n", 0o644),
		Local:    write(t, dir+"/local.conf", "keep = 3\n[smtp]\nhost = \"local\"\n", 0o644),
		Explicit: write(t, dir+"/explicit.conf", "keep = 4\nexclude = [\"/a\"]\n", 0o644),
	}
	l, err := Load(src, parseFlags(t, "--keep", "5", "--exclude", "/b", "--exclude", "/c,d", "--compress=true"))
	if err != nil {
		t.Fatal(err)
	}
	c := l.Config
	if c.Keep != 5 || c.Type != "tar" || c.BackupPath != "/sys" || c.SMTPHost != "local" || c.Compress != "gzip" {
		t.Errorf("merged = keep %d type %s path %s smtp %s compress %q", c.Keep, c.Type, c.BackupPath, c.SMTPHost, c.Compress)
	}
	// Flags replace a file's list rather than appending to it, and never
	// split on commas.
	if !slices.Equal(c.Exclude, []string{"/b", "/c,d"}) {
		t.Errorf("exclude = %q", c.Exclude)
	}
	want := map[string]string{
		"keep": "flag --keep", "type": src.User, "backup-path": src.System[0], "smtp.host": src.Local,
		"exclude": "flag --exclude", "compress": "flag --compress", "smtp.port": OriginDefault,
	}
	for k, w := range want {
		if l.Origins[k] != w {
			t.Errorf("origin of %s = %q, want %q", k, l.Origins[k], w)
		}
	}
	if len(l.Files) != 4 {
		t.Errorf("files read = %v", l.Files)
	}
}

func TestExplicitFileMustExist(t *testing.T) {
	_, err := Load(Sources{Explicit: filepath.Join(t.TempDir(), "nope.conf")}, nil)
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load = %v, want not exist", err)
	}
}

func TestFileErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, text string
		want       string // substring of the error
	}{
		{"syntax", "keep = \n", "line 1"},
		{"type", "keep = \"three\"\n", "keep wants an integer"},
		{"list type", "exclude = [1]\n", "exclude[0] wants a string"},
		{"duration", "[hooks]\ntimeout = \"soon\"\n", "hooks.timeout"},
		{"bool", "boot-tar = 1\n", "boot-tar wants true or false"},
		{"compress", "compress = 1\n", "compress wants gzip, zstd, none, true or false"},
	}
	for _, tt := range tests {
		p := write(t, filepath.Join(dir, tt.name+".conf"), tt.text, 0o600)
		_, err := Load(Sources{Explicit: p}, nil)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: Load = %v, want an error naming %s and %q", tt.name, err, p, tt.want)
		}
	}
}

func TestUnknownKeysWarn(t *testing.T) {
	p := write(t, t.TempDir()+"/c.conf", "keep_dd = 2\nfuture-option = true\n[smtp]\npasword = \"x\"\n", 0o600)
	l, err := Load(Sources{Explicit: p}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(l.Warnings, "\n")
	for _, want := range []string{"unknown key keep_dd (did you mean keep-dd?)", "unknown key future-option", "unknown key smtp.pasword"} {
		if !strings.Contains(got, want) {
			t.Errorf("warnings lack %q:\n%s", want, got)
		}
	}
}

func TestSecretFilePermissions(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		text string
		mode os.FileMode
		ok   bool
	}{
		{"[smtp]\npassword = \"hunter22\"\n", 0o644, false},
		{"[smtp]\npassword = \"hunter22\"\n", 0o640, false},
		{"[smtp]\npassword = \"hunter22\"\n", 0o600, true},
		{"[webhook]\nurl = \"https://ntfy.sh/x\"\n", 0o604, false},
		{"[webhook]\ntoken = \"tk\"\n", 0o400, true},
		{"keep = 2\n", 0o644, true},
	}
	for i, tt := range tests {
		p := write(t, filepath.Join(dir, "c"+string(rune('a'+i))), tt.text, tt.mode)
		_, err := Load(Sources{Explicit: p}, nil)
		if tt.ok != (err == nil) {
			t.Errorf("%q mode %o: Load = %v", tt.text, tt.mode, err)
		}
		if err != nil {
			if !errors.Is(err, ErrInsecure) || !strings.Contains(err.Error(), "chmod 600 "+p) {
				t.Errorf("error %v does not say how to fix it", err)
			}
			if strings.Contains(err.Error(), "hunter22") {
				t.Errorf("error reveals the secret: %v", err)
			}
		}
	}
}

func TestShowMasksAndParsesBack(t *testing.T) {
	dir := t.TempDir()
	p := write(t, dir+"/c.conf", "[smtp]\nhost = \"mail\"\npassword = \"hunter22\"\n[webhook]\nurl = \"https://ntfy.sh/secret-topic\"\n", 0o600)
	l, err := Load(Sources{Explicit: p}, parseFlags(t, "--webhook-token", "tok-1234", "--service", "docker:ha"))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := Show(&b, l); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, secret := range []string{"hunter22", "secret-topic", "tok-1234"} {
		if strings.Contains(out, secret) {
			t.Errorf("show reveals %q:\n%s", secret, out)
		}
	}
	for _, want := range []string{
		`smtp.password = "********"`, "# " + p, `smtp.host = "mail"`, "# flag --webhook-token",
		`services = ["docker:ha"]`, "# flag --service", "keep = 3", "# default",
		"warning: --webhook-token on the command line is visible",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}
	// The output is a config file again.
	back := write(t, dir+"/back.conf", out, 0o600)
	l2, err := Load(Sources{Explicit: back}, nil)
	if err != nil {
		t.Fatalf("show output does not load: %v\n%s", err, out)
	}
	if l2.Config.SMTPHost != "mail" || !slices.Equal(l2.Config.Services, []string{"docker:ha"}) || l2.Config.Keep != 3 {
		t.Errorf("round trip lost values: %+v", l2.Config)
	}
	if len(l2.Warnings) != 0 {
		t.Errorf("round trip warnings: %v", l2.Warnings)
	}
}

func TestFlagsForEveryOption(t *testing.T) {
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	AddFlags(fs, "")
	for _, o := range table {
		if fs.Lookup(o.flagName()) == nil {
			t.Errorf("no flag for %s", o.key)
		}
	}
	if fs.Lookup("config").Shorthand != "f" {
		t.Error("-f is not --config")
	}
	l, err := Load(Sources{}, parseFlags(t, "-t", "dd", "-k", "7", "-z", "zstd", "-B", "-e", "a@b.c", "-e", "d@e.f",
		"--smart-recycle", "--smart-recycle-daily=3", "--hooks-timeout", "90s", "--hook-ready", "/bin/true x", "--smtp-port", "2525"))
	if err != nil {
		t.Fatal(err)
	}
	c := l.Config
	if c.Type != "dd" || c.Keep != 7 || c.Compress != "zstd" || !c.BootTar || !c.SmartRecycle || c.SmartDaily != 3 ||
		c.HooksTimeout != 90*time.Second || !slices.Equal(c.EmailTo, []string{"a@b.c", "d@e.f"}) ||
		!slices.Equal(c.HooksReady, []string{"/bin/true x"}) || c.SMTPPort != 2525 {
		t.Errorf("flags gave %+v", c)
	}
	if _, err := Load(Sources{}, parseFlags(t, "--keep", "many")); !errors.Is(err, ErrValue) {
		t.Errorf("--keep many: %v", err)
	}
}

func TestSplitCommand(t *testing.T) {
	tests := []struct {
		line string
		want []string // nil: error
	}{
		{"systemctl stop nginx", []string{"systemctl", "stop", "nginx"}},
		{`/usr/local/bin/app 'two words' "double \"q\"" back\ slash`, []string{"/usr/local/bin/app", "two words", `double "q"`, "back slash"}},
		{"docker compose -f /srv/*.yml stop", []string{"docker", "compose", "-f", "/srv/*.yml", "stop"}},
		{"echo ~root", []string{"echo", "~root"}},
		{"echo $HOME", nil},
		{"echo \"$HOME\"", nil},
		{"echo $(id)", nil},
		{"a | b", nil},
		{"a > /tmp/x", nil},
		{"a; b", nil},
		{"a && b", nil},
		{"X=1 a", nil},
		{"", nil},
		{"'unterminated", nil},
	}
	for _, tt := range tests {
		got, err := SplitCommand(tt.line)
		if tt.want == nil {
			if err == nil {
				t.Errorf("SplitCommand(%q) = %q, want an error", tt.line, got)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("SplitCommand(%q) = %q, %v; want %q", tt.line, got, err, tt.want)
			continue
		}
		back, err := SplitCommand(JoinCommand(got))
		if err != nil || !slices.Equal(back, got) {
			t.Errorf("JoinCommand(%q) = %q does not split back: %q, %v", got, JoinCommand(got), back, err)
		}
	}
}

func TestImportRaspiBackup(t *testing.T) {
	b, err := os.ReadFile("testdata/raspiBackup.conf")
	if err != nil {
		t.Fatal(err)
	}
	imp, err := ImportRaspiBackup(string(b))
	if err != nil {
		t.Fatal(err)
	}
	c := imp.Config
	checkAll(t, c, []check{
		{"backup-path", c.BackupPath == "/media/nas/backups"},
		{"type", c.Type == "tar"},
		{"compress", c.Compress == "gzip"},
		{"keep", c.Keep == 5 && c.KeepDD == 2 && c.KeepRsync == 0},
		{"smart", c.SmartRecycle && c.SmartDaily == 7 && c.SmartWeekly == 4 && c.SmartMonthly == 12 && c.SmartYearly == 3},
		{"exclude", slices.Equal(c.Exclude, []string{"/home/pi/.cache", "/var/tmp"})},
		{"boot", c.LinkBootFiles && !c.BootTar && c.UsedPartitionsOnly},
		{"services", slices.Equal(c.Services, []string{"unit:nginx.service", "unit:mariadb.service", "docker:homeassistant"})},
		{"email", slices.Equal(c.EmailTo, []string{"admin@example.org", "ops@example.org"}) && c.EmailFrom == "pi@example.org" && c.EmailOnErrorOnly},
		{"smtp", c.SMTPHost == "smtp.example.org" && c.SMTPPort == 465 && c.SMTPSecurity == "tls" && c.SMTPUser == "pi@example.org"},
		{"password", c.SMTPPassword.Reveal() == `p@ss w"rd`},
	})
	skipped := strings.Join(imp.Skipped, "\n")
	for _, want := range []string{"DEFAULT_MAIL_PROGRAM", "DEFAULT_DYNAMIC_MOUNT: value needs a shell"} {
		if !strings.Contains(skipped, want) {
			t.Errorf("skipped lacks %s:\n%s", want, skipped)
		}
	}
	if strings.Contains(skipped, "TELEGRAM") || strings.Contains(skipped, "LANGUAGE") {
		t.Errorf("empty settings reported as skipped:\n%s", skipped)
	}
	if !slices.Equal(imp.Unknown, []string{"MY_OWN_VARIABLE"}) {
		t.Errorf("unknown = %v", imp.Unknown)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("imported config does not validate: %v", err)
	}

	// What WriteTOML writes, Load reads back to the same values.
	var out bytes.Buffer
	if err := WriteTOML(&out, c, imp.Set); err != nil {
		t.Fatal(err)
	}
	p := write(t, t.TempDir()+"/imported.conf", out.String(), 0o600)
	l, err := Load(Sources{Explicit: p}, nil)
	if err != nil {
		t.Fatalf("imported file does not load: %v\n%s", err, out.String())
	}
	for _, k := range imp.Set {
		o, _ := lookup(k)
		if a, b := format(c, o, true), format(l.Config, o, true); a != b {
			t.Errorf("%s: imported %s, read back %s", k, a, b)
		}
	}
}

func TestImportServicesFallback(t *testing.T) {
	tests := []struct {
		conf     string
		services []string
		stop     []string
		start    []string
		skipped  string
	}{
		{conf: "DEFAULT_STOPSERVICES=\":\"\nDEFAULT_STARTSERVICES=\":\"\n"},
		{
			conf:     "DEFAULT_STOPSERVICES=\"service pihole-FTL stop\"\nDEFAULT_STARTSERVICES=\"service pihole-FTL start\"\n",
			services: []string{"unit:pihole-FTL.service"},
		},
		{
			conf:  "DEFAULT_STOPSERVICES=\"/opt/app/ctl 'stop all'; docker stop db\"\nDEFAULT_STARTSERVICES=\"docker start db && /opt/app/ctl start\"\n",
			stop:  []string{"/opt/app/ctl 'stop all'", "docker stop db"},
			start: []string{"docker start db", "/opt/app/ctl start"},
		},
		{
			// Different names on each side: do not guess, keep the commands.
			conf:  "DEFAULT_STOPSERVICES=\"systemctl stop a\"\nDEFAULT_STARTSERVICES=\"systemctl start b\"\n",
			stop:  []string{"systemctl stop a"},
			start: []string{"systemctl start b"},
		},
		{
			conf:    "DEFAULT_STOPSERVICES=\"systemctl stop a | tee x\"\nDEFAULT_STARTSERVICES=\"systemctl start a\"\n",
			skipped: "needs a shell",
		},
	}
	for _, tt := range tests {
		imp, err := ImportRaspiBackup(tt.conf)
		if err != nil {
			t.Fatal(err)
		}
		c := imp.Config
		if !slices.Equal(c.Services, tt.services) || !slices.Equal(c.StopCommands, tt.stop) || !slices.Equal(c.StartCommands, tt.start) {
			t.Errorf("%q:\nservices %q stop %q start %q", tt.conf, c.Services, c.StopCommands, c.StartCommands)
		}
		if got := strings.Join(imp.Skipped, "\n"); !strings.Contains(got, tt.skipped) || (tt.skipped == "" && got != "") {
			t.Errorf("%q: skipped %q, want %q", tt.conf, got, tt.skipped)
		}
		if tt.stop != nil {
			if _, err := c.Stoppers(services.ExecRunner{}); err != nil {
				t.Errorf("imported commands do not build: %v", err)
			}
		}
	}
	if _, err := ImportRaspiBackup("if then fi ((("); !errors.Is(err, ErrImport) {
		t.Errorf("garbage: %v", err)
	}
}

func TestBuilders(t *testing.T) {
	c := Defaults()
	c.Services = []string{"unit:nginx", "docker:ha"}
	c.StopCommands = []string{"/opt/app stop"}
	c.StartCommands = []string{"/opt/app start"}
	c.HooksPreBackup = []string{"/usr/local/bin/check 'a b'"}
	c.KeepRsync = 9
	c.EmailTo = []string{"a@b.c"}
	c.EmailFrom = "pi@b.c"
	c.SMTPHost = "mail"
	c.SMTPPassword = runlog.Secret("hunter22")
	c.SMTPUser = "pi"
	c.WebhookURL = "https://ntfy.sh/topic"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	st, _ := c.Stoppers(services.ExecRunner{})
	var names []string
	for _, s := range st {
		names = append(names, s.String())
	}
	if want := []string{"unit nginx.service", "container ha", "stop/start commands"}; !slices.Equal(names, want) {
		t.Errorf("stoppers %v, want %v", names, want)
	}
	ho, _ := c.HookOptions()
	if got := ho.Commands[hooks.PreBackup]; len(got) != 1 || !slices.Equal(got[0], []string{"/usr/local/bin/check", "a b"}) {
		t.Errorf("hook argv %q", got)
	}
	if p := c.RetentionPolicy(); p.Keep != 3 || p.KeepType[backupset.TypeRsync] != 9 || p.Smart != nil {
		t.Errorf("policy %+v", p)
	}
	ns, _ := c.Notifiers()
	if len(ns) != 2 {
		t.Errorf("notifiers %v", ns)
	}
	if s := c.Secrets(); !slices.Equal(s, []string{"hunter22", "https://ntfy.sh/topic"}) {
		t.Errorf("secrets %q", s)
	}

	bad := []func(c *Config){
		func(c *Config) { c.Type = "zip" },
		func(c *Config) { c.Keep = 0 },
		func(c *Config) {
			c.SmartRecycle = true
			c.SmartDaily, c.SmartWeekly, c.SmartMonthly, c.SmartYearly = 0, 0, 0, 0
		},
		func(c *Config) { c.Services = []string{"nginx"} },
		func(c *Config) { c.StopCommands = []string{"a"} },
		func(c *Config) { c.StopCommands, c.StartCommands = []string{"a | b"}, []string{"c"} },
		func(c *Config) { c.HooksReady = []string{"$X"} },
		func(c *Config) { c.EmailTo = []string{"a@b.c"} }, // no smtp.host
		func(c *Config) { c.WebhookURL = "ntfy.sh/x" },
	}
	for i, f := range bad {
		c := Defaults()
		f(c)
		if err := c.Validate(); err == nil {
			t.Errorf("case %d validates: %+v", i, c)
		}
	}
}

// TestImportRaspiBackupNotifications: raspiBackup's Telegram, Pushover and
// Slack settings become backupctl's native ones (S/F notifications to
// on-error-only), DEFAULT_NOTIFY_START to notify-start; what has no
// equivalent is reported with why. The result validates.
func TestImportRaspiBackupNotifications(t *testing.T) {
	imp, err := ImportRaspiBackup(`DEFAULT_BACKUPPATH="/backup"
DEFAULT_TELEGRAM_TOKEN="123456:AAbbCC"
DEFAULT_TELEGRAM_CHATID="-100987"
DEFAULT_TELEGRAM_NOTIFICATIONS="F"
DEFAULT_TELEGRAM_THREADID="7"
DEFAULT_PUSHOVER_TOKEN="azGDORePK8gMaC0QOYAMyEEuzJnyUi"
DEFAULT_PUSHOVER_USER="uQiRzpo4DXghDmr9QzzfQu27cmVRsG"
DEFAULT_PUSHOVER_NOTIFICATIONS="SF"
DEFAULT_PUSHOVER_SOUND_SUCCESS="bike"
DEFAULT_SLACK_WEBHOOK_URL="https://hooks.slack.com/services/T0/B0/XYZ"
DEFAULT_SLACK_NOTIFICATIONS="F"
DEFAULT_NOTIFY_START=1
`)
	if err != nil {
		t.Fatal(err)
	}
	c := imp.Config
	if c.TelegramToken.Reveal() != "123456:AAbbCC" || c.TelegramChatID != "-100987" || !c.TelegramOnErrorOnly ||
		c.PushoverToken.Reveal() != "azGDORePK8gMaC0QOYAMyEEuzJnyUi" || c.PushoverUser != "uQiRzpo4DXghDmr9QzzfQu27cmVRsG" || c.PushoverOnErrorOnly ||
		c.SlackURL.Reveal() != "https://hooks.slack.com/services/T0/B0/XYZ" || !c.SlackOnErrorOnly || !c.NotifyStart {
		t.Errorf("imported: %+v", c)
	}
	skipped := strings.Join(imp.Skipped, "\n")
	for _, want := range []string{"DEFAULT_TELEGRAM_THREADID", "DEFAULT_PUSHOVER_SOUND_SUCCESS"} {
		if !strings.Contains(skipped, want) {
			t.Errorf("skipped lacks %s:\n%s", want, skipped)
		}
	}
	if err := c.Validate(); err != nil {
		t.Errorf("imported config does not validate: %v", err)
	}
	if n, err := c.Notifiers(); err != nil || len(n) != 3 {
		t.Errorf("notifiers %v, %v; want Telegram, Pushover and Slack", n, err)
	}
}

// TestCompressOneMeaning: compress is a compressor name in a file as on
// the command line; true and false, from the days it was a boolean (and
// raspiBackup's -z), still read as gzip and the type's own.
func TestCompressOneMeaning(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ file, flag, want string }{
		{file: "compress = true", want: "gzip"},
		{file: "compress = false", want: ""},
		{file: `compress = "zstd"`, want: "zstd"},
		{file: `compress = "none"`, want: "none"},
		{flag: "--compress=true", want: "gzip"},
		{flag: "-zzstd", want: "zstd"},
		{file: "compress = true", flag: "--compress=zstd", want: "zstd"},
	} {
		src := Sources{}
		if tc.file != "" {
			src.Explicit = write(t, filepath.Join(dir, "c.conf"), tc.file+"\n", 0o600)
		}
		var args []string
		if tc.flag != "" {
			args = append(args, tc.flag)
		}
		l, err := Load(src, parseFlags(t, args...))
		if err != nil {
			t.Fatalf("%+v: %v", tc, err)
		}
		if l.Config.Compress != tc.want {
			t.Errorf("%+v: compress %q", tc, l.Config.Compress)
		}
	}
	c := Defaults()
	c.Compress = "lz4"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "unknown compression") {
		t.Errorf("compress lz4 validates: %v", err)
	}
}

func TestS3Options(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "s3.key")
	if err := os.WriteFile(key, []byte("the-secret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := Defaults()
	c.S3Endpoint, c.S3AccessKey, c.S3SecretKeyFile, c.S3PathStyle = "http://nas:9000", "AK", key, true
	if _, err := c.S3Options(); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a key file others can read: %v; want advice to chmod 600", err)
	}
	os.Chmod(key, 0o600)
	o, err := c.S3Options()
	if err != nil || o.SecretKey != "the-secret" || o.AccessKey != "AK" || o.Endpoint != "http://nas:9000" || !o.PathStyle {
		t.Fatalf("S3Options: %+v %v", o, err)
	}
	c.S3SecretKeyFile = ""
	if o, err := c.S3Options(); err != nil || o.SecretKey != "" {
		t.Fatalf("no key file: %+v %v; want the key left to AWS_SECRET_ACCESS_KEY", o, err)
	}
}
