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
	// Keys tells, for every raspiBackup key of the file in file order,
	// what became of it: no key is left out.
	Keys []KeyResult
	// Skipped are the keys that were not imported, each "KEY: why".
	Skipped []string
	// Unknown are keys that are not raspiBackup settings at all.
	Unknown []string

	vals  map[string]string // the last value of each key
	lines map[string]int
	set   map[string]bool
}

// KeyResult is what the import made of one raspiBackup key.
type KeyResult struct {
	Key   string
	Value string
	// To are the backupctl keys it set.
	To []string
	// Dropped: nothing was imported and Why says why. When To is empty
	// and Dropped is false, the value is backupctl's default (or has no
	// effect here, as a Telegram option without a token) and Why says so.
	Dropped bool
	Why     string
}

// ErrImport is wrapped when the file is not a raspiBackup config at all.
var ErrImport = errors.New("cannot import raspiBackup config")

// ImportRaspiBackup translates the settings of a raspiBackup.conf. The
// file is parsed as the bash it is (mvdan.cc/sh), never sourced or run;
// values that need a shell to evaluate ($VAR, $(…)) are reported. Every
// key ends up in Keys: imported, at backupctl's default, or dropped with
// the reason.
func ImportRaspiBackup(text string) (*Import, error) {
	f, err := syntax.NewParser(syntax.Variant(syntax.LangBash)).Parse(strings.NewReader(text), "raspiBackup.conf")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrImport, err)
	}
	imp := &Import{Config: Defaults(), vals: map[string]string{}, lines: map[string]int{}, set: map[string]bool{}}
	var order []string
	bad := map[string]string{} // key -> why its value cannot be read
	for _, st := range f.Stmts {
		call, ok := st.Cmd.(*syntax.CallExpr)
		if !ok || len(call.Args) > 0 || len(call.Assigns) == 0 {
			imp.Skipped = append(imp.Skipped, fmt.Sprintf("line %d: not a KEY=value line", st.Pos().Line()))
			continue
		}
		for _, a := range call.Assigns {
			if a.Name == nil {
				continue
			}
			key := a.Name.Value
			if _, seen := imp.lines[key]; !seen {
				order = append(order, key)
			}
			imp.lines[key] = int(a.Pos().Line())
			delete(bad, key) // a later line wins, as when bash sources the file
			switch {
			case a.Array != nil:
				bad[key] = "an array"
			case a.Index != nil || a.Append || a.Naked:
				bad[key] = "not a plain assignment"
			case a.Value == nil:
				imp.vals[key] = ""
			default:
				v, err := literalWords([]*syntax.Word{a.Value})
				if err != nil {
					bad[key] = fmt.Sprintf("value needs a shell to evaluate (%v)", err)
					continue
				}
				imp.vals[key] = v[0]
			}
		}
	}
	for _, key := range order {
		if !strings.HasPrefix(key, "DEFAULT_") && key != "VERSION_CONFIG" {
			imp.Unknown = append(imp.Unknown, key)
			continue
		}
		r := KeyResult{Key: key, Value: imp.vals[key]}
		if why, ok := bad[key]; ok {
			r.Dropped, r.Why = true, why
			if reason, ok := dropped[key]; ok {
				r.Why += "; " + reason
			}
		} else {
			r.To, r.Why, r.Dropped = imp.translate(key, imp.vals[key])
		}
		if r.Dropped {
			imp.Skipped = append(imp.Skipped, key+": "+r.Why)
		}
		imp.Keys = append(imp.Keys, r)
	}
	if imp.Config.SMTPPort == 465 && !imp.set["smtp.security"] {
		// 465 is implicit TLS (RFC 8314); STARTTLS there would hang.
		_ = imp.setKey("smtp.security", "tls")
	}
	d := Defaults()
	for _, o := range table {
		if imp.set[o.key] && format(imp.Config, o, true) != format(d, o, true) {
			imp.Set = append(imp.Set, o.key)
		}
	}
	return imp, nil
}

