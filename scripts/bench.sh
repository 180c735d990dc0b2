#!/usr/bin/env bash
# make bench: build a Pi-like fixture disk (BENCH_SIZE, default 1G) and time
# each backupctl backup and restore against the classic tools (dd, gzip,
# pigz, zstd, partclone, tar, rsync) on it, BENCH_RUNS times each (default
# 1; the median is reported), and the root mounted read-write (live). The
# defaults end within 15 minutes on the 2-core development machine. The
# 1-minute load average goes beside each pair. Needs root (loop devices, mount). The fixture
# is kept in BENCH_DIR (default /var/tmp/pibackup-bench) and reused; the
# table is printed and saved with the machine's description to
# $OUT/bench.md, the pairs as JSON to $OUT/bench.json. At the end the
# recovery images in $OUT are sized and booted in QEMU (BENCH_RECOVERY=0
# skips that; images that are not built are "not measured").
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-out}
[ "$(id -u)" = 0 ] || { echo "make bench needs root (it attaches loop devices and mounts the fixture)"; exit 1; }
for t in dd gzip pigz zstd partclone.ext4 tar rsync losetup sfdisk mkfs.ext4 mkfs.vfat mcopy truncate; do
	command -v "$t" >/dev/null || { echo "bench: $t missing (make deps)"; exit 1; }
done
mkdir -p "$OUT"
go build -o "$OUT/bench" ./bench
BENCH_BACKUPCTL=${BENCH_BACKUPCTL:-$OUT/backupctl} BENCH_JSON=${BENCH_JSON:-$OUT/bench.json} "$OUT/bench"
