#!/usr/bin/env bash
# scripts/profile.sh: where the CPU goes in the bench pairs that stay above
# their goal (docs/BENCH.md, "Issue 17, fourth round", "Profiles"). On the bench
# fixture (run `make bench` once to build it), each of
#   backupctl -t tar -z zstd -P 2   against  tar -I 'zstd -T0' of the root
#   backupctl -t rsync -P 2         against  rsync -aHAX of the root, and
#                                            rsync with backupctl's options
# runs RUNS times (default 3) from a cold page cache under `perf record -a`
# (every CPU, kernel threads included), output synced inside the time. It
# prints, per run, the wall time and CPU-seconds per command (perf samples /
# frequency), then the heaviest symbols of backupctl's last profile.
# Needs root and perf (linux-perf). Only the fixture image and a loop
# device this script attaches itself are touched; outputs go to
# $BENCH_DIR/profile and are removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "profile.sh needs root (loop devices, mount, perf -a)"; exit 1; }
command -v perf >/dev/null || { echo "profile.sh: perf missing (apt-get install linux-perf)"; exit 1; }
DIR=${BENCH_DIR:-/var/tmp/pibackup-bench}
FIX=$(ls "$DIR"/fixture-*.img 2>/dev/null | head -1)
[ -n "$FIX" ] || { echo "profile.sh: no fixture in $DIR (run make bench once)"; exit 1; }
RUNS=${RUNS:-3}
FREQ=999
BC=out/backupctl
go build -o "$BC" ./backupctl

# The root partition's place in the fixture: the second MBR entry.
read -r start size < <(sfdisk -d "$FIX" | awk -F'[=,]' '/start=/ { n++; if (n == 2) print $2+0, $4+0 }')
W=$DIR/profile
MNT=$W/mnt
mkdir -p "$W"
loop=""
cleanup() {
	mountpoint -q "$MNT" && umount "$MNT"
	[ -n "$loop" ] && losetup -d "$loop"
	rm -rf "$W"
}
trap cleanup EXIT

fresh() {
	rm -rf "$W/out" "$W/run.log"
	mkdir -p -m 700 "$W/out"
	sync
	echo 3 >/proc/sys/vm/drop_caches
}

# measure LABEL SCRIPT: one run of the bash SCRIPT under perf; wall and
# CPU-s per command.
measure() {
	local label=$1 script=$2
	fresh
	if ! perf record -q -a -F $FREQ -o "$W/perf.data" -- bash -c \
		"s=\$(date +%s.%N); $script >'$W/run.log' 2>&1 && sync && echo \$s \$(date +%s.%N) >'$W/wall'"; then
		echo "profile.sh: $label failed:"
		tail -5 "$W/run.log"
		exit 1
	fi
	printf '%-32s wall %5.2f s  CPU-s:' "$label" "$(awk '{ print $2 - $1 }' "$W/wall")"
	# Samples per command over the frequency are CPU-seconds; kernel
	# threads (writeback, the loop device, softirqs) are summed.
	perf report -q -i "$W/perf.data" --sort comm -F sample,comm 2>/dev/null | awk -v f=$FREQ '
		$2 == "swapper" { idle += $1; next }
		$2 ~ /^(kworker|ksoftirqd|kdamond|rcu_|jbd2|loop)/ { k += $1; next }
		$1 > f / 20 { printf " %s %.2f", $2, $1 / f }
		END { printf " kernel-threads %.2f (idle %.2f)\n", k / f, idle / f }'
}

# phases: the durations backupctl's run log gives for the set just made.
phases() {
	cat "$W"/out/profile/*/*.log | sed -n 's/.*msg="\(rsync ended\|tar finished\|new set verified\)".* duration=\([^ ]*\).*/\1 \2/p' |
		paste -sd, | sed 's/^/    phases: /; s/,/, /g'
}

mountRoot() {
	loop=$(losetup -f --show -r --offset $((start * 512)) --sizelimit $((size * 512)) "$FIX")
	mkdir -p "$MNT"
	mount -o ro "$loop" "$MNT"
}
umountRoot() {
	umount "$MNT"
	losetup -d "$loop"
	loop=""
}

ours="$BC backup -P 2 --keep=-1 --hostname profile --source-disk $FIX $W/out"
rsyncOpts="--one-file-system --delete --force --sparse --info=progress2 --out-format=pibackup-copied:%n"

for i in $(seq "$RUNS"); do
	measure "backupctl -t tar -z zstd -P 2" "$ours -t tar -z zstd"
	phases
	cp "$W/perf.data" "$W/perf.tarzstd"
	mountRoot
	measure "tar -I 'zstd -T0'" "tar --numeric-owner --one-file-system --xattrs --acls -I 'zstd -T0' -cpf $W/out/root.tar.zst -C $MNT ."
	umountRoot
done
for i in $(seq "$RUNS"); do
	measure "backupctl -t rsync -P 2" "$ours -t rsync"
	phases
	cp "$W/perf.data" "$W/perf.rsync"
	mountRoot
	measure "rsync -aHAX --numeric-ids" "rsync -aHAX --numeric-ids $MNT/ $W/out/root/"
	measure "rsync with backupctl's options" "rsync -aHAX --numeric-ids $rsyncOpts $MNT/ $W/out/root/"
	umountRoot
done
for p in tarzstd rsync; do
	echo "== backupctl's heaviest symbols, last $p run (% of every CPU's samples)"
	# awk, not head: perf must not die of a closed pipe under pipefail.
	perf report -q -i "$W/perf.$p" --comm backupctl --sort sym 2>/dev/null | awk 'NR <= 15'
	echo "   (all of backupctl: $(perf report -q -i "$W/perf.$p" --sort comm -F overhead,comm 2>/dev/null | awk '$2 == "backupctl" { print $1 }'))"
done