// Reasons for the raspiBackup keys without a backupctl setting. A key
// whose value is empty or 0 is still listed: it is not imported either.
var dropped = map[string]string{
	"VERSION_CONFIG":                           "the version of raspiBackup's config format",
	"DEFAULT_MAIL_PROGRAM":                     "backupctl sends mail over SMTP itself; set smtp.host, smtp.user and smtp.password",
	"DEFAULT_EMAIL_PARMS":                      "options of a mail program; backupctl uses none",
	"DEFAULT_EMAIL_COLORING":                   "backupctl's mails are plain text",
	"DEFAULT_COLORING":                         "backupctl's output and mails are plain text",
	"DEFAULT_COLOR_CODES":                      "backupctl's output and mails are plain text",
	"DEFAULT_MSG_LEVEL":                        "the run log in the set is always detailed; -v shows the details on the terminal",
	"DEFAULT_VERBOSE":                          "-v is a flag of each run, not a setting",
	"DEFAULT_LOG_LEVEL":                        "the run log in the set is always detailed",
	"DEFAULT_LOG_OUTPUT":                       "the run log is kept in the set (raspiBackup's 2), a failed run's in the host folder",
	"DEFAULT_TIMESTAMPS":                       "no backupctl setting: the run log's lines carry the time",
	"DEFAULT_SYSTEMSTATUS":                     "backupctl does not log the system status",
	"DEFAULT_SEND_STATS":                       "backupctl sends no usage statistics",
	"DEFAULT_DEPLOYMENT_HOSTS":                 "backupctl does not deploy itself; install the package on each Pi",
	"DEFAULT_SKIP_DEPRECATED":                  "about raspiBackup's deprecation messages",
	"DEFAULT_OLD_REMINDER_REPEAT":              "about raspiBackup's own old-style backup names",
	"DEFAULT_SMART_RECYCLE_DRYRUN":             "a backup never only previews its retention; use `backupctl retention --dry-run`",
	"DEFAULT_TELEGRAM_THREADID":                "backupctl posts to the chat, not to a topic thread",
	"DEFAULT_PUSHOVER_DEVICE":                  "backupctl notifies all of the user's devices",
	"DEFAULT_PUSHOVER_ADDITIONAL_OPTIONS":      "curl options; backupctl sends the notice itself",
	"DEFAULT_PUSHOVER_SOUND_SUCCESS":           "backupctl sends Pushover's default sound",
	"DEFAULT_PUSHOVER_SOUND_FAILURE":           "backupctl sends Pushover's default sound",
	"DEFAULT_PUSHOVER_PRIORITY_SUCCESS":        "backupctl sends priority 0 for a success",
	"DEFAULT_PUSHOVER_PRIORITY_FAILURE":        "backupctl sends priority 1 for a failure",
	"DEFAULT_CLONE_DEVICE":                     "a clone is a command of its own: `backupctl clone --to DEV`",
	"DEFAULT_CLONE_PARTUUID":                   "backupctl knows its clone targets by the clone marker it writes on them",
	"DEFAULT_SKIPLOCALCHECK":                   "backupctl has no such check to skip",
	"DEFAULT_DD_BLOCKSIZE":                     "backupctl reads images itself (only the blocks in use), not with dd",
	"DEFAULT_DD_PARMS":                         "backupctl reads images itself (only the blocks in use), not with dd",
	"DEFAULT_DD_WARNING":                       "backupctl reads only the blocks in use, so a dd set has no size warning",
	"DEFAULT_RESIZE_ROOTFS":                    "a backupctl restore always fits the last partition to the target",
	"DEFAULT_RSYNC_BACKUP_OPTION_EXCLUDE_ACLS": "backupctl always keeps ACLs, which an exact restore needs",
	"DEFAULT_ACLS":                             "backupctl always keeps ACLs, which an exact restore needs",
	"DEFAULT_CHECK_FOR_BAD_BLOCKS":             "a backupctl restore does not scan the target for bad blocks",
	"DEFAULT_REBOOT_SYSTEM":                    "backupctl never reboots the Pi after a backup",
	"DEFAULT_IGNORE_ADDITIONAL_PARTITIONS":     "normal mode saves the boot and root partitions and notes any others; partitions = \"*\" (-P) saves all",
	"DEFAULT_DYNAMIC_MOUNT":                    "mount the backup folder with an fstab entry (x-systemd.automount) instead",
	"DEFAULT_PARTITIONS_TO_RESTORE":            "a restore chooses with `backupctl restore --partitions`",
	"DEFAULT_RESTORE_DEVICE":                   "a restore names its target each time: `backupctl restore --to DEV`",
	"DEFAULT_YES_NO_RESTORE_DEVICE":            "a restore asks for every target unless that run has --yes",
	"DEFAULT_UPDATE_UUIDS":                     "a restore gives new ids unless that run has --keep-ids",
	"DEFAULT_BOOT_DEVICE":                      "backupctl finds the boot disk itself; --source-disk backs up another",
	"DEFAULT_RESTORE_REMINDER_REPEAT":          "backupctl reminds in every backup's result until a restore test is recorded",
	"DEFAULT_TAR_COMPRESSION_TOOL_OPTIONS":     "backupctl sets the compressor's options itself",
	"DEFAULT_TAR_BACKUP_OPTIONS":               "backupctl chooses tar's options itself: they decide what a restore can rely on",
	"DEFAULT_TAR_BACKUP_ADDITIONAL_OPTIONS":    "backupctl chooses tar's options itself: they decide what a restore can rely on",
	"DEFAULT_TAR_RESTORE_ADDITIONAL_OPTIONS":   "backupctl chooses tar's options itself: they decide what a restore can rely on",
	"DEFAULT_RSYNC_BACKUP_OPTIONS":             "backupctl chooses rsync's options itself: they decide what a restore can rely on",
	"DEFAULT_RSYNC_BACKUP_ADDITIONAL_OPTIONS":  "backupctl chooses rsync's options itself: they decide what a restore can rely on",
	"DEFAULT_TAR_IGNORE_ERRORS":                "a backup whose tar fails is not a backup: backupctl fails the run",
	"DEFAULT_RSYNC_IGNORE_ERRORS":              "a backup whose rsync fails is not a backup: backupctl fails the run",
	"DEFAULT_FINAL_COMMAND":                    "use a post-backup hook (hooks.post-backup)",
	"DEFAULT_FORCE_EMAIL":                      "no backupctl setting: every run with email.to set sends its mail",
}

