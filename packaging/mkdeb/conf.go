package main

import (
	"bytes"
	"regexp"
	"strings"

	"github.com/pibackup/pibackup/internal/config"
)

// confHeader opens the packaged /etc/backupctl/backupctl.conf.
const confHeader = `# backupctl configuration (TOML), installed by the backupctl package.
# Your changes are kept on upgrades; dpkg asks when both sides changed.
#
# Every setting is listed below, commented out, with its built-in default
# and what it does. To change one, remove the "#" in front of the key and
# edit the value. Every setting is also a command-line flag of the same
# name (--keep 5); ` + "`backupctl config show`" + ` prints what a run would use and
# where each value came from.
#
# Files read, later ones win: /etc/backupctl/backupctl.conf (this file),
# /usr/local/etc/backupctl.conf, ~/.config/backupctl/config,
# ./backupctl.conf, -f FILE; then the command-line flags.
#
# This file is mode 0600 because it may hold secrets (smtp.password,
# webhook.url, webhook.token): backupctl refuses to read a secret from a
# file that others can read.
#
# The packaged timer (systemctl enable --now backupctl.timer) runs
# ` + "`backupctl backup`" + ` without a folder, so set backup-path first. Typical:
#   USB disk:          backup-path = "/mnt/usb-backup"      (fstab mount)
#   NAS over NFS/SMB:  backup-path = "/mnt/nas/pi-backups"  (fstab mount)
#   SFTP server:       backup-path = "/mnt/sftp-backup"     (sshfs mount)
# /usr/share/doc/backupctl/USAGE.md walks through each of them.
# Coming from raspiBackup: backupctl config import -o FILE translates
# /usr/local/etc/raspiBackup.conf.
`

// settingLine matches a "key = value" line of config.WriteTOML.
var settingLine = regexp.MustCompile(`^[a-z][a-z0-9.-]* = `)

// defaultConfig renders the packaged config file from the option table
// of internal/config, so it lists every option with its current help and
// default and cannot fall behind the code.
func defaultConfig() ([]byte, error) {
	var body bytes.Buffer
	if err := config.WriteTOML(&body, config.Defaults(), config.Keys()); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString(confHeader)
	group := "\x00"
	pending := []string{} // the help lines before a setting
	for _, line := range strings.Split(strings.TrimSuffix(body.String(), "\n"), "\n") {
		if !settingLine.MatchString(line) {
			pending = append(pending, line)
			continue
		}
		key, _, _ := strings.Cut(line, " = ")
		g, _, dotted := strings.Cut(key, ".")
		if !dotted {
			g = ""
		}
		if g != group {
			group = g
			b.WriteString("\n")
			if g != "" {
				b.WriteString("# ---- " + g + " ----\n\n")
			}
		} else {
			b.WriteString("\n")
		}
		for _, p := range pending {
			b.WriteString(p + "\n")
		}
		pending = pending[:0]
		b.WriteString("#" + line + "\n")
	}
	return b.Bytes(), nil
}
