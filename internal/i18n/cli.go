package i18n

import "strings"

// backupctl's own words: the one-line summaries of its commands, the help
// of every flag and the lines it prints when a command fails. The English
// texts are the ones in the command tree and the option table; a test in
// backupctl checks that they agree, so a changed English text shows up as
// a German one that is out of date. IDs are built from the command path
// and the flag name or config key (CLICommand, CLIFlag, CLIOption).
const (
	CLIErrUsage     ID = "cli.err.usage"
	CLIErrPreflight ID = "cli.err.preflight"
	CLIErrVerify    ID = "cli.err.verify"
	CLIErrLocked    ID = "cli.err.locked"
	CLIErrCancelled ID = "cli.err.cancelled"
	CLIErrFailed    ID = "cli.err.failed"
	CLIFlagHelp     ID = "cli.flag.help"
	CLIFlagVersion  ID = "cli.flag.version"
)

// CLICommand is the ID of the summary of the command at path, the
// command path below backupctl ("" for backupctl itself, "config show").
func CLICommand(path string) ID { return ID("cli.cmd." + dotted(path)) }

// CLIFlag is the ID of the help of flag of the command at path; path ""
// is a flag whose help is the same on every command.
func CLIFlag(path, flag string) ID {
	if path == "" {
		return ID("cli.flag." + flag)
	}
	return ID("cli.flag." + dotted(path) + "." + flag)
}

// CLIOption is the ID of the flag help of the setting key.
func CLIOption(key string) ID { return ID("cli.opt." + key) }

func dotted(path string) string {
	if path == "" {
		return "backupctl"
	}
	return strings.ReplaceAll(path, " ", ".")
}

// CLIIDs lists the IDs of backupctl's own words, sorted.
func CLIIDs() []ID { return idsOf(cliCatalogue) }

