package config

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

// Import is the result of translating a raspiBackup.conf.
type Import struct {
	// Config holds the defaults with the imported values on top.
	Config *Config
	// Set lists the keys the import set, in table order; write them with
	// WriteTOML.
	Set []string
	// Notes explain translations a reader should check.
	Notes []string
	// Skipped are raspiBackup keys that were not imported, with why.
	Skipped []string
	// Unknown are keys that are not raspiBackup settings at all.
	Unknown []string

	// The two service strings are translated together.
	stopServices, startServices string
	haveStop, haveStart         bool
}

// ErrImport is wrapped when the file is not a raspiBackup config at all.
var ErrImport = errors.New("cannot import raspiBackup config")

// ImportRaspiBackup translates the DEFAULT_* settings of a raspiBackup.conf.
// The file is parsed as the bash it is (mvdan.cc/sh), never sourced or
// run; values that need a shell to evaluate ($VAR, $(…)) are skipped and
// reported. Keys it cannot translate are reported, not fatal.
func ImportRaspiBackup(text string) (*Import, error) {
	f, err := syntax.NewParser(syntax.Variant(syntax.LangBash)).Parse(strings.NewReader(text), "raspiBackup.conf")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrImport, err)
	}
	imp := &Import{Config: Defaults()}
	set := map[string]bool{}
	for _, st := range f.Stmts {
		call, ok := st.Cmd.(*syntax.CallExpr)
		if !ok || len(call.Args) > 0 || len(call.Assigns) == 0 {
			imp.Skipped = append(imp.Skipped, fmt.Sprintf("line %d: not a KEY=value line", st.Pos().Line()))
			continue
		}
		for _, a := range call.Assigns {
			if a.Name == nil || a.Array != nil || a.Index != nil || a.Append || a.Naked {
				imp.Skipped = append(imp.Skipped, fmt.Sprintf("line %d: not a plain assignment", a.Pos().Line()))
				continue
			}
			key := a.Name.Value
			val := ""
			if a.Value != nil {
				v, err := literalWords([]*syntax.Word{a.Value})
				if err != nil {
					imp.Skipped = append(imp.Skipped, fmt.Sprintf("%s: value needs a shell to evaluate (%v)", key, err))
					continue
				}
				val = v[0]
			}
			if err := imp.translate(key, val, set); err != nil {
				imp.Skipped = append(imp.Skipped, fmt.Sprintf("%s: %v", key, err))
			}
		}
	}
	if imp.Config.SMTPPort == 465 && !set["smtp.security"] {
		// 465 is implicit TLS (RFC 8314); STARTTLS there would hang.
		_ = imp.setKey(set, "smtp.security", "tls")
	}
	for _, o := range table {
		if set[o.key] {
			imp.Set = append(imp.Set, o.key)
		}
	}
	return imp, nil
}

// ignoredKeys are raspiBackup settings with no counterpart, and why.
var ignoredKeys = map[string]string{
	"VERSION_CONFIG":               "version of the raspiBackup config format",
	"DEFAULT_SMART_RECYCLE_DRYRUN": "use `backupctl retention --dry-run`; a backup never skips itself for a preview",
	"DEFAULT_MAIL_PROGRAM":         "backupctl speaks SMTP itself; set smtp.host, smtp.user and smtp.password",
	"DEFAULT_EMAIL_PARMS":          "mail program options have no meaning without a mail program",
	"DEFAULT_EXTENSIONS":           "extensions are bash sourced into raspiBackup; port them to executables in /etc/backupctl/hooks.d/<event>/",
	"DEFAULT_RESTORE_EXTENSIONS":   "port restore extensions to /etc/backupctl/hooks.d/pre-restore and post-restore",
	"DEFAULT_SEND_STATS":           "backupctl sends no usage statistics",
	"DEFAULT_DEPLOYMENT_HOSTS":     "backupctl does not deploy itself",
	"DEFAULT_TELEGRAM_THREADID":    "backupctl posts to the chat, not to a topic thread",
	"DEFAULT_PUSHOVER_DEVICE":      "backupctl notifies all of the user's devices",
	"DEFAULT_BEFORE_STOPSERVICES":  "use a pre-backup hook",
	"DEFAULT_AFTER_STARTSERVICES":  "use a post-backup hook (it runs before services start) or a script in stop/start commands",
	"DEFAULT_FINAL_COMMAND":        "use a post-backup hook",
	"DEFAULT_SKIP_DEPRECATED":      "unused by raspiBackup itself",
	"DEFAULT_SLACK_NOTIFICATIONS":  "",
	"DEFAULT_STARTSERVICES":        "",
}