// same marks a value that is backupctl's own default or has no effect:
// nothing is written for it.
func same(why string) ([]string, string, bool) { return nil, why, false }

// drop marks a key that is not imported.
func drop(why string) ([]string, string, bool) { return nil, why, true }

func (imp *Import) setKey(key string, v any) error {
	o, ok := lookup(key)
	if !ok {
		return fmt.Errorf("BUG: importer maps to unknown key %s", key)
	}
	if err := setTOML(imp.Config, o, v); err != nil {
		return err
	}
	imp.set[key] = true
	return nil
}

// to sets key to v and reports the outcome for translate.
func (imp *Import) to(key string, v any) ([]string, string, bool) {
	if err := imp.setKey(key, v); err != nil {
		return drop(err.Error())
	}
	o, _ := lookup(key)
	if format(imp.Config, o, true) == format(Defaults(), o, true) {
		return same("same as backupctl's default (" + key + " = " + format(Defaults(), o, true) + ")")
	}
	return []string{key}, "", false
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

// on reports whether a 0/1 key of the file is 1.
func (imp *Import) on(key string) bool { b, _ := raspiBool(imp.vals[key]); return b }

var (
	stringKeys = map[string]string{
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
	boolKeys = map[string]string{
		"DEFAULT_MAIL_ON_ERROR_ONLY":                  "email.on-error-only",
		"DEFAULT_LINK_BOOTPARTITIONFILES":             "link-boot-files",
		"DEFAULT_TAR_BOOT_PARTITION_ENABLED":          "boot-tar",
		"DEFAULT_DD_BACKUP_SAVE_USED_PARTITIONS_ONLY": "used-partitions-only",
		"DEFAULT_NOTIFY_START":                        "notify-start",
	}
	intKeys = map[string]string{
		"DEFAULT_KEEPBACKUPS":               "keep",
		"DEFAULT_KEEPBACKUPS_DD":            "keep-dd",
		"DEFAULT_KEEPBACKUPS_DDZ":           "keep-ddz",
		"DEFAULT_KEEPBACKUPS_TAR":           "keep-tar",
		"DEFAULT_KEEPBACKUPS_TGZ":           "keep-tgz",
		"DEFAULT_KEEPBACKUPS_RSYNC":         "keep-rsync",
		"DEFAULT_SMTP_PORT":                 "smtp.port",
		"DEFAULT_RESTORE_REMINDER_INTERVAL": "restore-test.remind-months",
	}
)

// smartPreview reports whether raspiBackup only previewed smart recycle:
// then it deleted nothing at all, and neither may the import.
func (imp *Import) smartPreview() bool {
	dry, ok := imp.vals["DEFAULT_SMART_RECYCLE_DRYRUN"]
	return imp.on("DEFAULT_SMART_RECYCLE") && (!ok || dry != "0") // raspiBackup's default is 1
}

// translate imports one key; it returns the backupctl keys set, or why
// none was, and whether the key was dropped.
func (imp *Import) translate(key, val string) (to []string, why string, isDropped bool) {
	switch {
	case stringKeys[key] != "":
		if val == "" {
			return same("empty")
		}
		if key == "DEFAULT_SMTP_SERVER" || key == "DEFAULT_SMTP_HOST" {
			if h, p, ok := strings.Cut(val, ":"); ok {
				n, err := strconv.Atoi(p)
				if err != nil {
					return drop(fmt.Sprintf("port in %q: %v", val, err))
				}
				if err := imp.setKey("smtp.port", int64(n)); err != nil {
					return drop(err.Error())
				}
				to, why, d := imp.to(stringKeys[key], h)
				return append(to, "smtp.port"), why, d
			}
		}
		return imp.to(stringKeys[key], val)
	case boolKeys[key] != "":
		b, err := raspiBool(val)
		if err != nil {
			return drop(err.Error())
		}
		return imp.to(boolKeys[key], b)
	case intKeys[key] != "":
		if val == "" {
			return same("empty")
		}
		n, err := strconv.Atoi(val)
		if err != nil {
			return drop(fmt.Sprintf("want a number, not %q", val))
		}
		if strings.HasPrefix(key, "DEFAULT_KEEPBACKUPS") && imp.smartPreview() {
			if key == "DEFAULT_KEEPBACKUPS" {
				return imp.to("keep", int64(-1))
			}
			return drop("smart recycle was on in preview mode, so raspiBackup kept every set: keep = -1 for all types")
		}
		return imp.to(intKeys[key], int64(n))
	}
	switch key {
	case "DEFAULT_ZIP_BACKUP":
		b, err := raspiBool(val)
		if err != nil {
			return drop(err.Error())
		}
		return imp.to("compress", b) // true is gzip: dd becomes ddz, tar tgz
	case "DEFAULT_TAR_COMPRESSION_TOOL":
		return imp.tarTool(val)
	case "DEFAULT_LANGUAGE":
		switch l := strings.ToLower(val); l {
		case "":
			return same("empty: LC_ALL, LC_MESSAGES or LANG decide, as in raspiBackup")
		case "en", "de":
			return imp.to("lang", l)
		}
		return drop(fmt.Sprintf("backupctl speaks en and de; without lang it follows LANG, else English (raspiBackup's fallback for %s too)", val))
	case "DEFAULT_PARTITIONBASED_BACKUP":
		if !imp.on(key) {
			return same("off: normal mode, as backupctl's default")
		}
		parts, ok := imp.vals["DEFAULT_PARTITIONS_TO_BACKUP"]
		if !ok || strings.TrimSpace(parts) == "" {
			parts = "1 2" // raspiBackup's default
		}
		return imp.to("partitions", parts)
	case "DEFAULT_PARTITIONS_TO_BACKUP":
		if !imp.on("DEFAULT_PARTITIONBASED_BACKUP") {
			return same("used only in partition-oriented mode, which DEFAULT_PARTITIONBASED_BACKUP leaves off")
		}
		return []string{"partitions"}, "", false
	case "DEFAULT_EMAIL":
		addrs := strings.FieldsFunc(val, func(r rune) bool { return r == ' ' || r == ',' || r == ';' })
		if len(addrs) == 0 {
			return same("empty: no mail")
		}
		imp.Notes = append(imp.Notes, "e-mail: set smtp.host (and smtp.user/smtp.password) — raspiBackup used a local mail program")
		return imp.to("email.to", toAny(addrs))
	case "DEFAULT_SMART_RECYCLE":
		b, err := raspiBool(val)
		if err != nil {
			return drop(err.Error())
		}
		if b && imp.smartPreview() {
			imp.Notes = append(imp.Notes, "smart recycle: raspiBackup only previewed it (DEFAULT_SMART_RECYCLE_DRYRUN) and deleted nothing, so keep = -1 keeps every set; "+
				"see what it would delete with `backupctl retention --dry-run --smart-recycle BACKUPDIR`, then set smart-recycle.enabled = true")
			return imp.to("keep", int64(-1))
		}
		return imp.to("smart-recycle.enabled", b)
	case "DEFAULT_SMART_RECYCLE_DRYRUN":
		switch {
		case imp.smartPreview():
			return []string{"keep"}, "", false
		case !imp.on("DEFAULT_SMART_RECYCLE"):
			return same("smart recycle is off")
		}
		return same("0: smart recycle deletes, as backupctl's does")
	case "DEFAULT_SMART_RECYCLE_OPTIONS":
		f := strings.Fields(val)
		if len(f) != 4 {
			return drop(fmt.Sprintf("want \"daily weekly monthly yearly\", not %q", val))
		}
		var out []string
		for i, k := range []string{"smart-recycle.daily", "smart-recycle.weekly", "smart-recycle.monthly", "smart-recycle.yearly"} {
			n, err := strconv.Atoi(f[i])
			if err != nil {
				return drop(fmt.Sprintf("want numbers, not %q", val))
			}
			t, _, _ := imp.to(k, int64(n))
			out = append(out, t...)
		}
		if len(out) == 0 {
			return same("same as backupctl's defaults (7 4 12 1)")
		}
		return out, "", false
	case "DEFAULT_EXCLUDE_LIST":
		return imp.excludes(val)
	case "DEFAULT_STOPSERVICES", "DEFAULT_STARTSERVICES":
		return imp.services()
	case "DEFAULT_BEFORE_STOPSERVICES":
		return imp.commandsTo(key, val, "hooks.pre-backup")
	case "DEFAULT_AFTER_STARTSERVICES":
		imp.services() // they decide where these commands go
		if len(imp.Config.StartCommands) > 0 {
			// After the start commands, exactly where raspiBackup runs them.
			return imp.commandsTo(key, val, "start-commands")
		}
		if strings.TrimSpace(val) != "" {
			imp.Notes = append(imp.Notes, "DEFAULT_AFTER_STARTSERVICES became hooks.post-backup, which runs after the backup but before the services start again")
		}
		return imp.commandsTo(key, val, "hooks.post-backup")
	case "DEFAULT_EXTENSIONS":
		return imp.extensions(key, val, map[string]string{"pre": "hooks.ready", "ready": "hooks.ready", "post": "hooks.post-backup"})
	case "DEFAULT_RESTORE_EXTENSIONS":
		return imp.extensions(key, val, map[string]string{"pre": "hooks.pre-restore", "post": "hooks.post-restore"})
	case "DEFAULT_SLACK_NOTIFICATIONS", "DEFAULT_TELEGRAM_NOTIFICATIONS", "DEFAULT_PUSHOVER_NOTIFICATIONS":
		return imp.notifications(key, val)
	case "DEFAULT_RESIZE_ROOTFS", "DEFAULT_IGNORE_ADDITIONAL_PARTITIONS":
		if val == "1" {
			return same(dropped[key])
		}
	case "DEFAULT_PUSHOVER_PRIORITY_SUCCESS", "DEFAULT_PUSHOVER_PRIORITY_FAILURE":
		if want := map[string]string{"DEFAULT_PUSHOVER_PRIORITY_SUCCESS": "0", "DEFAULT_PUSHOVER_PRIORITY_FAILURE": "1"}[key]; val == want || val == "" {
			return same(dropped[key])
		}
	case "DEFAULT_MAIL_PROGRAM", "DEFAULT_EMAIL_PARMS", "DEFAULT_EMAIL_COLORING":
		if strings.TrimSpace(imp.vals["DEFAULT_EMAIL"]) == "" {
			return same("no e-mail address is set (DEFAULT_EMAIL)")
		}
	}
	if why, ok := dropped[key]; ok {
		return drop(why)
	}
	if strings.HasPrefix(key, "DEFAULT_PUSHOVER_") {
		return drop("backupctl sends Pushover's default sound and priority 0, 1 for a failure")
	}
	return drop("no backupctl setting (a key this importer does not know)")
}

// tarTool translates DEFAULT_TAR_COMPRESSION_TOOL. In raspiBackup it
// compresses tar backups, and DEFAULT_ZIP_BACKUP=1 (gzip) wins over it.
func (imp *Import) tarTool(val string) ([]string, string, bool) {
	switch {
	case val == "":
		return same("empty: tar sets as DEFAULT_ZIP_BACKUP says")
	case imp.on("DEFAULT_ZIP_BACKUP"):
		return drop("DEFAULT_ZIP_BACKUP=1 wins over it, in raspiBackup too: compress = gzip")
	}
	t := imp.vals["DEFAULT_BACKUPTYPE"]
	if t == "" {
		t = Defaults().Type
	}
	if t != "tar" {
		return drop(fmt.Sprintf("it compresses tar backups, and the type is %s", t))
	}
	switch val {
	case "gzip", "pigz":
		imp.Notes = append(imp.Notes, "DEFAULT_TAR_COMPRESSION_TOOL="+val+": compress = \"gzip\" makes tar sets type tgz (.tgz), as raspiBackup's -z does")
		return imp.to("compress", "gzip")
	case "zstd":
		return imp.to("compress", "zstd")
	}
	return drop(fmt.Sprintf("backupctl writes gzip or zstd, not %s; compress = \"zstd\" is the nearest", val))
}

// notifications translates a service's S/F/M letters: F alone is
// on-error-only. The service must be set up for them to matter.
func (imp *Import) notifications(key, val string) ([]string, string, bool) {
	svc := strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(key, "DEFAULT_"), "_NOTIFICATIONS"))
	setup := map[string]string{"telegram": "DEFAULT_TELEGRAM_TOKEN", "pushover": "DEFAULT_PUSHOVER_TOKEN", "slack": "DEFAULT_SLACK_WEBHOOK_URL"}[svc]
	if strings.TrimSpace(imp.vals[setup]) == "" {
		return same(fmt.Sprintf("%s is not set up (%s is empty)", svc, setup))
	}
	if strings.ContainsAny(val, "Mm") {
		imp.Notes = append(imp.Notes, key+": M/m (the run's messages) are not sent; the notice names the result and what failed")
	}
	return imp.to(svc+".on-error-only", strings.Contains(val, "F") && !strings.Contains(val, "S"))
}

