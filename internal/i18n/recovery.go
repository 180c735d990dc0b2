package i18n

// The recovery's screens. Words that are the same in both languages
// (URL schemes, key names, device names) are not in the catalogue; every
// sentence is, so a German user meets no English sentence on a screen.
// Details inside errors from the engines stay English (see the package
// comment); the screen says in German what kind of error it is.
const (
	UIHeaderKeys       ID = "ui.header-keys"
	UILogTitle         ID = "ui.log-title"
	UINoLog            ID = "ui.no-log"
	UIError            ID = "ui.error"
	UIHintHome         ID = "ui.hint-home"
	UIHintSource       ID = "ui.hint-source"
	UIHintHostKey      ID = "ui.hint-hostkey"
	UIHintSets         ID = "ui.hint-sets"
	UIHintCloneFrom    ID = "ui.hint-clonefrom"
	UIHintTarget       ID = "ui.hint-target"
	UIHintPlan         ID = "ui.hint-plan"
	UIHintConfirm      ID = "ui.hint-confirm"
	UIHintRunning      ID = "ui.hint-running"
	UIHintResult       ID = "ui.hint-result"
	UIHomeTitle        ID = "ui.home-title"
	UIRestore          ID = "ui.restore"
	UIRestoreHelp      ID = "ui.restore-help"
	UIVerify           ID = "ui.verify"
	UIVerifyHelp       ID = "ui.verify-help"
	UIClone            ID = "ui.clone"
	UICloneHelp        ID = "ui.clone-help"
	UIShowLog          ID = "ui.show-log"
	UIShowLogHelp      ID = "ui.show-log-help"
	UIShell            ID = "ui.shell"
	UIShellHelp        ID = "ui.shell-help"
	UIReboot           ID = "ui.reboot"
	UIPowerOff         ID = "ui.poweroff"
	UISourceTitle      ID = "ui.source-title"
	UICannotListDisks  ID = "ui.cannot-list-disks"
	UIOtherLocation    ID = "ui.other-location"
	UILocation         ID = "ui.location"
	UIPassword         ID = "ui.password"
	UIFormKeys         ID = "ui.form-keys"
	UIFormS3           ID = "ui.form-s3"
	UIHostKeyText      ID = "ui.hostkey-text"
	UIHostKeyTitle     ID = "ui.hostkey-title"
	UIReject           ID = "ui.reject"
	UIAccept           ID = "ui.accept"
	UISetsTitle        ID = "ui.sets-title"
	UIManifest         ID = "ui.manifest"
	UINoManifest       ID = "ui.no-manifest"
	UIDiskToOverwrite  ID = "ui.disk-to-overwrite"
	UIDiskToCopy       ID = "ui.disk-to-copy"
	UIRestoreOnto      ID = "ui.restore-onto"
	UICloneOnto        ID = "ui.clone-onto"
	UINotAllowed       ID = "ui.not-allowed"
	UIPlanTitle        ID = "ui.plan-title"
	UINothingWritten   ID = "ui.nothing-written"
	UIConfirmTitle     ID = "ui.confirm-title"
	UITypeToErase      ID = "ui.type-to-erase"
	UIAllLost          ID = "ui.all-lost"
	UIWorkingTitle     ID = "ui.working-title"
	UICancelQuestion   ID = "ui.cancel-question"
	UIKeepGoing        ID = "ui.keep-going"
	UICancelJob        ID = "ui.cancel-job"
	UIResultTitle      ID = "ui.result-title"
	UIBackToMenu       ID = "ui.back-to-menu"
	UITaskRestore      ID = "ui.task-restore"
	UITaskVerify       ID = "ui.task-verify"
	UITaskClone        ID = "ui.task-clone"
	UIOnto             ID = "ui.onto"
	UIStarting         ID = "ui.starting"
	UIPhase            ID = "ui.phase"
	UIDoneOf           ID = "ui.done-of"
	UIDone             ID = "ui.done"
	UIRate             ID = "ui.rate"
	UIETA              ID = "ui.eta"
	UITotal            ID = "ui.total"
	UIFailed           ID = "ui.failed"
	UIIncomplete       ID = "ui.incomplete"
	UIWrittenBefore    ID = "ui.written-before"
	UIComplete         ID = "ui.complete"
	UIBytesIn          ID = "ui.bytes-in"
	UIVerified         ID = "ui.verified"
	UIBusyStart        ID = "ui.busy-start"
	UIBusyConnectingTo ID = "ui.busy-connecting-to"
	UIBusyConnecting   ID = "ui.busy-connecting"
	UIBusyReadingDisks ID = "ui.busy-reading-disks"
	UIBusyPlanning     ID = "ui.busy-planning"
	UIErrBusy          ID = "ui.err-busy"
	UIErrWrongScreen   ID = "ui.err-wrong-screen"
	UIErrNoSets        ID = "ui.err-no-sets"
	UIErrIneligible    ID = "ui.err-ineligible"
	UIErrConfirm       ID = "ui.err-confirm"
	UIErrRunning       ID = "ui.err-running"
	UIErrCancelled     ID = "ui.err-cancelled"
	UISettingsIgnored  ID = "ui.settings-ignored"
)

