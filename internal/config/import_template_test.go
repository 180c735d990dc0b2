package config

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// templateKeys lists the KEY= lines of a raspiBackup.conf, once each.
func templateKeys(t *testing.T, text string) []string {
	t.Helper()
	var keys []string
	for _, m := range regexp.MustCompile(`(?m)^([A-Z][A-Z0-9_]*)=`).FindAllStringSubmatch(text, -1) {
		if !slices.Contains(keys, m[1]) {
			keys = append(keys, m[1])
		}
	}
	if len(keys) < 70 {
		t.Fatalf("the template has %d keys; the complete one has over 70", len(keys))
	}
	return keys
}

// setValues replaces the values of the given keys in a raspiBackup.conf.
func setValues(t *testing.T, text string, vals map[string]string) string {
	t.Helper()
	for k, v := range vals {
		re := regexp.MustCompile(`(?m)^` + k + `=.*$`)
		if !re.MatchString(text) {
			t.Fatalf("the template has no %s", k)
		}
		text = re.ReplaceAllLiteralString(text, k+"="+v)
	}
	return text
}

func readTemplate(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("testdata/raspiBackup_en.conf")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestImportRaspiBackupTemplate imports raspiBackup's own complete config
// template: every key in it is imported, left at backupctl's default
// with why, or dropped with why. None is passed over in silence.
func TestImportRaspiBackupTemplate(t *testing.T) {
	text := readTemplate(t)
	keys := templateKeys(t, text)
	imp, err := ImportRaspiBackup(text)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	var imported, same, dropped int
	for _, k := range imp.Keys {
		got = append(got, k.Key)
		switch {
		case len(k.To) > 0 && !k.Dropped:
			imported++
		case k.Why == "":
			t.Errorf("%s=%q: neither imported nor a reason why not", k.Key, k.Value)
		case k.Dropped:
			dropped++
			if !slices.Contains(imp.Skipped, k.Key+": "+k.Why) {
				t.Errorf("%s dropped but not in Skipped", k.Key)
			}
		default:
			same++
		}
	}
	if !slices.Equal(got, keys) {
		t.Errorf("import accounts for keys\n%q\nwant the template's\n%q", got, keys)
	}
	if len(imp.Unknown) > 0 {
		t.Errorf("raspiBackup's own keys reported as unknown: %q", imp.Unknown)
	}
	t.Logf("%d keys: %d imported, %d at backupctl's defaults, %d dropped", len(keys), imported, same, dropped)
	if err := imp.Config.Validate(); err != nil {
		t.Errorf("the imported template does not validate: %v", err)
	}
	// raspiBackup's defaults that differ from backupctl's are written.
	if !slices.Contains(imp.Set, "link-boot-files") || imp.Config.LinkBootFiles {
		t.Errorf("DEFAULT_LINK_BOOTPARTITIONFILES=0 not imported as link-boot-files = false: set %q", imp.Set)
	}
}

// TestImportRaspiBackupTemplateFilled sets the template's keys that have
// an equivalent to values a user would choose and checks what each
// becomes.
func TestImportRaspiBackupTemplateFilled(t *testing.T) {
	text := setValues(t, readTemplate(t), map[string]string{
		"DEFAULT_LANGUAGE":                   "\"DE\"",
		"DEFAULT_BACKUPTYPE":                 "\"tar\"",
		"DEFAULT_TAR_COMPRESSION_TOOL":       "\"zstd\"",
		"DEFAULT_PARTITIONBASED_BACKUP":      "\"1\"",
		"DEFAULT_PARTITIONS_TO_BACKUP":       "\"1 2 5\"",
		"DEFAULT_KEEPBACKUPS":                "5",
		"DEFAULT_KEEPBACKUPS_TAR":            "2",
		"DEFAULT_KEEPBACKUPS_RSYNC":          "4",
		"DEFAULT_SMART_RECYCLE":              "1",
		"DEFAULT_SMART_RECYCLE_DRYRUN":       "0",
		"DEFAULT_SMART_RECYCLE_OPTIONS":      "\"6 3 10 2\"",
		"DEFAULT_STOPSERVICES":               "\"systemctl stop nginx && /opt/app/ctl 'stop all'\"",
		"DEFAULT_STARTSERVICES":              "\"/opt/app/ctl start && systemctl start nginx\"",
		"DEFAULT_BEFORE_STOPSERVICES":        "\"/usr/local/bin/announce backup && logger starting\"",
		"DEFAULT_AFTER_STARTSERVICES":        "\"/usr/local/bin/announce done\"",
		"DEFAULT_EMAIL":                      "\"admin@example.org\"",
		"DEFAULT_SENDER_EMAIL":               "\"pi@example.org\"",
		"DEFAULT_MAIL_ON_ERROR_ONLY":         "1",
		"DEFAULT_MAIL_PROGRAM":               "\"msmtp\"",
		"DEFAULT_EXTENSIONS":                 "\"mem temp\"",
		"DEFAULT_RESTORE_EXTENSIONS":         "\"fstab\"",
		"DEFAULT_TELEGRAM_TOKEN":             "\"123456:AAbbCC\"",
		"DEFAULT_TELEGRAM_CHATID":            "\"-100987\"",
		"DEFAULT_TELEGRAM_NOTIFICATIONS":     "\"F\"",
		"DEFAULT_PUSHOVER_TOKEN":             "\"azGDORePK8gMaC0QOYAMyEEuzJnyUi\"",
		"DEFAULT_PUSHOVER_USER":              "\"uQiRzpo4DXghDmr9QzzfQu27cmVRsG\"",
		"DEFAULT_PUSHOVER_NOTIFICATIONS":     "\"SF\"",
		"DEFAULT_SLACK_WEBHOOK_URL":          "\"https://hooks.slack.com/services/T0/B0/XYZ\"",
		"DEFAULT_SLACK_NOTIFICATIONS":        "\"F\"",
		"DEFAULT_NOTIFY_START":               "1",
		"DEFAULT_RESTORE_REMINDER_INTERVAL":  "3",
		"DEFAULT_EXCLUDE_LIST":               "\"--exclude=/home/pi/.cache --exclude /var/tmp\"",
		"DEFAULT_LINK_BOOTPARTITIONFILES":    "1",
		"DEFAULT_TAR_BOOT_PARTITION_ENABLED": "1",
		"DEFAULT_COLORING":                   "\"C\"",
	})
	imp, err := ImportRaspiBackup(text)
	if err != nil {
		t.Fatal(err)
	}
	c := imp.Config
	checkAll(t, c, []check{
		{"lang", c.Lang == "de"},
		{"compress", c.Type == "tar" && c.Compress == "zstd"},
		{"partitions", c.Partitions == "1 2 5"},
		{"keeps", c.Keep == 5 && c.KeepTar == 2 && c.KeepRsync == 4 && c.KeepDD == 0},
		{"smart", c.SmartRecycle && c.SmartDaily == 6 && c.SmartWeekly == 3 && c.SmartMonthly == 10 && c.SmartYearly == 2},
		{"stop", slices.Equal(c.StopCommands, []string{"systemctl stop nginx", "/opt/app/ctl 'stop all'"})},
		{"start", slices.Equal(c.StartCommands, []string{"/opt/app/ctl start", "systemctl start nginx", "/usr/local/bin/announce done"})},
		{"before stop", slices.Equal(c.HooksPreBackup, []string{"/usr/local/bin/announce backup", "logger starting"})},
		{"mail", slices.Equal(c.EmailTo, []string{"admin@example.org"}) && c.EmailFrom == "pi@example.org" && c.EmailOnErrorOnly},
		{"extensions", len(c.HooksReady) == 2 && len(c.HooksPostBackup) == 1 && len(c.HooksPreRestore) == 1 && len(c.HooksPostRestore) == 1},
		{"telegram", c.TelegramToken.Reveal() == "123456:AAbbCC" && c.TelegramChatID == "-100987" && c.TelegramOnErrorOnly},
		{"pushover", c.PushoverToken.IsSet() && c.PushoverUser != "" && !c.PushoverOnErrorOnly},
		{"slack", c.SlackURL.IsSet() && c.SlackOnErrorOnly},
		{"notify-start", c.NotifyStart},
		{"reminder", c.RemindMonths == 3},
		{"exclude", slices.Equal(c.Exclude, []string{"/home/pi/.cache", "/var/tmp"})},
		{"boot", c.LinkBootFiles && c.BootTar},
	})
	byKey := map[string]KeyResult{}
	for _, k := range imp.Keys {
		byKey[k.Key] = k
	}
	for _, k := range []string{"DEFAULT_MAIL_PROGRAM", "DEFAULT_COLORING", "DEFAULT_PARTITIONS_TO_RESTORE"} {
		if r := byKey[k]; !r.Dropped || r.Why == "" {
			t.Errorf("%s: %+v; want dropped with a reason", k, r)
		}
	}
	if r := byKey["DEFAULT_TAR_COMPRESSION_TOOL"]; !slices.Equal(r.To, []string{"compress"}) {
		t.Errorf("DEFAULT_TAR_COMPRESSION_TOOL: %+v", r)
	}
	// The mail needs an SMTP server raspiBackup's file cannot name; with
	// one, everything imported builds.
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "email") {
		t.Errorf("validate without smtp.host: %v; want the e-mail settings named", err)
	}
	c.SMTPHost = "smtp.example.org"
	if err := c.Validate(); err != nil {
		t.Errorf("imported settings do not build: %v", err)
	}

	// A tool other than gzip or zstd, or a type other than tar, is
	// dropped with why; -z (DEFAULT_ZIP_BACKUP) wins as in raspiBackup.
	for _, tc := range []struct {
		vals map[string]string
		want string
	}{
		{map[string]string{"DEFAULT_BACKUPTYPE": "tar", "DEFAULT_TAR_COMPRESSION_TOOL": "xz"}, "gzip or zstd, not xz"},
		{map[string]string{"DEFAULT_BACKUPTYPE": "dd", "DEFAULT_TAR_COMPRESSION_TOOL": "zstd"}, "the type is dd"},
		{map[string]string{"DEFAULT_BACKUPTYPE": "tar", "DEFAULT_TAR_COMPRESSION_TOOL": "zstd", "DEFAULT_ZIP_BACKUP": "1"}, "DEFAULT_ZIP_BACKUP=1 wins"},
		{map[string]string{"DEFAULT_LANGUAGE": "FI"}, "en and de"},
	} {
		imp, err := ImportRaspiBackup(setValues(t, readTemplate(t), tc.vals))
		if err != nil {
			t.Fatal(err)
		}
		if s := strings.Join(imp.Skipped, "\n"); !strings.Contains(s, tc.want) {
			t.Errorf("%v: skipped lacks %q:\n%s", tc.vals, tc.want, s)
		}
	}
}

