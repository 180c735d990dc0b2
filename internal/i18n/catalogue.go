package i18n

// Message IDs. The English text is the reference; verbs (%s, %d, %v) must
// appear in the same order in every language.
const (
	BackupComplete      ID = "backup.complete"
	BackupCancelled     ID = "backup.cancelled"
	BackupFailed        ID = "backup.failed"
	BackupFailedLeft    ID = "backup.failed-left"
	BackupCancelledLeft ID = "backup.cancelled-left"
	BackupPreflight     ID = "backup.preflight"
	BackupLocked        ID = "backup.locked"
	BackupNotVerified   ID = "backup.not-verified"
	BackupHookAborted   ID = "backup.hook-aborted"
	BackupServicesDown  ID = "backup.services-down"
	BackupFailedLog     ID = "backup.failed-log"
	BackupNoRaspiBackup ID = "backup.no-raspibackup"
	RetentionDeleted    ID = "retention.deleted"
	RetentionNothing    ID = "retention.nothing"
	RetentionFailed     ID = "retention.failed"
	NotifyFailed        ID = "notify.failed"
	SubjectOK           ID = "notify.subject-ok"
	SubjectFailed       ID = "notify.subject-failed"
	SubjectTestOK       ID = "notify.subject-test-ok"
	SubjectStarted      ID = "notify.subject-started"
	BackupStartedBody   ID = "notify.started-body"
	SubjectTestFailed   ID = "notify.subject-test-failed"
	ServicesRecovered   ID = "services.recovered"
	ServicesNothing     ID = "services.nothing"
	StatusHost          ID = "status.host"
	StatusLastRun       ID = "status.last-run"
	StatusLastRunNone   ID = "status.last-run-none"
	StatusResultOK      ID = "status.result-ok"
	StatusResultFailed  ID = "status.result-failed"
	StatusSets          ID = "status.sets"
	StatusNextRun       ID = "status.next-run"
	StatusNoTimer       ID = "status.no-timer"
	StatusRestoreDue    ID = "status.restore-due"
	StatusRestoreNever  ID = "status.restore-never"
	StatusRestoreOK     ID = "status.restore-ok"
	StatusRestoreMarked ID = "status.restore-marked"
	StatusRestoreFailed ID = "status.restore-failed"
	ScheduleInstalled   ID = "schedule.installed"
	ScheduleRemoved     ID = "schedule.removed"
)