// recoveryCatalogue is constant data, never changed at run time.
var recoveryCatalogue = map[ID]map[Lang]string{
	UIHeaderKeys: {English: "F2 log  Esc back", German: "F2 Protokoll  Esc zurück"},
	UILogTitle:   {English: "Log (Esc: close)", German: "Protokoll (Esc: schließen)"},
	UINoLog:      {English: "(no log)", German: "(kein Protokoll)"},
	UIError:      {English: "Error:", German: "Fehler:"},
	UIHintHome:   {English: "↑↓ choose, Enter select", German: "↑↓ wählen, Enter auswählen"},
	UIHintSource: {English: "↑↓ choose, Enter connect, Esc back", German: "↑↓ wählen, Enter verbinden, Esc zurück"},
	UIHintHostKey: {English: "Accept only if the fingerprint matches the server's",
		German: "Nur annehmen, wenn der Fingerabdruck mit dem des Servers übereinstimmt"},
	UIHintSets: {English: "↑↓ choose a backup, Enter select, Esc back",
		German: "↑↓ Sicherung wählen, Enter auswählen, Esc zurück"},
	UIHintCloneFrom: {English: "↑↓ choose the disk to copy, Enter select, Esc back",
		German: "↑↓ zu kopierende Disk wählen, Enter auswählen, Esc zurück"},
	UIHintTarget: {English: "↑↓ choose the disk to overwrite, Enter select, Esc back",
		German: "↑↓ zu überschreibende Disk wählen, Enter auswählen, Esc zurück"},
	UIHintPlan:    {English: "↑↓ scroll, Enter continue, Esc back", German: "↑↓ blättern, Enter weiter, Esc zurück"},
	UIHintConfirm: {English: "type the disk name and Enter, Esc back", German: "Disk-Namen eintippen und Enter, Esc zurück"},
	UIHintRunning: {English: "c cancel, F2 log", German: "c abbrechen, F2 Protokoll"},
	UIHintResult:  {English: "Enter select, Esc back to the menu", German: "Enter auswählen, Esc zurück zum Menü"},
	UIHomeTitle:   {English: "Recovery", German: "Wiederherstellung"},
	UIRestore:     {English: "Restore a backup", German: "Sicherung zurückspielen"},
	UIRestoreHelp: {English: "write a backup set onto a disk", German: "einen Sicherungssatz auf eine Disk schreiben"},
	UIVerify:      {English: "Verify a backup", German: "Sicherung prüfen"},
	UIVerifyHelp: {English: "read a set and check it against its manifest",
		German: "einen Satz lesen und mit seinem Manifest vergleichen"},
	UIClone:       {English: "Clone a disk", German: "Disk klonen"},
	UICloneHelp:   {English: "copy one disk onto another", German: "eine Disk auf eine andere kopieren"},
	UIShowLog:     {English: "Show log", German: "Protokoll zeigen"},
	UIShowLogHelp: {English: "F2 from anywhere", German: "F2 von überall"},
	UIShell:       {English: "Shell (experts)", German: "Shell (für Fachleute)"},
	UIShellHelp:   {English: "exit the shell to come back", German: "Shell mit exit verlassen, um zurückzukehren"},
	UIReboot:      {English: "Reboot", German: "Neu starten"},
	UIPowerOff:    {English: "Power off", German: "Ausschalten"},
	UISourceTitle: {English: "Where are the backups?", German: "Wo liegen die Sicherungen?"},
	UICannotListDisks: {English: "(cannot list disks: %s)",
		German: "(Disks lassen sich nicht auflisten: %s)"},
	UIOtherLocation: {English: "Network or other location…", German: "Netzwerk oder anderer Ort…"},
	UILocation:      {English: "Location", German: "Ort"},
	UIPassword:      {English: "Password", German: "Passwort"},
	UIFormKeys: {English: "Enter: connect   Tab: next field   Esc: back",
		German: "Enter: verbinden   Tab: nächstes Feld   Esc: zurück"},
	UIFormS3: {English: "s3://ACCESSKEY@bucket/prefix?endpoint=http://host:port   (the secret key in the password field)",
		German: "s3://ZUGANGSSCHLÜSSEL@bucket/präfix?endpoint=http://host:port   (den geheimen Schlüssel ins Passwortfeld)"},
	UIHostKeyText: {
		English: "The server %s identifies itself with the %s key\n\n    %s\n\n" +
			"Check it on the server with\n    ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub\n" +
			"before you send it a password. Accept this key for this session?",
		German: "Der Server %s weist sich mit dem %s-Schlüssel aus\n\n    %s\n\n" +
			"Prüfen Sie ihn auf dem Server mit\n    ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub\n" +
			"bevor Sie ihm ein Passwort senden. Schlüssel für diese Sitzung annehmen?",
	},
	UIHostKeyTitle:    {English: "Unknown host key", German: "Unbekannter Host-Schlüssel"},
	UIReject:          {English: "Reject", German: "Ablehnen"},
	UIAccept:          {English: "Accept", German: "Annehmen"},
	UISetsTitle:       {English: "Backups in %s", German: "Sicherungen in %s"},
	UIManifest:        {English: "manifest", German: "Manifest"},
	UINoManifest:      {English: "no manifest", German: "ohne Manifest"},
	UIDiskToOverwrite: {English: "Disk to overwrite", German: "Zu überschreibende Disk"},
	UIDiskToCopy:      {English: "Disk to copy", German: "Zu kopierende Disk"},
	UIRestoreOnto:     {English: "Restore %s onto", German: "%s zurückspielen auf"},
	UICloneOnto:       {English: "Clone %s onto", German: "%s klonen auf"},
	UINotAllowed:      {English: "(not allowed: %s)", German: "(nicht erlaubt: %s)"},
	UIPlanTitle:       {English: "Plan", German: "Ablauf"},
	UINothingWritten: {English: "Nothing has been written yet. Press Enter to continue.",
		German: "Noch wurde nichts geschrieben. Enter drücken, um fortzufahren."},
	UIConfirmTitle:   {English: "Confirm", German: "Bestätigen"},
	UITypeToErase:    {English: "Type %s to ERASE %s: ", German: "%s eintippen, um %s zu LÖSCHEN: "},
	UIAllLost:        {English: "Everything on this disk will be lost:", German: "Alles auf dieser Disk geht verloren:"},
	UIWorkingTitle:   {English: "Working", German: "In Arbeit"},
	UICancelQuestion: {English: "Cancel? The target disk will be left incomplete.", German: "Abbrechen? Die Ziel-Disk bleibt unvollständig."},
	UIKeepGoing:      {English: "Keep going", German: "Weitermachen"},
	UICancelJob:      {English: "Cancel the job", German: "Auftrag abbrechen"},
	UIResultTitle:    {English: "Result", German: "Ergebnis"},
	UIBackToMenu:     {English: "Back to the menu", German: "Zurück zum Menü"},
	UITaskRestore:    {English: "Restore", German: "Wiederherstellung"},
	UITaskVerify:     {English: "Verify", German: "Prüfung"},
	UITaskClone:      {English: "Clone", German: "Klonen"},
	UIOnto:           {English: "%s onto %s", German: "%s auf %s"},
	UIStarting:       {English: "starting…", German: "startet…"},
	UIPhase:          {English: "phase  %s", German: "Phase    %s"},
	UIDoneOf:         {English: "done   %s of %s (%.0f%%)", German: "fertig   %s von %s (%.0f%%)"},
	UIDone:           {English: "done   %s", German: "fertig   %s"},
	UIRate:           {English: "rate   %s/s", German: "Rate     %s/s"},
	UIETA:            {English: "ETA    %s", German: "Rest     %s"},
	UITotal:          {English: "total  %s", German: "gesamt   %s"},
	UIFailed:         {English: "%s FAILED", German: "%s FEHLGESCHLAGEN"},
	UIIncomplete: {English: "The target disk is incomplete and will not boot. Fix the cause and restore again.",
		German: "Die Ziel-Disk ist unvollständig und startet nicht. Ursache beheben und erneut zurückspielen."},
	UIWrittenBefore: {English: "%s written before the failure.", German: "%s vor dem Fehler geschrieben."},
	UIComplete:      {English: "%s complete", German: "%s abgeschlossen"},
	UIBytesIn:       {English: "%s in %s%s", German: "%s in %s%s"},
	UIVerified:      {English: "verified against the manifest", German: "mit dem Manifest geprüft"},

	UIBusyStart:        {English: "start", German: "Start"},
	UIBusyConnectingTo: {English: "connecting to %s", German: "verbinde mit %s"},
	UIBusyConnecting:   {English: "connecting", German: "verbinde"},
	UIBusyReadingDisks: {English: "reading disks", German: "lese Disks"},
	UIBusyPlanning:     {English: "planning", German: "plane"},
	UIErrBusy:          {English: "busy: wait for the current step to finish", German: "beschäftigt: bitte das Ende des laufenden Schritts abwarten"},
	UIErrWrongScreen:   {English: "not possible on this screen", German: "auf dieser Seite nicht möglich"},
	UIErrNoSets: {English: "no backup sets found here (want BACKUPDIR/<host>/<host>@<os>-<type>-backup-<date>/)",
		German: "hier wurden keine Sicherungssätze gefunden (erwartet BACKUPDIR/<host>/<host>@<os>-<type>-backup-<date>/)"},
	UIErrIneligible:   {English: "this disk cannot be used", German: "diese Disk kann nicht verwendet werden"},
	UIErrConfirm:      {English: "the typed name does not match the disk", German: "der eingetippte Name passt nicht zur Disk"},
	UIErrRunning:      {English: "a job is running: cancel it first (c)", German: "ein Auftrag läuft: zuerst abbrechen (c)"},
	UIErrCancelled:    {English: "cancelled by the user", German: "vom Benutzer abgebrochen"},
	UISettingsIgnored: {English: "settings ignored", German: "Einstellungen ignoriert"},
}