// TestImportSmartRecyclePreview: raspiBackup's shipped default previews
// smart recycle (DEFAULT_SMART_RECYCLE_DRYRUN=1) and deletes nothing, so
// an import with smart recycle on must not start deleting either.
func TestImportSmartRecyclePreview(t *testing.T) {
	imp, err := ImportRaspiBackup(setValues(t, readTemplate(t), map[string]string{
		"DEFAULT_SMART_RECYCLE": "1", "DEFAULT_KEEPBACKUPS": "5", "DEFAULT_KEEPBACKUPS_DD": "2",
	}))
	if err != nil {
		t.Fatal(err)
	}
	c := imp.Config
	if c.SmartRecycle || c.Keep != -1 || c.KeepDD != 0 {
		t.Errorf("smart recycle preview imported as smart %v keep %d keep-dd %d; want no deletion: off, -1, 0", c.SmartRecycle, c.Keep, c.KeepDD)
	}
	if !slices.ContainsFunc(imp.Notes, func(n string) bool { return strings.Contains(n, "retention --dry-run") }) {
		t.Errorf("no note on how to preview: %q", imp.Notes)
	}
}

// TestImportedExtensionsRun runs the hooks the importer makes of
// DEFAULT_EXTENSIONS with real bash: scripts in PATH are sourced with the
// return code as $1, raspiBackup's writeToConsole prints, a missing
// script is skipped, and a failing one fails the hook.
func TestImportedExtensionsRun(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatal("bash is needed to run raspiBackup extensions: ", err)
	}
	bin := t.TempDir()
	scripts := map[string]string{
		// As raspiBackup's own raspiBackup_mem_pre.sh writes its message.
		"raspiBackup_mem_pre.sh": `MSG_X="ext_x_1"
MSG_EN[$MSG_X]="RBK1001I: memory used %s MB free %s MB"
writeToConsole $MSG_LEVEL_MINIMAL $MSG_X "12" "34"
`,
		"raspiBackup_mem_post.sh":  "echo \"post rc=$1\"\n",
		"raspiBackup_fail_post.sh": "false\n",
	}
	for n, s := range scripts {
		if err := os.WriteFile(filepath.Join(bin, n), []byte(s), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	imp, err := ImportRaspiBackup("DEFAULT_EXTENSIONS=\"mem absent\"\n")
	if err != nil {
		t.Fatal(err)
	}
	run := func(line string, rc string) (string, error) {
		argv, err := SplitCommand(line)
		if err != nil {
			t.Fatalf("hook %q does not split: %v", line, err)
		}
		if argv[0] != "bash" {
			t.Fatalf("hook %q", line)
		}
		cmd := exec.Command(bash, argv[1:]...)
		cmd.Env = []string{"PATH=" + bin + ":/usr/bin:/bin", "BACKUP_RC=" + rc}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	c := imp.Config
	if len(c.HooksReady) != 2 || len(c.HooksPostBackup) != 1 {
		t.Fatalf("hooks: ready %q post %q", c.HooksReady, c.HooksPostBackup)
	}
	if out, err := run(c.HooksReady[0], ""); err != nil || out != "RBK1001I: memory used 12 MB free 34 MB\n" {
		t.Errorf("pre extension: %q, %v", out, err)
	}
	if out, err := run(c.HooksReady[1], ""); err != nil || out != "" {
		t.Errorf("ready, no script: %q, %v; want nothing", out, err)
	}
	if out, err := run(c.HooksPostBackup[0], "1"); err != nil || out != "post rc=1\n" {
		t.Errorf("post extension: %q, %v", out, err)
	}
	imp, err = ImportRaspiBackup("DEFAULT_EXTENSIONS=\"fail mem\"\n")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := run(imp.Config.HooksPostBackup[0], "0"); err == nil || out != "post rc=0\n" {
		t.Errorf("failing extension: %q, %v; want the others run and the hook failed", out, err)
	}
	if _, err := imp.Config.HookOptions(); err != nil {
		t.Errorf("extension hooks do not build: %v", err)
	}
}

// check is one named condition on an imported Config.
type check struct {
	what string
	ok   bool
}

func checkAll(t *testing.T, c *Config, checks []check) {
	t.Helper()
	for _, ck := range checks {
		if !ck.ok {
			t.Errorf("import of %s wrong: %+v", ck.what, c)
		}
	}
}