// catalogue maps each ID to its text per language. It is constant data,
// never changed at run time.
var catalogue = map[ID]map[Lang]string{
	BackupComplete: {
		English: "backup complete: %s (%d files, %s in payload and metadata files)",
		German:  "Sicherung fertig: %s (%d Dateien, %s in Nutz- und Metadaten)",
	},
	BackupNoRaspiBackup: {
		English: "note: raspiBackup cannot restore this set (%s); backupctl and the recovery image can",
		German:  "Hinweis: raspiBackup kann diesen Satz nicht zurückspielen (%s); backupctl und das Recovery-Image können das",
	},
	BackupCancelled: {
		English: "backup cancelled; the partial set was removed: %v",
		German:  "Sicherung abgebrochen; der unvollständige Satz wurde entfernt: %v",
	},
	BackupFailed: {
		English: "backup failed; the partial set was removed, older sets are untouched: %v",
		German:  "Sicherung fehlgeschlagen; der unvollständige Satz wurde entfernt, ältere Sätze sind unberührt: %v",
	},
	BackupFailedLeft: {
		English: "backup failed; older sets are untouched, the partial set could not be removed and stays in %s until the next run: %v",
		German:  "Sicherung fehlgeschlagen; ältere Sätze sind unberührt, der unvollständige Satz ließ sich nicht entfernen und bleibt bis zum nächsten Lauf in %s: %v",
	},
	BackupCancelledLeft: {
		English: "backup cancelled; the partial set could not be removed and stays in %s until the next run: %v",
		German:  "Sicherung abgebrochen; der unvollständige Satz ließ sich nicht entfernen und bleibt bis zum nächsten Lauf in %s: %v",
	},
	BackupPreflight: {
		English: "check before writing failed, nothing was written: %v",
		German:  "Prüfung vor dem Schreiben fehlgeschlagen, nichts wurde geschrieben: %v",
	},
	BackupLocked: {
		English: "%v; try again when it has finished",
		German:  "%v; bitte nach deren Ende erneut versuchen",
	},
	BackupNotVerified: {
		English: "the new set did not verify; it was removed and no older set was deleted: %v",
		German:  "Der neue Satz ließ sich nicht prüfen; er wurde entfernt und kein älterer Satz gelöscht: %v",
	},
	BackupHookAborted: {
		English: "a hook stopped the backup before anything was written: %v",
		German:  "Ein Hook hat die Sicherung beendet, bevor etwas geschrieben wurde: %v",
	},
	BackupServicesDown: {
		English: "the backup is complete (%s), but a service did not start again: %v",
		German:  "Die Sicherung ist fertig (%s), aber ein Dienst ließ sich nicht wieder starten: %v",
	},
	BackupFailedLog: {
		English: "the log of the failed run is %s",
		German:  "Das Protokoll des fehlgeschlagenen Laufs ist %s",
	},
	RetentionDeleted: {
		English: "retention: sets deleted %d, kept %d",
		German:  "Aufbewahrung: Sätze gelöscht %d, behalten %d",
	},
	RetentionNothing: {
		English: "retention: nothing to delete, sets kept %d",
		German:  "Aufbewahrung: nichts zu löschen, Sätze behalten %d",
	},
	RetentionFailed: {
		English: "retention failed after a complete backup (%s): %v",
		German:  "Aufbewahrung nach vollständiger Sicherung (%s) fehlgeschlagen: %v",
	},
	NotifyFailed: {
		English: "warning: notification failed: %v",
		German:  "Warnung: Benachrichtigung fehlgeschlagen: %v",
	},
	SubjectOK: {
		English: "backupctl: backup of %s succeeded",
		German:  "backupctl: Sicherung von %s erfolgreich",
	},
	SubjectFailed: {
		English: "backupctl: backup of %s FAILED",
		German:  "backupctl: Sicherung von %s FEHLGESCHLAGEN",
	},
	SubjectStarted: {
		English: "backupctl: backup of %s started",
		German:  "backupctl: Sicherung von %s gestartet",
	},
	BackupStartedBody: {
		English: "writing %s into %s",
		German:  "schreibe %s nach %s",
	},
	SubjectTestOK: {
		English: "backupctl: restore test of %s passed",
		German:  "backupctl: Probe-Wiederherstellung von %s erfolgreich",
	},
	SubjectTestFailed: {
		English: "backupctl: restore test of %s FAILED",
		German:  "backupctl: Probe-Wiederherstellung von %s FEHLGESCHLAGEN",
	},
	ServicesRecovered: {
		English: "started %d services that a killed backup (PID %d) had stopped",
		German:  "%d Dienste gestartet, die eine abgebrochene Sicherung (PID %d) gestoppt hatte",
	},
	ServicesNothing: {
		English: "no services left stopped by a backup",
		German:  "keine von einer Sicherung gestoppten Dienste",
	},
	StatusHost: {
		English: "host %s",
		German:  "Rechner %s",
	},
	StatusLastRun: {
		English: "  last run:      %s (%s)",
		German:  "  letzter Lauf:  %s (%s)",
	},
	StatusLastRunNone: {
		English: "  last run:      none recorded",
		German:  "  letzter Lauf:  keiner aufgezeichnet",
	},
	StatusResultOK: {
		English: "  result:        ok, %s",
		German:  "  Ergebnis:      ok, %s",
	},
	StatusResultFailed: {
		English: "  result:        FAILED: %s",
		German:  "  Ergebnis:      FEHLGESCHLAGEN: %s",
	},
	StatusSets: {
		English: "  sets:          %s",
		German:  "  Sätze:         %s",
	},
	StatusNextRun: {
		English: "next timer run: %s",
		German:  "nächster Lauf:  %s",
	},
	StatusNoTimer: {
		English: "next timer run: none (no backupctl.timer active)",
		German:  "nächster Lauf:  keiner (kein backupctl.timer aktiv)",
	},
	StatusRestoreDue: {
		English: "  REMINDER: the last test restore was %s, more than %d months ago; run `backupctl restore-test` (or restore onto a spare card)",
		German:  "  ERINNERUNG: die letzte Probe-Wiederherstellung war am %s, vor mehr als %d Monaten; `backupctl restore-test` ausführen (oder auf eine Ersatzkarte wiederherstellen)",
	},
	StatusRestoreNever: {
		English: "  REMINDER: no test restore recorded; a backup is only as good as its restore: run `backupctl restore-test` (or restore onto a spare card)",
		German:  "  ERINNERUNG: keine Probe-Wiederherstellung aufgezeichnet; eine Sicherung ist nur so gut wie ihre Wiederherstellung: `backupctl restore-test` ausführen (oder auf eine Ersatzkarte wiederherstellen)",
	},
	StatusRestoreOK: {
		English: "  last test restore: %s",
		German:  "  letzte Probe-Wiederherstellung: %s",
	},
	StatusRestoreFailed: {
		English: "  LAST TEST RESTORE FAILED: %s: %s; run `backupctl restore-test` on it to see the details",
		German:  "  LETZTE PROBE-WIEDERHERSTELLUNG FEHLGESCHLAGEN: %s: %s; `backupctl restore-test` darauf zeigt die Einzelheiten",
	},
	StatusRestoreMarked: {
		English: "recorded a test restore of %s at %s",
		German:  "Probe-Wiederherstellung von %s am %s aufgezeichnet",
	},
	ScheduleInstalled: {
		English: "installed %s and %s (%s)",
		German:  "%s und %s installiert (%s)",
	},
	ScheduleRemoved: {
		English: "removed %s and %s",
		German:  "%s und %s entfernt",
	},
}