// The files flow (get files back from a set).
const (
	UIFiles            ID = "ui.files"
	UIFilesHelp        ID = "ui.files-help"
	UITaskFiles        ID = "ui.task-files"
	UIHintFiles        ID = "ui.hint-files"
	UIHintFileDest     ID = "ui.hint-filedest"
	UIHintKey          ID = "ui.hint-key"
	UIKeyTitle         ID = "ui.key-title"
	UIKeyPrompt        ID = "ui.key-prompt"
	UIKeyHelp          ID = "ui.key-help"
	UIFilesTitle       ID = "ui.files-title"
	UIMarkedCount      ID = "ui.marked-count"
	UIFileDestTitle    ID = "ui.filedest-title"
	UICopiedTo         ID = "ui.copied-to"
	UIBusyReading      ID = "ui.busy-reading"
	UIBusyListing      ID = "ui.busy-listing"
	UIErrNothingMarked ID = "ui.err-nothing-marked"
	UIErrNoDest        ID = "ui.err-no-dest"
	UISkippedOnFAT     ID = "ui.skipped-on-fat"
	UIErrBrowseRemote  ID = "ui.err-browse-remote"
	UIErrBrowseZipped  ID = "ui.err-browse-compressed"
	UIErrDestBusy      ID = "ui.err-dest-busy"
)