func (imp *Import) setKey(set map[string]bool, key string, v any) error {
	o, ok := lookup(key)
	if !ok {
		return fmt.Errorf("BUG: importer maps to unknown key %s", key)
	}
	if err := setTOML(imp.Config, o, v); err != nil {
		return err
	}
	set[key] = true
	return nil
}

func raspiBool(val string) (bool, error) {
	switch val {
	case "", "0":
		return false, nil
	case "1":
		return true, nil
	}
	return false, fmt.Errorf("want 0 or 1, not %q", val)
}

func (imp *Import) translate(key, val string, set map[string]bool) error {
	simple := map[string]string{
		"DEFAULT_BACKUPPATH":        "backup-path",
		"DEFAULT_BACKUPTYPE":        "type",
		"DEFAULT_SENDER_EMAIL":      "email.from",
		"DEFAULT_SMTP_SERVER":       "smtp.host",
		"DEFAULT_SMTP_HOST":         "smtp.host",
		"DEFAULT_SMTP_USER":         "smtp.user",
		"DEFAULT_SMTP_USERNAME":     "smtp.user",
		"DEFAULT_SMTP_PASSWORD":     "smtp.password",
		"DEFAULT_SMTP_SENDER":       "email.from",
		"DEFAULT_SLACK_WEBHOOK_URL": "slack.webhook-url",
		"DEFAULT_TELEGRAM_TOKEN":    "telegram.token",
		"DEFAULT_TELEGRAM_CHATID":   "telegram.chat-id",
		"DEFAULT_PUSHOVER_TOKEN":    "pushover.token",
		"DEFAULT_PUSHOVER_USER":     "pushover.user",
	}
	bools := map[string]string{
		"DEFAULT_ZIP_BACKUP":                          "compress",
		"DEFAULT_SMART_RECYCLE":                       "smart-recycle.enabled",
		"DEFAULT_MAIL_ON_ERROR_ONLY":                  "email.on-error-only",
		"DEFAULT_LINK_BOOTPARTITIONFILES":             "link-boot-files",
		"DEFAULT_TAR_BOOT_PARTITION_ENABLED":          "boot-tar",
		"DEFAULT_DD_BACKUP_SAVE_USED_PARTITIONS_ONLY": "used-partitions-only",
		"DEFAULT_NOTIFY_START":                        "notify-start",
	}
	ints := map[string]string{
		"DEFAULT_KEEPBACKUPS":       "keep",
		"DEFAULT_KEEPBACKUPS_DD":    "keep-dd",
		"DEFAULT_KEEPBACKUPS_DDZ":   "keep-ddz",
		"DEFAULT_KEEPBACKUPS_TAR":   "keep-tar",
		"DEFAULT_KEEPBACKUPS_TGZ":   "keep-tgz",
		"DEFAULT_KEEPBACKUPS_RSYNC": "keep-rsync",
		"DEFAULT_SMTP_PORT":         "smtp.port",
	}
	switch {
	case simple[key] != "":
		if val == "" {
			return nil
		}
		if key == "DEFAULT_SMTP_SERVER" || key == "DEFAULT_SMTP_HOST" {
			if h, p, ok := strings.Cut(val, ":"); ok {
				n, err := strconv.Atoi(p)
				if err != nil {
					return fmt.Errorf("port in %q: %w", val, err)
				}
				if err := imp.setKey(set, "smtp.port", int64(n)); err != nil {
					return err
				}
				val = h
			}
		}
		return imp.setKey(set, simple[key], val)
	case bools[key] != "":
		b, err := raspiBool(val)
		if err != nil {
			return err
		}
		return imp.setKey(set, bools[key], b)
	case ints[key] != "":
		if val == "" {
			return nil
		}
		n, err := strconv.Atoi(val)
		if err != nil {
			return fmt.Errorf("want a number, not %q", val)
		}
		return imp.setKey(set, ints[key], int64(n))
	}
	switch key {
	case "DEFAULT_EMAIL":
		addrs := strings.FieldsFunc(val, func(r rune) bool { return r == ' ' || r == ',' || r == ';' })
		if len(addrs) == 0 {
			return nil
		}
		imp.Notes = append(imp.Notes, "e-mail: set smtp.host (and smtp.user/smtp.password) — raspiBackup used a local mail program")
		return imp.setKey(set, "email.to", toAny(addrs))
	case "DEFAULT_SMART_RECYCLE_OPTIONS":
		f := strings.Fields(val)
		if len(f) != 4 {
			return fmt.Errorf("want \"daily weekly monthly yearly\", not %q", val)
		}
		for i, k := range []string{"smart-recycle.daily", "smart-recycle.weekly", "smart-recycle.monthly", "smart-recycle.yearly"} {
			n, err := strconv.Atoi(f[i])
			if err != nil {
				return fmt.Errorf("want numbers, not %q", val)
			}
			if err := imp.setKey(set, k, int64(n)); err != nil {
				return err
			}
		}
		return nil
	case "DEFAULT_EXCLUDE_LIST":
		return imp.excludes(val, set)
	case "DEFAULT_STOPSERVICES":
		imp.stopServices = val
		imp.haveStop = true
		return imp.services(set)
	case "DEFAULT_STARTSERVICES":
		imp.startServices = val
		imp.haveStart = true
		return imp.services(set)
	case "DEFAULT_SLACK_NOTIFICATIONS", "DEFAULT_TELEGRAM_NOTIFICATIONS", "DEFAULT_PUSHOVER_NOTIFICATIONS":
		// S = success, F = failure, M/m = the messages file or text.
		svc := strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(key, "DEFAULT_"), "_NOTIFICATIONS"))
		if strings.Contains(val, "F") && !strings.Contains(val, "S") {
			return imp.setKey(set, svc+".on-error-only", true)
		}
		return nil
	}
	if key == "VERSION_CONFIG" {
		return nil
	}
	if !strings.HasPrefix(key, "DEFAULT_") {
		imp.Unknown = append(imp.Unknown, key)
		return nil
	}
	if val == "" || val == "0" {
		return nil // off or empty: nothing is lost by not importing it
	}
	if why, ok := ignoredKeys[key]; ok {
		return errors.New("not imported: " + why)
	}
	if strings.HasPrefix(key, "DEFAULT_PUSHOVER_") {
		return errors.New("not imported: backupctl sends Pushover's default sound and priority 0, 1 for a failure")
	}
	return errors.New("not imported: no backupctl setting (yet)")
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// excludes turns raspiBackup's raw tar/rsync arguments
// ("--exclude=/a --exclude /b") into paths.
func (imp *Import) excludes(val string, set map[string]bool) error {
	if strings.TrimSpace(val) == "" {
		return nil
	}
	cmds, err := splitScript(val)
	if err != nil {
		return err
	}
	var words, paths []string
	for _, c := range cmds {
		words = append(words, c...)
	}
	for i := 0; i < len(words); i++ {
		w := words[i]
		switch {
		case strings.HasPrefix(w, "--exclude="):
			paths = append(paths, strings.TrimPrefix(w, "--exclude="))
		case w == "--exclude" && i+1 < len(words):
			paths = append(paths, words[i+1])
			i++
		default:
			imp.Notes = append(imp.Notes, fmt.Sprintf("DEFAULT_EXCLUDE_LIST: %q is not an --exclude and was dropped", w))
		}
	}
	if len(paths) == 0 {
		return nil
	}
	return imp.setKey(set, "exclude", toAny(paths))
}

