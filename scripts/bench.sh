#!/usr/bin/env bash
# make bench: build a Pi-like fixture disk (BENCH_SIZE, default 3G) and time
# pibackup's used-blocks imaging, compression and restore against dd, gzip,
# pigz, zstd, partclone, tar and rsync on it. Needs root (loop devices,
# mount). The fixture is kept in BENCH_DIR (default /var/tmp/pibackup-bench)
# and reused; the table is printed and saved to BENCH_DIR/results.md.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-out}
[ "$(id -u)" = 0 ] || { echo "make bench needs root (it attaches loop devices and mounts the fixture)"; exit 1; }
for t in dd gzip pigz zstd partclone.ext4 tar rsync losetup sfdisk mkfs.ext4 mkfs.vfat; do
	command -v "$t" >/dev/null || { echo "bench: $t missing (make deps)"; exit 1; }
done
mkdir -p "$OUT"
go build -o "$OUT/bench" ./bench
BENCH_BACKUPCTL=${BENCH_BACKUPCTL:-$OUT/backupctl} "$OUT/bench"

# The recovery image: its size and its boot-to-UI time in QEMU (virt and
# raspi3b, TCG), as the boot test measures them.
echo
echo "Recovery image (sizes, and boot to RECOVERY-READY under QEMU TCG):"
go test -count=1 -timeout 30m -run '^TestQEMUBoot$' -v ./internal/imagebuild 2>&1 |
	grep -E 'image: |boot to "RECOVERY-READY|^(---|ok|FAIL)' | sed 's/^ *//' 
