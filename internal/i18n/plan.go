package i18n

// The restore and clone plans (internal/restore Plan.Text, ClonePlan.Text):
// what a user reads before he types the target's name to confirm that it
// is overwritten, so he must be able to read every sentence of it. Paths,
// ids, sizes, tool names and their options (e2fsck -fy, rsync -aHAX) are
// arguments or stay as they are in both languages. The lines that end a
// restore or clone are here too: the same user reads them next.
const (
	PlanRestoreHead     ID = "plan.restore-head"
	PlanOnto            ID = "plan.onto"
	PlanResizedFrom     ID = "plan.resized-from"
	PlanKindImage       ID = "plan.kind-image"
	PlanKindTar         ID = "plan.kind-tar"
	PlanKindRsync       ID = "plan.kind-rsync"
	PlanKindPartition   ID = "plan.kind-partition"
	PlanKindNoManifest  ID = "plan.kind-no-manifest"
	PlanTargetDisk      ID = "plan.target-disk"
	PlanTargetFile      ID = "plan.target-file"
	PlanTargetNewFile   ID = "plan.target-new-file"
	PlanNowOnTarget     ID = "plan.now-on-target"
	PlanSourceTable     ID = "plan.source-table"
	PlanNewTable        ID = "plan.new-table"
	PlanNoTable         ID = "plan.no-table"
	PlanTableHead       ID = "plan.table-head"
	PlanTableRow        ID = "plan.table-row"
	PlanGrownFrom       ID = "plan.grown-from"
	PlanShrunkFrom      ID = "plan.shrunk-from"
	PlanMovedFrom       ID = "plan.moved-from"
	PlanSteps           ID = "plan.steps"
	PlanIdentifiers     ID = "plan.identifiers"
	PlanKeptIDs         ID = "plan.kept-ids"
	PlanDiskID          ID = "plan.disk-id"
	PlanNotRecorded     ID = "plan.not-recorded"
	PlanBootConfig      ID = "plan.boot-config"
	PlanRootStays       ID = "plan.root-stays"
	PlanFstabPreview    ID = "plan.fstab-preview"
	PlanSpace           ID = "plan.space"
	PlanRootData        ID = "plan.root-data"
	PlanNeeds           ID = "plan.needs"
	PlanFits            ID = "plan.fits"
	PlanNote            ID = "plan.note"
	PlanLabel           ID = "plan.label"
	PlanTheSetsTree     ID = "plan.the-sets-tree"
	PlanBootPartition   ID = "plan.boot-partition"
	PlanRootFilesystem  ID = "plan.root-filesystem"
	PlanVerify          ID = "plan.verify"
	PlanDryRun          ID = "plan.dry-run"
	PlanOverwritten     ID = "plan.overwritten"
	PlanTypeName        ID = "plan.type-name"
	RestoreDone         ID = "restore.done"
	RestoreDoneNotVer   ID = "restore.done-not-verified"
	RestoreWarning      ID = "restore.warning"
	CloneDone           ID = "clone.done"
	CloneSynced         ID = "clone.synced"
	StepWriteImage      ID = "plan.step-write-image"
	StepWriteImageRaw   ID = "plan.step-write-image-raw"
	StepGrowRoot        ID = "plan.step-grow-root"
	StepNewImageIDs     ID = "plan.step-new-image-ids"
	StepCopyBootImg     ID = "plan.step-copy-boot-img"
	StepBootTar         ID = "plan.step-boot-tar"
	StepFormatRoot      ID = "plan.step-format-root"
	StepExtractTar      ID = "plan.step-extract-tar"
	StepRsyncTree       ID = "plan.step-rsync-tree"
	StepCheckTar        ID = "plan.step-check-tar"
	StepFsck            ID = "plan.step-fsck"
	StepLeave           ID = "plan.step-leave"
	StepFormatTree      ID = "plan.step-format-tree"
	StepFormatFill      ID = "plan.step-format-fill"
	StepRewriteIDs      ID = "plan.step-rewrite-ids"
	StepTableLast       ID = "plan.step-table-last"
	StepTree            ID = "plan.step-tree"
	StepTreeMeta        ID = "plan.step-tree-meta"
	StepShrinkHead      ID = "plan.step-shrink-head"
	StepShrinkInPlace   ID = "plan.step-shrink-in-place"
	StepShrinkOnTarget  ID = "plan.step-shrink-on-target"
	StepShrinkScratch   ID = "plan.step-shrink-scratch"
	StepShrinkCopy      ID = "plan.step-shrink-copy"
	StepShrinkGrow      ID = "plan.step-shrink-grow"
	StepNewBootSerial   ID = "plan.step-new-boot-serial"
	NoteNoManifestTar   ID = "plan.note-no-manifest-tar"
	NoteNoManifestTree  ID = "plan.note-no-manifest-tree"
	NoteNoRootUUID      ID = "plan.note-no-root-uuid"
	NoteFstabNotFile    ID = "plan.note-fstab-not-file"
	NoteNoManifestDD    ID = "plan.note-no-manifest-dd"
	NoteNoManifestDDZ   ID = "plan.note-no-manifest-ddz"
	NoteImageLarger     ID = "plan.note-image-larger"
	NoteNoImageSize     ID = "plan.note-no-image-size"
	NoteTailLeftOut     ID = "plan.note-tail-left-out"
	NoteNotRestored     ID = "plan.note-not-restored"
	NoteNoManifestParts ID = "plan.note-no-manifest-parts"
	NoteNetworkFS       ID = "plan.note-network-fs"
	NotePartLeft        ID = "plan.note-part-left"
	NoteBootOrder       ID = "plan.note-boot-order"
	NoteLossListing     ID = "plan.note-loss-listing"
	NoteLossOwners      ID = "plan.note-loss-owners"
	NoteLossModes       ID = "plan.note-loss-modes"
	NoteLossMtimes      ID = "plan.note-loss-mtimes"
	NoteLossXattrs      ID = "plan.note-loss-xattrs"
	NoteLossHardlinks   ID = "plan.note-loss-hardlinks"
	NoteLossDevices     ID = "plan.note-loss-devices"
	PlanTheTree         ID = "plan.the-tree"
	CloneHead           ID = "plan.clone-head"
	CloneHeadExternal   ID = "plan.clone-head-external"
	CloneRunning        ID = "plan.clone-running"
	CloneSync           ID = "plan.clone-sync"
	CloneFull           ID = "plan.clone-full"
	CloneNowOn          ID = "plan.clone-now-on"
	CloneTargetTable    ID = "plan.clone-target-table"
	CloneRootSource     ID = "plan.clone-root-source"
	CloneRootTarget     ID = "plan.clone-root-target"
	CloneIdentifiers    ID = "plan.clone-identifiers"
	CloneRootDiskID     ID = "plan.clone-root-disk-id"
	CloneRootDiskPart   ID = "plan.clone-root-disk-part"
	CloneBootConfig     ID = "plan.clone-boot-config"
	CloneSpace          ID = "plan.clone-space"
	CloneWhyNoTable     ID = "plan.clone-why-no-table"
	CloneWhyOtherParts  ID = "plan.clone-why-other-parts"
	CloneWhyRootNoTable ID = "plan.clone-why-root-no-table"
	CloneWhyRootOther   ID = "plan.clone-why-root-other"
	CloneWhyNoExt4      ID = "plan.clone-why-no-ext4"
	CloneWhyNoMarker    ID = "plan.clone-why-no-marker"
	CloneWhyOtherSource ID = "plan.clone-why-other-source"
)