// services translates DEFAULT_STOPSERVICES and DEFAULT_STARTSERVICES once
// both are known (the shipped conf has both). When every command is
// `systemctl stop|start UNIT…`, `service NAME stop|start` or
// `docker stop|start NAME…` over the same names, they become services
// entries; otherwise the commands are kept as stop/start commands.
func (imp *Import) services(set map[string]bool) error {
	if !imp.haveStop || !imp.haveStart {
		return nil
	}
	stopText, startText := strings.TrimSpace(imp.stopServices), strings.TrimSpace(imp.startServices)
	if isNoop(stopText) && isNoop(startText) {
		return nil
	}
	stop, err := splitScript(stopText)
	if err != nil {
		return fmt.Errorf("DEFAULT_STOPSERVICES needs a shell; put it in a script and name the script in stop-commands: %w", err)
	}
	start, err := splitScript(startText)
	if err != nil {
		return fmt.Errorf("DEFAULT_STARTSERVICES needs a shell; put it in a script and name the script in start-commands: %w", err)
	}
	stop, start = dropNoops(stop), dropNoops(start)
	stopSpecs, okStop := recognize(stop, "stop")
	startSpecs, okStart := recognize(start, "start")
	if okStop && okStart && sameSet(stopSpecs, startSpecs) {
		imp.Notes = append(imp.Notes, fmt.Sprintf("services: %s are stopped in this order and started in reverse", strings.Join(stopSpecs, ", ")))
		return imp.setKey(set, "services", toAny(stopSpecs))
	}
	join := func(cmds [][]string) []any {
		out := make([]any, len(cmds))
		for i, c := range cmds {
			out[i] = JoinCommand(c)
		}
		return out
	}
	if err := imp.setKey(set, "stop-commands", join(stop)); err != nil {
		return err
	}
	imp.Notes = append(imp.Notes, "services: kept as stop-commands/start-commands; consider services = [\"unit:NAME\", \"docker:NAME\"] for restart in reverse order")
	return imp.setKey(set, "start-commands", join(start))
}