// commandsTo appends the commands of a raspiBackup "a && b" string to the
// list option key.
func (imp *Import) commandsTo(rbKey, val, key string) ([]string, string, bool) {
	if isNoop(strings.TrimSpace(val)) {
		return same("empty: nothing to run")
	}
	cmds, err := splitScript(val)
	if err != nil {
		return drop(fmt.Sprintf("needs a shell; put it in a script and name the script in %s: %v", key, err))
	}
	cmds = dropNoops(cmds)
	o, _ := lookup(key)
	list := slices.Clone(*o.field(imp.Config).(*[]string))
	for _, c := range cmds {
		list = append(list, JoinCommand(c))
	}
	return imp.to(key, toAny(list))
}

// extensionShell runs the extensions of one event as raspiBackup does:
// each script raspiBackup_<name>_<event>.sh found in PATH (a missing one
// is skipped) is sourced into one bash, with the return code as $1.
// raspiBackup sources them into its own shell, so the helpers its shipped
// extensions call get stand-ins. Arguments: the event, then the names.
const extensionShell = `writeToConsole() { local f="${MSG_EN[$2]:-$2}"; shift 2; printf "$f\n" "$@"; }; logItem() { :; }; ` +
	`declare -A MSG_EN MSG_DE; MSG_LEVEL_MINIMAL=0; MSG_LEVEL_DETAILED=1; ev=$1; shift; rc=0; ` +
	`for e; do f=$(command -v "raspiBackup_${e}_$ev.sh") || continue; . "$f" "${BACKUP_RC:-0}" || rc=$?; done; exit $rc`