var planCatalogue = map[ID]map[Lang]string{
	PlanRestoreHead: {
		English: "Restore %s (%s)",
		German:  "Wiederherstellen: %s (%s)",
	},
	PlanOnto: {
		English: "onto    %s",
		German:  "auf     %s",
	},
	PlanResizedFrom: {
		English: "        (resized from %s)",
		German:  "        (Größe geändert, vorher %s)",
	},
	PlanKindImage:     {English: "disk image", German: "Disk-Abbild"},
	PlanKindTar:       {English: "tar archive", German: "tar-Archiv"},
	PlanKindRsync:     {English: "rsync tree", German: "rsync-Verzeichnisbaum"},
	PlanKindPartition: {English: "partition-oriented", German: "partitionsweise"},
	PlanKindNoManifest: {
		English: "raspiBackup set without manifest",
		German:  "raspiBackup-Satz ohne Manifest",
	},
	PlanTargetDisk:    {English: "disk %s, %s", German: "Disk %s, %s"},
	PlanTargetFile:    {English: "image file %s, %s", German: "Abbilddatei %s, %s"},
	PlanTargetNewFile: {English: "new image file %s, %s", German: "neue Abbilddatei %s, %s"},
	PlanNowOnTarget: {
		English: "Now on the target (will be overwritten):",
		German:  "Jetzt auf dem Ziel (wird überschrieben):",
	},
	PlanSourceTable: {English: "Source partition table:", German: "Partitionstabelle der Quelle:"},
	PlanNewTable:    {English: "New partition table:", German: "Neue Partitionstabelle:"},
	PlanNoTable:     {English: "  (none)", German: "  (keine)"},
	PlanTableHead:   {English: "  %s, %s, disk id %s", German: "  %s, %s, Disk-ID %s"},
	PlanTableRow: {
		English: "  %2d  start %10s  size %10s  type %-4s",
		German:  "  %2d  Beginn %10s  Größe %10s  Typ %-4s",
	},
	PlanGrownFrom:   {English: "  (grown from %s)", German: "  (vergrößert, vorher %s)"},
	PlanShrunkFrom:  {English: "  (shrunk from %s)", German: "  (verkleinert, vorher %s)"},
	PlanMovedFrom:   {English: "  (moved from %s)", German: "  (verschoben, vorher bei %s)"},
	PlanSteps:       {English: "Steps:", German: "Schritte:"},
	PlanIdentifiers: {English: "Identifiers:", German: "Kennungen:"},
	PlanKeptIDs: {
		English: "  kept as in the source (--keep-ids): disk id, PARTUUIDs, filesystem UUIDs",
		German:  "  wie in der Quelle behalten (--keep-ids): Disk-ID, PARTUUIDs, Dateisystem-UUIDs",
	},
	PlanDiskID:      {English: "  disk id       %s -> %s", German: "  Disk-ID       %s -> %s"},
	PlanNotRecorded: {English: "(not recorded)", German: "(nicht aufgezeichnet)"},
	PlanBootConfig:  {English: "Boot configuration:", German: "Boot-Konfiguration:"},
	PlanRootStays:   {English: "%s: root=%s stays", German: "%s: root=%s bleibt"},
	PlanFstabPreview: {
		English: "/etc/fstab: entries for / and /boot* naming PARTUUID= or UUID= get %s and %s",
		German:  "/etc/fstab: Einträge für / und /boot* mit PARTUUID= oder UUID= bekommen %s und %s",
	},
	PlanSpace:    {English: "Space:", German: "Platz:"},
	PlanRootData: {English: "  root data about %s", German: "  Daten des Root-Dateisystems etwa %s"},
	PlanNeeds: {
		English: "  the target needs at least %s (%d bytes); it has %s",
		German:  "  das Ziel braucht mindestens %s (%d Bytes); es hat %s",
	},
	PlanFits: {
		English: "  the target has %s; the data fits (the source's root partition was no larger)",
		German:  "  das Ziel hat %s; die Daten passen (die Root-Partition der Quelle war nicht größer)",
	},
	PlanNote:           {English: "  note: %s", German: "  Hinweis: %s"},
	PlanLabel:          {English: " label %s", German: ", Bezeichnung %s"},
	PlanTheSetsTree:    {English: "the set's tree", German: "dem Verzeichnisbaum des Satzes"},
	PlanBootPartition:  {English: "boot partition", German: "Boot-Partition"},
	PlanRootFilesystem: {English: "root filesystem", German: "Root-Dateisystem"},
	PlanVerify:         {English: "verify %s", German: "%s prüfen"},
	PlanDryRun: {
		English: "Dry run (-F): nothing was written.",
		German:  "Probelauf (-F): nichts wurde geschrieben.",
	},
	PlanOverwritten: {
		English: "Everything on %s will be overwritten.",
		German:  "Alles auf %s wird überschrieben.",
	},
	PlanTypeName: {
		English: "Type %q to go on: ",
		German:  "Zum Fortfahren %q eintippen: ",
	},
	RestoreDone: {
		English: "Restored %s onto %s in %s (%s written), checked.",
		German:  "%s auf %s wiederhergestellt in %s (%s geschrieben), geprüft.",
	},
	RestoreDoneNotVer: {
		English: "Restored %s onto %s in %s (%s written), NOT verified (see the log).",
		German:  "%s auf %s wiederhergestellt in %s (%s geschrieben), NICHT geprüft (siehe Protokoll).",
	},
	RestoreWarning: {English: "  warning: %s", German: "  Warnung: %s"},
	CloneDone: {
		English: "Cloned onto %s in %s: root %s in %d changed files, boot partition %s written.",
		German:  "Auf %s geklont in %s: Root %s in %d geänderten Dateien, Boot-Partition %s geschrieben.",
	},
	CloneSynced: {
		English: "Synced onto %s in %s: root %s in %d changed files, boot partition %s written.",
		German:  "Auf %s abgeglichen in %s: Root %s in %d geänderten Dateien, Boot-Partition %s geschrieben.",
	},

	StepWriteImage: {
		English: "write %s onto the whole target; the first MiB (partition table) only after the whole image matched its SHA-256 and size in the manifest",
		German:  "%s auf das ganze Ziel schreiben; das erste MiB (Partitionstabelle) erst, wenn das ganze Abbild zu SHA-256 und Größe im Manifest passt",
	},
	StepWriteImageRaw: {
		English: "write %s onto the whole target (first MiB last)",
		German:  "%s auf das ganze Ziel schreiben (das erste MiB zuletzt)",
	},
	StepGrowRoot: {
		English: "grow partition %d from %s to %s and its filesystem (resize2fs)",
		German:  "Partition %d von %s auf %s vergrößern, ebenso ihr Dateisystem (resize2fs)",
	},
	StepNewImageIDs: {
		English: "give the root filesystem a new UUID (tune2fs -U) and the boot filesystem a new serial",
		German:  "dem Root-Dateisystem eine neue UUID (tune2fs -U) und dem Boot-Dateisystem eine neue Seriennummer geben",
	},
	StepCopyBootImg: {
		English: "copy %s into partition %d (boot)",
		German:  "%s in Partition %d (Boot) kopieren",
	},
	StepBootTar: {
		English: "format partition %d FAT32 and extract %s into it",
		German:  "Partition %d mit FAT32 formatieren und %s darin auspacken",
	},
	StepFormatRoot: {
		English: "format partition %d ext4 (%s%s)",
		German:  "Partition %d mit ext4 formatieren (%s%s)",
	},
	StepExtractTar: {
		English: "extract %s into it (GNU tar, numeric owners, xattrs, ACLs)",
		German:  "%s darin auspacken (GNU tar, numerische Besitzer, xattrs, ACLs)",
	},
	StepRsyncTree: {
		English: "copy the tree of %s into it (rsync -aHAX)",
		German:  "den Verzeichnisbaum von %s hineinkopieren (rsync -aHAX)",
	},
	StepCheckTar: {
		English: "check %s against its SHA-256 in the manifest (hashed while it is extracted)",
		German:  "%s gegen seine SHA-256 im Manifest prüfen (beim Auspacken berechnet)",
	},
	StepFsck: {
		English: "e2fsck -fy the root filesystem",
		German:  "das Root-Dateisystem mit e2fsck -fy prüfen",
	},
	StepLeave: {
		English: "leave partition %d unformatted (not in the backup)",
		German:  "Partition %d unformatiert lassen (nicht in der Sicherung)",
	},
	StepFormatTree: {
		English: "format partition %d %s and %s",
		German:  "Partition %d mit %s formatieren und %s",
	},
	StepFormatFill: {
		English: "format partition %d %s and fill it from %s",
		German:  "Partition %d mit %s formatieren und aus %s füllen",
	},
	StepRewriteIDs: {
		English: "rewrite root= in cmdline.txt and the / and /boot entries of /etc/fstab",
		German:  "root= in cmdline.txt und die Einträge für / und /boot in /etc/fstab umschreiben",
	},
	StepTableLast: {
		English: "write the partition table (last, so an interrupted restore leaves no half-valid disk)",
		German:  "die Partitionstabelle schreiben (zuletzt, damit eine abgebrochene Wiederherstellung keine halb gültige Disk hinterlässt)",
	},
	StepTree: {
		English: "fill it file by file from %s: %d files (%s), each checked against its SHA-256 in %s while it is copied",
		German:  "sie Datei für Datei aus %s füllen: %d Dateien (%s), jede beim Kopieren gegen ihre SHA-256 in %s geprüft",
	},
	StepTreeMeta: {
		English: "; owners, modes, times, xattrs, ACLs, capabilities, symlinks, hardlinks and device nodes from %s and %s",
		German:  "; Besitzer, Rechte, Zeiten, xattrs, ACLs, Capabilities, symbolische Links, harte Links und Gerätedateien aus %s und %s",
	},
	StepShrinkHead: {
		English: "write %s up to the root partition (%s: partition table, boot partition as is); the first MiB last, after the whole image was read and checked",
		German:  "%s bis zur Root-Partition schreiben (%s: Partitionstabelle, Boot-Partition unverändert); das erste MiB zuletzt, nachdem das ganze Abbild gelesen und geprüft ist",
	},
	StepShrinkInPlace: {
		English: "mount the image's root filesystem (partition %d, %s) read-only where it lies in the set",
		German:  "das Root-Dateisystem des Abbilds (Partition %d, %s) dort, wo es im Satz liegt, nur lesend einhängen",
	},
	StepShrinkOnTarget: {
		English: "make a temporary ext4 in the last %s of the target's partition %d (%s has too little room) and decompress the image's root filesystem (partition %d, %s) into a sparse file there (about %s), then mount it read-only",
		German:  "in den letzten %s der Partition %d des Ziels ein vorläufiges ext4 anlegen (in %s ist zu wenig Platz), das Root-Dateisystem des Abbilds (Partition %d, %s) dort in eine Sparse-Datei entpacken (etwa %s) und sie nur lesend einhängen",
	},
	StepShrinkScratch: {
		English: "decompress the image's root filesystem (partition %d, %s) into a sparse scratch file in %s (about %s), then mount it read-only",
		German:  "das Root-Dateisystem des Abbilds (Partition %d, %s) in eine Sparse-Arbeitsdatei in %s entpacken (etwa %s) und sie nur lesend einhängen",
	},
	StepShrinkCopy: {
		English: "shrink the root: format partition %d ext4 (%s instead of %s%s) and copy the image's files into it (rsync -aHAX --numeric-ids: owners, modes, times, symlinks, hardlinks, xattrs, ACLs, device nodes)",
		German:  "Root verkleinern: Partition %d mit ext4 formatieren (%s statt %s%s) und die Dateien des Abbilds hineinkopieren (rsync -aHAX --numeric-ids: Besitzer, Rechte, Zeiten, symbolische Links, harte Links, xattrs, ACLs, Gerätedateien)",
	},
	StepShrinkGrow: {
		English: "grow the root filesystem over the temporary one to %s (resize2fs)",
		German:  "das Root-Dateisystem über das vorläufige hinweg auf %s vergrößern (resize2fs)",
	},
	StepNewBootSerial: {
		English: "give the boot filesystem a new serial",
		German:  "dem Boot-Dateisystem eine neue Seriennummer geben",
	},

	NoteNoManifestTar: {
		English: "raspiBackup set without manifest: the archive has no checksum; its compression check and its end-of-archive marker are checked before the partition table is written",
		German:  "raspiBackup-Satz ohne Manifest: das Archiv hat keine Prüfsumme; seine Kompressions-Prüfsumme und seine Ende-Markierung werden geprüft, bevor die Partitionstabelle geschrieben wird",
	},
	NoteNoManifestTree: {
		English: "raspiBackup set without manifest: the tree has no checksums; it is copied as it is",
		German:  "raspiBackup-Satz ohne Manifest: der Verzeichnisbaum hat keine Prüfsummen; er wird so kopiert, wie er ist",
	},
	NoteNoRootUUID: {
		English: "the set does not record the root filesystem's UUID (nothing in cmdline.txt or fstab names it): it gets a new one",
		German:  "der Satz hält die UUID des Root-Dateisystems nicht fest (weder cmdline.txt noch fstab nennen sie): es bekommt eine neue",
	},
	NoteFstabNotFile: {
		English: "the set's /etc/fstab is not a regular file; it is not rewritten",
		German:  "/etc/fstab des Satzes ist keine gewöhnliche Datei; sie wird nicht umgeschrieben",
	},
	NoteNoManifestDD: {
		English: "raspiBackup image without manifest: it has no checksum, so only its size can be checked (it reaches the end of the last partition); damage inside it would not be noticed",
		German:  "raspiBackup-Abbild ohne Manifest: es hat keine Prüfsumme, daher kann nur seine Größe geprüft werden (es reicht bis zum Ende der letzten Partition); Schäden darin fielen nicht auf",
	},
	NoteNoManifestDDZ: {
		English: "raspiBackup image without manifest: no checksum; the %s stream's own check and its length (at least to the end of the last partition) are checked before the partition table is written",
		German:  "raspiBackup-Abbild ohne Manifest: keine Prüfsumme; die eigene Prüfsumme des %s-Stroms und seine Länge (mindestens bis zum Ende der letzten Partition) werden geprüft, bevor die Partitionstabelle geschrieben wird",
	},
	NoteImageLarger: {
		English: "the image is larger than the target; its partitions end before the target's end, so only unused space is left out",
		German:  "das Abbild ist größer als das Ziel; seine Partitionen enden vor dem Ende des Ziels, also fällt nur ungenutzter Platz weg",
	},
	NoteNoImageSize: {
		English: "the image's uncompressed size is not recorded; data after the last partition is not written if the target is smaller",
		German:  "die unkomprimierte Größe des Abbilds ist nicht festgehalten; Daten hinter der letzten Partition werden nicht geschrieben, wenn das Ziel kleiner ist",
	},
	NoteTailLeftOut: {
		English: "the last %s of the image lie after the last partition and are left out",
		German:  "die letzten %s des Abbilds liegen hinter der letzten Partition und fallen weg",
	},
	NoteNotRestored: {
		English: "partition %d (the %s) is not restored",
		German:  "Partition %d (%s) wird nicht wiederhergestellt",
	},
	NoteNoManifestParts: {
		English: "raspiBackup set without manifest: the payloads have no checksums; archives are checked for their compression check and end-of-archive marker before the partition table is written",
		German:  "raspiBackup-Satz ohne Manifest: die Nutzdaten haben keine Prüfsummen; Archive werden auf ihre Kompressions-Prüfsumme und Ende-Markierung geprüft, bevor die Partitionstabelle geschrieben wird",
	},
	NoteNetworkFS: {
		English: "the set is read over %s and has no extras file (<host>-backup.extras.list), so rsync copies what the share gives: " +
			"NFSv3 and most SMB and FUSE mounts carry no xattrs, so ACLs and file capabilities (ping's cap_net_raw) may be missing after the restore; " +
			"to keep them, restore from a copy made on the server with rsync -aHAX onto a USB disk",
		German: "der Satz wird über %s gelesen und hat keine Extras-Datei (<host>-backup.extras.list), also kopiert rsync, was die Freigabe liefert: " +
			"NFSv3 und die meisten SMB- und FUSE-Mounts tragen keine xattrs, daher können ACLs und Datei-Capabilities (cap_net_raw von ping) nach der Wiederherstellung fehlen; " +
			"um sie zu behalten, aus einer Kopie wiederherstellen, die auf dem Server mit rsync -aHAX auf eine USB-Disk gemacht wurde",
	},
	NoteBootOrder: {
		English: "this %s boots from %s only when its bootloader tries NVMe first: " +
			"set BOOT_ORDER=0xf416 (NVMe, then SD card, then USB) with `sudo rpi-eeprom-config --edit`, " +
			"or in raspi-config: Advanced Options > Boot Order > NVMe/USB Boot",
		German: "dieser %s startet von %s nur, wenn sein Bootloader NVMe zuerst versucht: " +
			"BOOT_ORDER=0xf416 (NVMe, dann SD-Karte, dann USB) mit `sudo rpi-eeprom-config --edit` setzen, " +
			"oder in raspi-config: Advanced Options > Boot Order > NVMe/USB Boot",
	},
	NotePartLeft: {
		English: "partition %d is left unformatted: the set holds no payload for it, or it was not selected",
		German:  "Partition %d bleibt unformatiert: der Satz enthält nichts für sie, oder sie wurde nicht ausgewählt",
	},
	NoteLossListing: {
		English: "%s has no listing (a raspiBackup rsync set) and is read from an SFTP server: %d entries restored with what the server reports",
		German:  "%s hat keine Liste (ein rsync-Satz von raspiBackup) und wird von einem SFTP-Server gelesen: %d Einträge werden mit dem wiederhergestellt, was der Server meldet",
	},
	NoteLossOwners: {
		English: "owners: the server reports uid/gid numerically: kept",
		German:  "Besitzer: der Server meldet uid/gid als Zahlen: bleiben erhalten",
	},
	NoteLossModes: {
		English: "modes: permission bits with setuid, setgid and sticky: kept",
		German:  "Rechte: Rechte-Bits mit setuid, setgid und sticky: bleiben erhalten",
	},
	NoteLossMtimes: {
		English: "mtimes: kept in whole seconds (SFTP carries no fractions; a time before 1970 arrives as one after 2038)",
		German:  "Änderungszeiten: in ganzen Sekunden erhalten (SFTP überträgt keine Bruchteile; eine Zeit vor 1970 kommt als eine nach 2038 an)",
	},
	NoteLossXattrs: {
		English: "xattrs, ACLs and file capabilities (e.g. ping's cap_net_raw): not readable over SFTP: lost for every file that had them",
		German:  "xattrs, ACLs und Datei-Capabilities (z. B. cap_net_raw von ping): über SFTP nicht lesbar: verloren für jede Datei, die sie hatte",
	},
	NoteLossHardlinks: {
		English: "hardlinks: SFTP does not show which files share an inode: each is restored as a separate file",
		German:  "harte Links: SFTP zeigt nicht, welche Dateien sich einen Inode teilen: jede wird als eigene Datei wiederhergestellt",
	},
	NoteLossDevices: {
		English: "device nodes: the server reports no device numbers: %d not restored (%s%s)",
		German:  "Gerätedateien: der Server meldet keine Gerätenummern: %d nicht wiederhergestellt (%s%s)",
	},
	PlanTheTree: {English: "the tree", German: "der Verzeichnisbaum"},

	CloneHead: {
		English: "Clone %s\nonto  %s",
		German:  "Klonen: %s\nauf     %s",
	},
	CloneHeadExternal: {
		English: "Clone %s: boot partition %d on %s, root partition %d on %s (external root)\nboot onto  %s (the boot partition alone)\nroot onto  %s",
		German:  "Klonen: %s: Boot-Partition %d auf %s, Root-Partition %d auf %s (externes Root)\nBoot auf   %s (nur die Boot-Partition)\nRoot auf   %s",
	},
	CloneRunning: {English: " (the running system)", German: " (das laufende System)"},
	CloneSync: {
		English: "The target is a clone of this source with the same layout: only changes are copied\n(rsync --delete of the root, changed blocks of the boot partition); nothing is formatted.",
		German:  "Das Ziel ist ein Klon dieser Quelle mit derselben Aufteilung: nur Änderungen werden kopiert\n(rsync --delete des Root, geänderte Blöcke der Boot-Partition); nichts wird formatiert.",
	},
	CloneFull:        {English: "Full clone (%s).", German: "Vollständiger Klon (%s)."},
	CloneNowOn:       {English: "Now on %s (will be overwritten):", German: "Jetzt auf %s (wird überschrieben):"},
	CloneTargetTable: {English: "Target partition table:", German: "Partitionstabelle des Ziels:"},
	CloneRootSource: {
		English: "Root source partition table (%s):",
		German:  "Partitionstabelle der Root-Quelle (%s):",
	},
	CloneRootTarget: {
		English: "Root target partition table (%s):",
		German:  "Partitionstabelle des Root-Ziels (%s):",
	},
	CloneIdentifiers: {
		English: "Identifiers (the clone never shares ids with its source):",
		German:  "Kennungen (der Klon teilt nie Kennungen mit seiner Quelle):",
	},
	CloneRootDiskID:   {English: "  root disk id  %s -> %s", German: "  Root-Disk-ID  %s -> %s"},
	CloneRootDiskPart: {English: "root disk p%d ", German: "Root-Disk p%d "},
	CloneBootConfig: {
		English: "Boot configuration: root= in cmdline.txt and the / and /boot entries of /etc/fstab name the clone's ids.",
		German:  "Boot-Konfiguration: root= in cmdline.txt und die Einträge für / und /boot in /etc/fstab nennen die Kennungen des Klons.",
	},
	CloneSpace: {
		English: "Space: root data about %s; the root's target needs at least %s, it has %s.",
		German:  "Platz: Daten des Root etwa %s; das Ziel des Root braucht mindestens %s, es hat %s.",
	},
	CloneWhyNoTable: {English: "the target has no partition table", German: "das Ziel hat keine Partitionstabelle"},
	CloneWhyOtherParts: {
		English: "the target has other partitions than the planned ones",
		German:  "das Ziel hat andere Partitionen als die geplanten",
	},
	CloneWhyRootNoTable: {English: "the root target has no partition table", German: "das Root-Ziel hat keine Partitionstabelle"},
	CloneWhyRootOther: {
		English: "the root target has other partitions than the planned ones",
		German:  "das Root-Ziel hat andere Partitionen als die geplanten",
	},
	CloneWhyNoExt4: {
		English: "the target's root partition holds no ext4",
		German:  "die Root-Partition des Ziels enthält kein ext4",
	},
	CloneWhyNoMarker: {
		English: "the target carries no clone marker: %s",
		German:  "das Ziel trägt keine Klon-Markierung: %s",
	},
	CloneWhyOtherSource: {
		English: "the target is a clone of another disk (%s)",
		German:  "das Ziel ist ein Klon einer anderen Disk (%s)",
	},
}