func isNoop(s string) bool { return s == "" || s == ":" }

func dropNoops(cmds [][]string) [][]string {
	return slices.DeleteFunc(cmds, func(c []string) bool { return len(c) == 1 && (c[0] == ":" || c[0] == "true") })
}

// recognize maps each command to service specs; ok is false when any
// command is not one of the known forms.
func recognize(cmds [][]string, verb string) (specs []string, ok bool) {
	for _, c := range cmds {
		if len(c) > 0 && c[0] == "sudo" {
			c = c[1:] // raspiBackup runs as root; sudo adds nothing
		}
		switch {
		case len(c) >= 3 && c[0] == "systemctl" && c[1] == verb && noFlags(c[2:]):
			for _, u := range c[2:] {
				if !strings.Contains(u, ".") {
					u += ".service"
				}
				specs = append(specs, "unit:"+u)
			}
		case len(c) == 3 && c[0] == "service" && c[2] == verb && noFlags(c[1:2]):
			specs = append(specs, "unit:"+c[1]+".service")
		case len(c) >= 3 && c[0] == "docker" && c[1] == verb && noFlags(c[2:]):
			for _, n := range c[2:] {
				specs = append(specs, "docker:"+n)
			}
		default:
			return nil, false
		}
	}
	return specs, true
}

func noFlags(args []string) bool {
	for _, a := range args {
		if strings.HasPrefix(a, "-") || a == "" {
			return false
		}
	}
	return true
}

func sameSet(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}