var filesCatalogue = map[ID]map[Lang]string{
	UIFiles:     {English: "Get files back", German: "Dateien zurückholen"},
	UIFilesHelp: {English: "copy single files or folders out of a backup", German: "einzelne Dateien oder Ordner aus einer Sicherung kopieren"},
	UITaskFiles: {English: "Copy", German: "Kopieren"},
	UIHintFiles: {English: "Enter open, Space mark, c copy the marked, Esc up",
		German: "Enter öffnen, Leertaste markieren, c Markiertes kopieren, Esc hoch"},
	UIHintFileDest: {English: "↑↓ choose where the files go, Enter copy, Esc back", German: "↑↓ Ziel der Dateien wählen, Enter kopieren, Esc zurück"},
	UIHintKey:      {English: "Enter open the set with it, Esc back", German: "Enter Sicherung damit öffnen, Esc zurück"},
	UIKeyTitle:     {English: "Encrypted backup", German: "Verschlüsselte Sicherung"},
	UIKeyPrompt:    {English: "Passphrase or key:", German: "Passphrase oder Schlüssel:"},
	UIKeyHelp: {English: "This backup is encrypted (age). Type its passphrase, the AGE-SECRET-KEY-1… line of its key, or the path of the key file (age identity or SSH private key). age_identity= in recovery.conf saves this step.",
		German: "Diese Sicherung ist verschlüsselt (age). Ihre Passphrase, die Zeile AGE-SECRET-KEY-1… ihres Schlüssels oder den Pfad der Schlüsseldatei (age-Identität oder privater SSH-Schlüssel) eintippen. age_identity= in recovery.conf erspart diesen Schritt."},
	UIFilesTitle:    {English: "%s in %s", German: "%s in %s"},
	UIMarkedCount:   {English: "%d marked", German: "%d markiert"},
	UIFileDestTitle: {English: "Copy %d marked to", German: "%d Markierte kopieren nach"},
	UICopiedTo:      {English: "copied to %s", German: "kopiert nach %s"},
	UIBusyReading:   {English: "reading %s", German: "lese %s"},
	UIBusyListing:   {English: "reading the list of files of %s: %d%% (Esc cancels)", German: "lese die Dateiliste von %s: %d%% (Esc bricht ab)"},
	UIErrNothingMarked: {English: "nothing marked: mark files or folders with Space first",
		German: "nichts markiert: zuerst Dateien oder Ordner mit der Leertaste markieren"},
	UIErrNoDest: {English: "no partition to copy to: plug in a USB disk with a FAT or ext4 partition",
		German: "keine Partition als Ziel: einen USB-Datenträger mit FAT- oder ext4-Partition anstecken"},
	UISkippedOnFAT: {English: "%d symbolic links or device files left out: FAT cannot hold them",
		German: "%d symbolische Links oder Gerätedateien ausgelassen: FAT kann sie nicht speichern"},
	UIErrBrowseRemote: {English: "files can be browsed only in sets on a USB disk or NFS share: restore the set, or copy it to a USB disk",
		German: "Dateien lassen sich nur in Sicherungen auf einem USB-Datenträger oder NFS-Share durchsuchen: die Sicherung zurückspielen oder auf einen USB-Datenträger kopieren"},
	UIErrBrowseZipped: {English: "this set is a compressed image (ddz) or compressed per partition: browsing it would first unpack all of it into the recovery's memory; restore it, or use 'backupctl mount' on a computer",
		German: "diese Sicherung ist ein komprimiertes Abbild (ddz) oder je Partition komprimiert: zum Durchsuchen müsste sie erst ganz in den Speicher der Recovery entpackt werden; sie zurückspielen oder 'backupctl mount' auf einem Rechner benutzen"},
	UIErrDestBusy: {English: "the partition is in use (is it the disk the backup is read from?): choose another one",
		German: "die Partition ist in Benutzung (ist es der Datenträger, von dem die Sicherung gelesen wird?): eine andere wählen"},
}