// extensions turns raspiBackup extension names into one hook per event
// the extensions may have scripts for.
func (imp *Import) extensions(rbKey, val string, events map[string]string) ([]string, string, bool) {
	names := strings.Fields(val)
	if len(names) == 0 {
		return same("empty: no extensions")
	}
	var out []string
	for _, ev := range []string{"pre", "ready", "post"} {
		key, ok := events[ev]
		if !ok {
			continue
		}
		o, _ := lookup(key)
		list := slices.Clone(*o.field(imp.Config).(*[]string))
		list = append(list, JoinCommand(append([]string{"bash", "-c", extensionShell, "raspiBackup-extensions", ev}, names...)))
		if err := imp.setKey(key, toAny(list)); err != nil {
			return drop(err.Error())
		}
		if !slices.Contains(out, key) {
			out = append(out, key)
		}
	}
	imp.Notes = append(imp.Notes, rbKey+": the extensions run as hooks, each event's in one bash (missing scripts are skipped); "+
		"one that keeps variables from its pre to its post script, or calls other raspiBackup functions, needs porting")
	return out, "", false
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
func (imp *Import) excludes(val string) ([]string, string, bool) {
	if strings.TrimSpace(val) == "" {
		return same("empty")
	}
	cmds, err := splitScript(val)
	if err != nil {
		return drop(err.Error())
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
		return drop("holds no --exclude")
	}
	return imp.to("exclude", toAny(paths))
}

// services translates DEFAULT_STOPSERVICES and DEFAULT_STARTSERVICES
// together, at the first of them (the other reports the same keys, and
// so does a second call). When
// every command is `systemctl stop|start UNIT…`, `service NAME
// stop|start` or `docker stop|start NAME…` over the same names, they
// become services entries; otherwise the commands are kept as stop/start
// commands. With DEFAULT_AFTER_STARTSERVICES they stay commands, so it
// can follow the start commands.
func (imp *Import) services() ([]string, string, bool) {
	stopText, startText := strings.TrimSpace(imp.vals["DEFAULT_STOPSERVICES"]), strings.TrimSpace(imp.vals["DEFAULT_STARTSERVICES"])
	if isNoop(stopText) && isNoop(startText) {
		return same("empty or \":\": no services are stopped")
	}
	if imp.set["services"] {
		return []string{"services"}, "", false
	}
	if imp.set["stop-commands"] {
		return []string{"stop-commands", "start-commands"}, "", false
	}
	stop, err := splitScript(stopText)
	if err != nil {
		return drop(fmt.Sprintf("DEFAULT_STOPSERVICES needs a shell; put it in a script and name the script in stop-commands: %v", err))
	}
	start, err := splitScript(startText)
	if err != nil {
		return drop(fmt.Sprintf("DEFAULT_STARTSERVICES needs a shell; put it in a script and name the script in start-commands: %v", err))
	}
	stop, start = dropNoops(stop), dropNoops(start)
	stopSpecs, okStop := recognize(stop, "stop")
	startSpecs, okStart := recognize(start, "start")
	if okStop && okStart && sameSet(stopSpecs, startSpecs) && isNoop(strings.TrimSpace(imp.vals["DEFAULT_AFTER_STARTSERVICES"])) {
		imp.Notes = append(imp.Notes, fmt.Sprintf("services: %s are stopped in this order and started in reverse", strings.Join(stopSpecs, ", ")))
		return imp.to("services", toAny(stopSpecs))
	}
	if len(stop) == 0 || len(start) == 0 {
		return drop("raspiBackup needs both DEFAULT_STOPSERVICES and DEFAULT_STARTSERVICES, and so does backupctl")
	}
	join := func(cmds [][]string) []any {
		out := make([]any, len(cmds))
		for i, c := range cmds {
			out[i] = JoinCommand(c)
		}
		return out
	}
	if err := imp.setKey("stop-commands", join(stop)); err != nil {
		return drop(err.Error())
	}
	if err := imp.setKey("start-commands", join(start)); err != nil {
		return drop(err.Error())
	}
	imp.Notes = append(imp.Notes, "services: kept as stop-commands/start-commands; consider services = [\"unit:NAME\", \"docker:NAME\"] for restart in reverse order")
	return []string{"stop-commands", "start-commands"}, "", false
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
