#!/usr/bin/env bash
# make demo: build a sample Pi disk image, back it up as raspiBackup sets
# (tgz and rsync), verify them, restore one into a blank larger image and
# judge the result with e2fsck, fsck.vfat, sfdisk and a full tree
# comparison. Needs root (loop devices); touches only files under out/demo.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-out}
DEMO=$OUT/demo
BCTL=$OUT/backupctl
[ "$(id -u)" = 0 ] || { echo "make demo needs root (it attaches loop devices)"; exit 1; }
rm -rf "$DEMO"
mkdir -p "$DEMO/backups"
step() { printf '\n== %s\n' "$*"; }

step "1. a sample Raspberry Pi disk (MBR, FAT32 boot, ext4 root with owners, ACLs, xattrs, hardlinks, devices)"
go run ./internal/testfs/pifixture build "$DEMO" >"$DEMO/pi.json"
sfdisk --dump "$DEMO/pi.img"

step "2. back it up: a tgz set and an rsync set (raspiBackup layout, with manifest)"
"$BCTL" backup -t tgz --source-disk "$DEMO/pi.img" "$DEMO/backups"
"$BCTL" backup -t rsync --source-disk "$DEMO/pi.img" "$DEMO/backups"
"$BCTL" list "$DEMO/backups"

step "3. verify every set against its manifest"
for set in "$DEMO"/backups/*/*-backup-*; do "$BCTL" verify "$set"; done

step "4. restore the tgz set into a blank image 50% larger (root partition grows)"
set=$(ls -d "$DEMO"/backups/*/*-tgz-backup-* | head -1)
"$BCTL" restore "$set" --to "$DEMO/restored.img" --size 384M --yes

step "5. judge the restored disk"
sfdisk --dump "$DEMO/restored.img"
go run ./internal/testfs/pifixture compare "$DEMO/pi.img" "$DEMO/restored.img"

step "report"
echo "source:   $DEMO/pi.img ($(du -h --apparent-size "$DEMO/pi.img" | cut -f1))"
echo "backups:  $(du -sh "$DEMO/backups" | cut -f1) in $DEMO/backups"
echo "restored: $DEMO/restored.img ($(du -h --apparent-size "$DEMO/restored.img" | cut -f1)), judged above"
echo "DEMO OK"