// The exit reasons: English prints the error as it is (its words already
// say what happened); German names the reason before the English details.
var cliCatalogue = map[ID]map[Lang]string{
	CLIErrUsage:     {English: "%s", German: "Aufruf falsch (backupctl --help zeigt die Befehle und Optionen): %s"},
	CLIErrPreflight: {English: "%s", German: "Prüfung vor dem Schreiben fehlgeschlagen, nichts wurde geschrieben: %s"},
	CLIErrVerify:    {English: "%s", German: "Prüfung der Sicherung fehlgeschlagen: %s"},
	CLIErrLocked:    {English: "%s", German: "ein anderer Lauf hält die Sperre: %s"},
	CLIErrCancelled: {English: "%s", German: "abgebrochen, Teilergebnisse wurden entfernt: %s"},
	CLIErrFailed:    {English: "%s", German: "fehlgeschlagen: %s"},

	// Flags that cobra and the config loader add to every command.
	CLIFlagHelp:                    {English: "help for %s", German: "Hilfe zu %s"},
	CLIFlagVersion:                 {English: "version for %s", German: "Version von %s"},
	CLIFlag("", "config"):          {English: "read this config file last (after the system, user and ./backupctl.conf files)", German: "diese Konfigurationsdatei zuletzt lesen (nach den Dateien des Systems, des Benutzers und ./backupctl.conf)"},
	CLIFlag("", "verbose"):         {English: "log progress details to stderr", German: "Einzelheiten zum Fortschritt auf stderr protokollieren"},
	CLIFlag("", "no-descriptions"): {English: "disable completion descriptions", German: "Vervollständigungen ohne Beschreibungen"},

	// The commands.
	CLICommand(""):                      {English: "Back up, verify, list, restore and clone Raspberry Pi systems (raspiBackup-compatible)", German: "Raspberry-Pi-Systeme sichern, prüfen, auflisten, wiederherstellen und klonen (raspiBackup-kompatibel)"},
	CLICommand("backup"):                {English: "Back up the running system or a disk into a raspiBackup-compatible set", German: "Das laufende System oder eine Disk in einen raspiBackup-kompatiblen Satz sichern"},
	CLICommand("recover-services"):      {English: "Start the services a killed backup left stopped", German: "Die Dienste starten, die eine abgebrochene Sicherung gestoppt zurückließ"},
	CLICommand("clone"):                 {English: "Copy the running system (or a disk) onto another disk; again, only the changes", German: "Das laufende System (oder eine Disk) auf eine andere Disk kopieren; beim nächsten Mal nur die Änderungen"},
	CLICommand("config"):                {English: "Show the merged configuration, or import a raspiBackup config", German: "Die zusammengeführte Konfiguration zeigen oder eine raspiBackup-Konfiguration übernehmen"},
	CLICommand("config show"):           {English: "Print the merged configuration with the origin of each value", German: "Die zusammengeführte Konfiguration ausgeben, mit der Herkunft jedes Werts"},
	CLICommand("config import"):         {English: "Translate a raspiBackup.conf into a backupctl config", German: "Eine raspiBackup.conf in eine backupctl-Konfiguration übersetzen"},
	CLICommand("diff"):                  {English: "Show which files were added, removed or changed between two sets", German: "Zeigen, welche Dateien zwischen zwei Sätzen hinzukamen, wegfielen oder sich änderten"},
	CLICommand("extract"):               {English: "Copy files or folders out of a backup set, with all their metadata", German: "Dateien oder Ordner mit allen Metadaten aus einem Sicherungssatz kopieren"},
	CLICommand("gendocs"):               {English: "Write man pages and bash/zsh/fish completions (for packaging)", German: "Man-Pages und Vervollständigungen für bash/zsh/fish schreiben (für Pakete)"},
	CLICommand("list"):                  {English: "List the backup sets in a backup folder", German: "Die Sicherungssätze eines Sicherungsordners auflisten"},
	CLICommand("mount"):                 {English: "Show a backup set (or every set of a host) as a read-only folder", German: "Einen Sicherungssatz (oder alle Sätze eines Hosts) als schreibgeschützten Ordner zeigen"},
	CLICommand("restore"):               {English: "Restore a backup set onto a disk or an image file", German: "Einen Sicherungssatz auf eine Disk oder in eine Image-Datei zurückschreiben"},
	CLICommand("restore-test"):          {English: "Restore a set into a scratch image and prove the result would start", German: "Einen Satz in ein Wegwerf-Image zurückschreiben und zeigen, dass das Ergebnis starten würde"},
	CLICommand("retention"):             {English: "Delete old backup sets by the keep or smart recycle rules", German: "Alte Sicherungssätze nach den Regeln von keep oder smart recycle löschen"},
	CLICommand("schedule"):              {English: "Install or remove the systemd timer that runs backups", German: "Den systemd-Timer einrichten oder entfernen, der die Sicherungen startet"},
	CLICommand("status"):                {English: "Show the last run, the sets per type, the next timer run and the restore-test reminder", German: "Den letzten Lauf, die Sätze je Typ, den nächsten Timer-Lauf und die Erinnerung an den Test-Restore zeigen"},
	CLICommand("verify"):                {English: "Check backup sets completely, without restoring them", German: "Sicherungssätze vollständig prüfen, ohne sie zurückzuschreiben"},
	CLICommand("help"):                  {English: "Help about any command", German: "Hilfe zu jedem Befehl"},
	CLICommand("completion"):            {English: "Generate the autocompletion script for the specified shell", German: "Das Skript zur Vervollständigung für die angegebene Shell erzeugen"},
	CLICommand("completion bash"):       {English: "Generate the autocompletion script for bash", German: "Das Skript zur Vervollständigung für bash erzeugen"},
	CLICommand("completion fish"):       {English: "Generate the autocompletion script for fish", German: "Das Skript zur Vervollständigung für fish erzeugen"},
	CLICommand("completion powershell"): {English: "Generate the autocompletion script for powershell", German: "Das Skript zur Vervollständigung für powershell erzeugen"},
	CLICommand("completion zsh"):        {English: "Generate the autocompletion script for zsh", German: "Das Skript zur Vervollständigung für zsh erzeugen"},

	// Flags that are not settings, per command.
	CLIFlag("backup", "dry-run"):             {English: "check everything and print the plan; write nothing, run no hooks, stop no services", German: "alles prüfen und den Plan ausgeben; nichts schreiben, keine Hooks ausführen, keine Dienste stoppen"},
	CLIFlag("backup", "name"):                {English: "make a named snapshot (never removed by retention)", German: "einen benannten Schnappschuss anlegen (die Aufbewahrung löscht ihn nie)"},
	CLIFlag("backup", "run-dir"):             {English: "folder for the marker of stopped services (see recover-services)", German: "Ordner für die Markierung gestoppter Dienste (siehe recover-services)"},
	CLIFlag("backup", "source-disk"):         {English: "back up this unmounted disk (e.g. /dev/sdb) or image file (e.g. pi.img) instead of the running system", German: "diese nicht eingehängte Disk (z. B. /dev/sdb) oder Image-Datei (z. B. pi.img) statt des laufenden Systems sichern"},
	CLIFlag("clone", "dry-run"):              {English: "print the plan; write nothing", German: "den Plan ausgeben; nichts schreiben"},
	CLIFlag("clone", "root-size"):            {English: "size of the --root-to image file when it does not exist yet (e.g. 32G)", German: "Größe der Image-Datei von --root-to, wenn es sie noch nicht gibt (z. B. 32G)"},
	CLIFlag("clone", "root-to"):              {English: "disk (e.g. /dev/sdc) or image file for the root's copy when the root is on another disk than /boot (external root)", German: "Disk (z. B. /dev/sdc) oder Image-Datei für die Kopie des Wurzeldateisystems, wenn es auf einer anderen Disk als /boot liegt (externes Root)"},
	CLIFlag("clone", "size"):                 {English: "size of an image file that does not exist yet (e.g. 16G)", German: "Größe einer Image-Datei, die es noch nicht gibt (z. B. 16G)"},
	CLIFlag("clone", "source-disk"):          {English: "clone this disk (e.g. /dev/mmcblk0) or image file instead of the running system", German: "diese Disk (z. B. /dev/mmcblk0) oder Image-Datei statt des laufenden Systems klonen"},
	CLIFlag("clone", "source-root-disk"):     {English: "with --source-disk: the disk or image file holding the root filesystem (external root)", German: "mit --source-disk: die Disk oder Image-Datei mit dem Wurzeldateisystem (externes Root)"},
	CLIFlag("clone", "to"):                   {English: "target disk (e.g. /dev/sda) or image file (e.g. standby.img)", German: "Ziel-Disk (z. B. /dev/sda) oder Image-Datei (z. B. standby.img)"},
	CLIFlag("clone", "yes"):                  {English: "no interactive confirmation (needed when not run from a terminal)", German: "ohne Rückfrage (nötig, wenn nicht von einem Terminal gestartet)"},
	CLIFlag("config import", "force"):        {English: "overwrite the -o file if it exists", German: "die Datei von -o überschreiben, wenn es sie gibt"},
	CLIFlag("config import", "output"):       {English: "write the config to this file (mode 0600) instead of stdout", German: "die Konfiguration in diese Datei (Modus 0600) statt auf stdout schreiben"},
	CLIFlag("diff", "json"):                  {English: "print the changes as a JSON array", German: "die Änderungen als JSON-Array ausgeben"},
	CLIFlag("extract", "to"):                 {English: "folder to write the paths into (made if missing)", German: "Ordner, in den die Pfade geschrieben werden (wird angelegt, wenn er fehlt)"},
	CLIFlag("gendocs", "completions"):        {English: "write backupctl.bash, _backupctl and backupctl.fish into this folder", German: "backupctl.bash, _backupctl und backupctl.fish in diesen Ordner schreiben"},
	CLIFlag("gendocs", "man"):                {English: "write one man page per command (section 1) into this folder", German: "eine Man-Page je Befehl (Abschnitt 1) in diesen Ordner schreiben"},
	CLIFlag("list", "json"):                  {English: "print a JSON array", German: "ein JSON-Array ausgeben"},
	CLIFlag("recover-services", "run-dir"):   {English: "folder of the marker", German: "Ordner der Markierung"},
	CLIFlag("restore", "dry-run"):            {English: "print the plan; write nothing", German: "den Plan ausgeben; nichts schreiben"},
	CLIFlag("restore", "keep-ids"):           {English: "keep the source's disk id, PARTUUIDs and filesystem UUIDs", German: "Disk-ID, PARTUUIDs und Dateisystem-UUIDs der Quelle behalten"},
	CLIFlag("restore", "partitions"):         {English: `partition-oriented sets: which partitions ("1,2" or "*")`, German: `partitionsorientierte Sätze: welche Partitionen ("1,2" oder "*")`},
	CLIFlag("restore", "size"):               {English: "size of an image file that does not exist yet (e.g. 8G, 512M, 7948206080)", German: "Größe einer Image-Datei, die es noch nicht gibt (z. B. 8G, 512M, 7948206080)"},
	CLIFlag("restore", "to"):                 {English: "target disk (e.g. /dev/sdb) or image file (e.g. /tmp/pi.img)", German: "Ziel-Disk (z. B. /dev/sdb) oder Image-Datei (z. B. /tmp/pi.img)"},
	CLIFlag("restore", "yes"):                {English: "no interactive confirmation (the target is still checked)", German: "ohne Rückfrage (das Ziel wird trotzdem geprüft)"},
	CLIFlag("restore-test", "json"):          {English: "print the result as JSON", German: "das Ergebnis als JSON ausgeben"},
	CLIFlag("retention", "dry-run"):          {English: "print what would be kept and deleted; delete nothing", German: "ausgeben, was behalten und was gelöscht würde; nichts löschen"},
	CLIFlag("schedule", "binary"):            {English: "backupctl binary the service runs (default: this one)", German: "das backupctl-Programm, das der Dienst startet (Vorgabe: dieses)"},
	CLIFlag("schedule", "root"):              {English: "write the units under this folder instead of / (then systemctl is not run)", German: "die Units unter diesen Ordner statt unter / schreiben (dann läuft systemctl nicht)"},
	CLIFlag("status", "record-restore-test"): {English: "record that this set folder was restored as a test, now", German: "festhalten, dass dieser Satzordner jetzt zum Test zurückgeschrieben wurde"},
	CLIFlag("status", "systemctl"):           {English: "systemctl binary for the next timer run", German: "systemctl-Programm für den nächsten Timer-Lauf"},
	CLIFlag("verify", "list"):                {English: "list every file and tree checked", German: "jede geprüfte Datei und jeden geprüften Baum auflisten"},

	// The settings of the option table (internal/config), by key.
	CLIOption("backup-path"):                {English: "backup folder (holds one folder per host); raspiBackup -p", German: "Sicherungsordner (enthält einen Ordner je Host); raspiBackup -p"},
	CLIOption("ssh-identity"):               {English: "sftp:// backup folder: private key file (OpenSSH or PEM, no passphrase); \"\" uses the ssh-agent at SSH_AUTH_SOCK", German: "sftp://-Sicherungsordner: Datei mit dem privaten Schlüssel (OpenSSH oder PEM, ohne Passphrase); \"\" nimmt den ssh-agent an SSH_AUTH_SOCK"},
	CLIOption("ssh-known-hosts"):            {English: "sftp:// backup folder: OpenSSH known_hosts file that pins the server's host key (\"\" is /root/.ssh/known_hosts; add it with ssh-keyscan -p PORT HOST >> FILE)", German: "sftp://-Sicherungsordner: OpenSSH-known_hosts-Datei, die den Hostschlüssel des Servers festlegt (\"\" ist /root/.ssh/known_hosts; eintragen mit ssh-keyscan -p PORT HOST >> DATEI)"},
	CLIOption("encrypt-to"):                 {English: "encrypt the payloads with age to this recipient: an age public key (age1…), an SSH public key line (ssh-ed25519 …, ssh-rsa …) or a recipients file as age -R reads (repeatable); rsync sets cannot be encrypted", German: "die Nutzdaten mit age an diesen Empfänger verschlüsseln: ein öffentlicher age-Schlüssel (age1…), eine Zeile mit einem öffentlichen SSH-Schlüssel (ssh-ed25519 …, ssh-rsa …) oder eine Empfängerdatei wie für age -R (wiederholbar); rsync-Sicherungen lassen sich nicht verschlüsseln"},
	CLIOption("encrypt-passphrase-file"):    {English: "encrypt the payloads with age to the passphrase on the first line of this file (chmod 600; scrypt); reading commands open such sets with it", German: "die Nutzdaten mit age mit der Passphrase in der ersten Zeile dieser Datei verschlüsseln (chmod 600; scrypt); lesende Befehle öffnen solche Sicherungen damit"},
	CLIOption("age-identity"):               {English: "age identity file (age-keygen) or SSH private key without passphrase that opens encrypted sets", German: "age-Identitätsdatei (age-keygen) oder privater SSH-Schlüssel ohne Passphrase, der verschlüsselte Sicherungen öffnet"},
	CLIOption("smb-password-file"):          {English: "smb:// backup folder: file holding the user's password (chmod 600)", German: "smb://-Sicherungsordner: Datei mit dem Passwort des Benutzers (chmod 600)"},
	CLIOption("type"):                       {English: "backup type: dd, ddz, tar, tgz or rsync; raspiBackup -t", German: "Art der Sicherung: dd, ddz, tar, tgz oder rsync; raspiBackup -t"},
	CLIOption("compress"):                   {English: `compression for dd and tar: gzip, zstd or none (dd+gzip = ddz, tar+gzip = tgz); "" is the type's own; true means gzip (raspiBackup -z)`, German: `Kompression für dd und tar: gzip, zstd oder none (dd+gzip = ddz, tar+gzip = tgz); "" ist die des Typs; true heißt gzip (raspiBackup -z)`},
	CLIOption("partitions"):                 {English: `partition-oriented mode: back up these partitions, e.g. "1 2 5" or "*"; raspiBackup -P -T`, German: `partitionsorientierter Modus: diese Partitionen sichern, z. B. "1 2 5" oder "*"; raspiBackup -P -T`},
	CLIOption("keep"):                       {English: "backups to keep per host, OS release and type; -1 keeps all; raspiBackup -k", German: "Anzahl aufzubewahrender Sicherungen je Host, OS-Version und Typ; -1 behält alle; raspiBackup -k"},
	CLIOption("keep-dd"):                    {English: "keep for dd backups; 0 means --keep", German: "Anzahl für dd-Sicherungen; 0 heißt --keep"},
	CLIOption("keep-ddz"):                   {English: "keep for ddz backups; 0 means --keep", German: "Anzahl für ddz-Sicherungen; 0 heißt --keep"},
	CLIOption("keep-tar"):                   {English: "keep for tar backups; 0 means --keep", German: "Anzahl für tar-Sicherungen; 0 heißt --keep"},
	CLIOption("keep-tgz"):                   {English: "keep for tgz backups; 0 means --keep", German: "Anzahl für tgz-Sicherungen; 0 heißt --keep"},
	CLIOption("keep-rsync"):                 {English: "keep for rsync backups; 0 means --keep", German: "Anzahl für rsync-Sicherungen; 0 heißt --keep"},
	CLIOption("smart-recycle.enabled"):      {English: "keep daily/weekly/monthly/yearly backups instead of the newest --keep", German: "tägliche, wöchentliche, monatliche und jährliche Sicherungen behalten statt der neuesten --keep"},
	CLIOption("smart-recycle.daily"):        {English: "smart recycle: days with their newest backup kept", German: "smart recycle: Tage, deren neueste Sicherung bleibt"},
	CLIOption("smart-recycle.weekly"):       {English: "smart recycle: weeks (Mon–Sun) with their oldest backup kept", German: "smart recycle: Wochen (Mo–So), deren älteste Sicherung bleibt"},
	CLIOption("smart-recycle.monthly"):      {English: "smart recycle: months with their oldest backup kept", German: "smart recycle: Monate, deren älteste Sicherung bleibt"},
	CLIOption("smart-recycle.yearly"):       {English: "smart recycle: years with their oldest backup kept", German: "smart recycle: Jahre, deren älteste Sicherung bleibt"},
	CLIOption("exclude"):                    {English: `leave out paths matching this glob (repeatable); "/x/*" is anchored at the filesystem root, "*.tmp" matches at any depth; raspiBackup -u`, German: `Pfade auslassen, die zu diesem Muster passen (mehrfach möglich); "/x/*" gilt ab der Wurzel des Dateisystems, "*.tmp" in jeder Tiefe; raspiBackup -u`},
	CLIOption("link-boot-files"):            {English: "hard-link boot partition files (image or .tmg, sfdisk, mbr) equal to the previous set's instead of storing them again; raspiBackup DEFAULT_LINK_BOOTPARTITIONFILES", German: "Dateien der Boot-Partition (Image oder .tmg, sfdisk, mbr), die denen des vorigen Satzes gleichen, hart verlinken statt neu speichern; raspiBackup DEFAULT_LINK_BOOTPARTITIONFILES"},
	CLIOption("boot-tar"):                   {English: "save the boot partition as tar (.tmg) instead of an image; raspiBackup -B", German: "die Boot-Partition als tar (.tmg) statt als Image sichern; raspiBackup -B"},
	CLIOption("used-partitions-only"):       {English: "dd: stop the image at the end of the last partition", German: "dd: das Image am Ende der letzten Partition enden lassen"},
	CLIOption("full-read"):                  {English: "dd: read every block instead of only the blocks filesystems use (also for the boot partition image of tar and rsync sets)", German: "dd: jeden Block lesen statt nur der von Dateisystemen belegten (auch für das Boot-Image von tar- und rsync-Sätzen)"},
	CLIOption("hostname"):                   {English: "host name for the set (default: /etc/hostname of the source root)", German: "Hostname für den Satz (Vorgabe: /etc/hostname der Quelle)"},
	CLIOption("progress"):                   {English: "show a progress bar on stderr; raspiBackup -g", German: "einen Fortschrittsbalken auf stderr zeigen; raspiBackup -g"},
	CLIOption("services"):                   {English: "service stopped before and started after the backup, in reverse order: unit:NAME, NAME.service, docker:NAME or podman:NAME (repeatable)", German: "Dienst, der vor der Sicherung gestoppt und danach in umgekehrter Reihenfolge gestartet wird: unit:NAME, NAME.service, docker:NAME oder podman:NAME (mehrfach möglich)"},
	CLIOption("stop-commands"):              {English: "command run to stop services, as words with shell-style quotes, not run by a shell (repeatable); raspiBackup -o", German: "Befehl, der Dienste stoppt, als Wörter mit Anführungszeichen wie in der Shell, aber ohne Shell ausgeführt (mehrfach möglich); raspiBackup -o"},
	CLIOption("start-commands"):             {English: "command run to start services again (repeatable); raspiBackup -a", German: "Befehl, der die Dienste wieder startet (mehrfach möglich); raspiBackup -a"},
	CLIOption("hooks.dir"):                  {English: "folder with one subfolder of executables per event", German: "Ordner mit einem Unterordner ausführbarer Dateien je Ereignis"},
	CLIOption("hooks.timeout"):              {English: "time limit of one hook", German: "Zeitlimit eines Hooks"},
	CLIOption("hooks.pre-backup"):           {English: "command before services stop; failure aborts (repeatable)", German: "Befehl, bevor Dienste stoppen; ein Fehler bricht ab (mehrfach möglich)"},
	CLIOption("hooks.ready"):                {English: "command after services stopped, before data is read; failure aborts (repeatable)", German: "Befehl, nachdem Dienste gestoppt sind und bevor Daten gelesen werden; ein Fehler bricht ab (mehrfach möglich)"},
	CLIOption("hooks.post-backup"):          {English: "command after the backup, before services start (repeatable)", German: "Befehl nach der Sicherung, bevor Dienste starten (mehrfach möglich)"},
	CLIOption("hooks.pre-restore"):          {English: "command before a restore or clone writes anything; failure aborts (repeatable)", German: "Befehl, bevor ein Restore oder Klon etwas schreibt; ein Fehler bricht ab (mehrfach möglich)"},
	CLIOption("hooks.post-restore"):         {English: "command after a restore or clone, also a failed one; BACKUP_RC has its exit code (repeatable)", German: "Befehl nach einem Restore oder Klon, auch einem gescheiterten; BACKUP_RC enthält dessen Exit-Code (mehrfach möglich)"},
	CLIOption("email.to"):                   {English: "mail the outcome to this address (repeatable); raspiBackup -e", German: "das Ergebnis an diese Adresse mailen (mehrfach möglich); raspiBackup -e"},
	CLIOption("email.from"):                 {English: "sender address", German: "Absenderadresse"},
	CLIOption("email.on-error-only"):        {English: "mail only when the run failed", German: "nur mailen, wenn der Lauf fehlschlug"},
	CLIOption("email.attach-log"):           {English: "attach the run log to the mail", German: "das Protokoll des Laufs an die Mail anhängen"},
	CLIOption("smtp.host"):                  {English: "SMTP server", German: "SMTP-Server"},
	CLIOption("smtp.port"):                  {English: "SMTP port; 0 means 587 (starttls), 465 (tls) or 25 (none)", German: "SMTP-Port; 0 heißt 587 (starttls), 465 (tls) oder 25 (none)"},
	CLIOption("smtp.security"):              {English: "starttls, tls or none", German: "starttls, tls oder none"},
	CLIOption("smtp.auth"):                  {English: "auto, plain or login", German: "auto, plain oder login"},
	CLIOption("smtp.user"):                  {English: "SMTP user name", German: "SMTP-Benutzername"},
	CLIOption("smtp.password"):              {English: "SMTP password (secret: better in a chmod 600 file than on the command line)", German: "SMTP-Passwort (geheim: besser in einer Datei mit chmod 600 als auf der Kommandozeile)"},
	CLIOption("webhook.url"):                {English: "POST a JSON notice here (ntfy, Gotify, Slack, Home Assistant); secret", German: "eine JSON-Nachricht per POST hierhin senden (ntfy, Gotify, Slack, Home Assistant); geheim"},
	CLIOption("webhook.token"):              {English: "sent as Authorization: Bearer; secret", German: "wird als Authorization: Bearer gesendet; geheim"},
	CLIOption("webhook.topic"):              {English: "ntfy topic, added to the JSON", German: "ntfy-Thema, wird dem JSON hinzugefügt"},
	CLIOption("webhook.on-error-only"):      {English: "notify the webhook only when the run failed", German: "den Webhook nur benachrichtigen, wenn der Lauf fehlschlug"},
	CLIOption("telegram.token"):             {English: "Telegram bot token (from @BotFather); with telegram.chat-id; secret", German: "Token des Telegram-Bots (von @BotFather); mit telegram.chat-id; geheim"},
	CLIOption("telegram.chat-id"):           {English: "Telegram chat id (a number, or @channel) the bot writes to", German: "ID des Telegram-Chats (eine Zahl oder @Kanal), in den der Bot schreibt"},
	CLIOption("telegram.api-url"):           {English: "Telegram Bot API base (default https://api.telegram.org; a self-hosted Bot API server); secret", German: "Basis der Telegram Bot API (Vorgabe https://api.telegram.org; oder ein eigener Bot-API-Server); geheim"},
	CLIOption("telegram.on-error-only"):     {English: "notify Telegram only when the run failed", German: "Telegram nur benachrichtigen, wenn der Lauf fehlschlug"},
	CLIOption("pushover.token"):             {English: "Pushover application API token; with pushover.user; secret", German: "API-Token der Pushover-Anwendung; mit pushover.user; geheim"},
	CLIOption("pushover.user"):              {English: "Pushover user or group key", German: "Pushover-Schlüssel des Benutzers oder der Gruppe"},
	CLIOption("pushover.api-url"):           {English: "Pushover API base (default https://api.pushover.net); secret", German: "Basis der Pushover-API (Vorgabe https://api.pushover.net); geheim"},
	CLIOption("pushover.on-error-only"):     {English: "notify Pushover only when the run failed", German: "Pushover nur benachrichtigen, wenn der Lauf fehlschlug"},
	CLIOption("discord.webhook-url"):        {English: "Discord channel webhook URL; secret", German: "Webhook-URL des Discord-Kanals; geheim"},
	CLIOption("discord.on-error-only"):      {English: "notify Discord only when the run failed", German: "Discord nur benachrichtigen, wenn der Lauf fehlschlug"},
	CLIOption("slack.webhook-url"):          {English: "Slack incoming webhook URL; secret", German: "URL des eingehenden Slack-Webhooks; geheim"},
	CLIOption("slack.on-error-only"):        {English: "notify Slack only when the run failed", German: "Slack nur benachrichtigen, wenn der Lauf fehlschlug"},
	CLIOption("ntfy.url"):                   {English: "ntfy server (default https://ntfy.sh); secret", German: "ntfy-Server (Vorgabe https://ntfy.sh); geheim"},
	CLIOption("ntfy.topic"):                 {English: "ntfy topic to publish to", German: "ntfy-Thema, in das veröffentlicht wird"},
	CLIOption("ntfy.token"):                 {English: "ntfy access token; secret", German: "ntfy-Zugangstoken; geheim"},
	CLIOption("ntfy.on-error-only"):         {English: "notify ntfy only when the run failed", German: "ntfy nur benachrichtigen, wenn der Lauf fehlschlug"},
	CLIOption("notify-start"):               {English: "also notify when a backup starts (notifiers set to on-error-only stay quiet)", German: "auch beim Start einer Sicherung benachrichtigen (Kanäle mit on-error-only bleiben still)"},
	CLIOption("log.json"):                   {English: "write the run log as JSON lines instead of text", German: "das Protokoll des Laufs als JSON-Zeilen statt als Text schreiben"},
	CLIOption("lang"):                       {English: `language of result lines, notices, status and the restore and clone plans: en or de ("" follows LC_ALL, LC_MESSAGES, LANG); raspiBackup -G`, German: `Sprache der Ergebniszeilen, Nachrichten, des Status und der Restore- und Klon-Pläne: en oder de ("" folgt LC_ALL, LC_MESSAGES, LANG); raspiBackup -G`},
	CLIOption("s3.endpoint"):                {English: `S3 server for s3://bucket/prefix backup folders, e.g. "https://minio.lan:9000" ("" is AWS, or AWS_ENDPOINT_URL_S3)`, German: `S3-Server für Sicherungsordner s3://bucket/präfix, z. B. "https://minio.lan:9000" ("" ist AWS, oder AWS_ENDPOINT_URL_S3)`},
	CLIOption("s3.region"):                  {English: `S3 region ("" is AWS_REGION, else us-east-1 for a server given by s3.endpoint)`, German: `S3-Region ("" ist AWS_REGION, sonst us-east-1 für einen mit s3.endpoint angegebenen Server)`},
	CLIOption("s3.access-key"):              {English: `S3 access key id ("" is AWS_ACCESS_KEY_ID)`, German: `S3-Zugangsschlüssel-ID ("" ist AWS_ACCESS_KEY_ID)`},
	CLIOption("s3.secret-key-file"):         {English: `file holding the S3 secret key, mode 600 ("" is AWS_SECRET_ACCESS_KEY); the key itself is never a flag`, German: `Datei mit dem geheimen S3-Schlüssel, Modus 600 ("" ist AWS_SECRET_ACCESS_KEY); der Schlüssel selbst ist nie eine Option`},
	CLIOption("s3.path-style"):              {English: "address the bucket in the URL path, not the host name (MinIO, Garage, most servers on a LAN)", German: "den Bucket im Pfad der URL ansprechen, nicht im Hostnamen (MinIO, Garage, die meisten Server im LAN)"},
	CLIOption("mount.cache-dir"):            {English: "mount: folder for archive indexes and decompressed payloads (\"\" is /var/cache/backupctl for root)", German: "mount: Ordner für Archiv-Indizes und entpackte Inhalte (\"\" ist /var/cache/backupctl für root)"},
	CLIOption("restore-test.work-dir"):      {English: "restore-test: folder for the scratch image (it needs about the used space of the backed-up filesystems)", German: "restore-test: Ordner für das Wegwerf-Image (es braucht etwa den belegten Platz der gesicherten Dateisysteme)"},
	CLIOption("restore-test.sample"):        {English: "restore-test: number of files compared with the set's hashes", German: "restore-test: Anzahl der Dateien, die mit den Prüfsummen des Satzes verglichen werden"},
	CLIOption("restore-test.max-space"):     {English: `restore-test: refuse to start when the image would need more than this (e.g. "8G"; "" no limit)`, German: `restore-test: nicht starten, wenn das Image mehr bräuchte (z. B. "8G"; "" ohne Grenze)`},
	CLIOption("restore-test.remind-months"): {English: "status and a backup's result: remind when the last test restore is older than this many months; 0 never reminds", German: "status und Ergebnis einer Sicherung: erinnern, wenn der letzte Test-Restore älter als so viele Monate ist; 0 erinnert nie"},
	CLIOption("schedule.on-calendar"):       {English: "schedule install: when to back up, as a systemd calendar expression", German: "schedule install: wann gesichert wird, als systemd-Kalenderausdruck"},
	CLIOption("schedule.restore-test"):      {English: "schedule install: also run `backupctl restore-test` on this calendar (daily, weekly, monthly or a systemd calendar expression) from its own timer", German: "schedule install: zusätzlich `backupctl restore-test` nach diesem Kalender (daily, weekly, monthly oder ein systemd-Kalenderausdruck) mit eigenem Timer starten"},
}
