#!/usr/bin/env bash
# Runs the tests that are most sensitive to a busy machine STRESS_RUNS
# times (default 5) while the rest of the suite loads both cores, and
# reports every failure with its log. A test that waits for a time
# instead of an event fails here first.
#
#   scripts/stress.sh                    # 5 rounds
#   STRESS_RUNS=20 scripts/stress.sh     # more
#   STRESS_QEMU='TestRestoreFaults|TestLiveBackup' scripts/stress.sh
#
# Each round runs, one after the other: the backup fault tests, the
# restore fault tests and the QEMU tests chosen by STRESS_QEMU (default:
# the fault, live-backup, serial-UI and SSH tests; "all" for the whole
# package, about 10 minutes a round; "" for none). Meanwhile a load loop
# runs the unit tests of every other package, again and again.
#
# Logs: $OUT/stress/<group>-<round>.log. Exit status: 0 when every run
# passed, 1 otherwise.
set -uo pipefail

cd "$(dirname "$0")/.."
GO=${GO:-go}
OUT=${OUT:-out}
RUNS=${STRESS_RUNS:-5}
QEMU=${STRESS_QEMU-TestRestoreFaults|TestLiveBackup|TestTUISerial|TestSSHRestore}
export PIBACKUP_TEST_REQUIRE=${PIBACKUP_TEST_REQUIRE:-all}

case $RUNS in '' | *[!0-9]* | 0)
	echo "STRESS_RUNS=$RUNS: want a number of rounds, at least 1" >&2
	exit 2
	;;
esac

logs=$OUT/stress
rm -rf "$logs"
mkdir -p "$logs"

# The load: every package but the stressed ones, in a loop, until we are
# done. Its own failures are logged but do not count: it is only load.
mapfile -t load_pkgs < <($GO list ./... | grep -v -e '/qemu-tests$' -e '/backupctl$')
(
	n=0
	while :; do
		n=$((n + 1))
		$GO test -count=1 -p 2 "${load_pkgs[@]}" >"$logs/load-$n.log" 2>&1
	done
) &
load_pid=$!
stop_load() {
	pkill -P "$load_pid" 2>/dev/null
	kill "$load_pid" 2>/dev/null
	wait "$load_pid" 2>/dev/null
}
trap stop_load EXIT

groups=(backup-fault restore-fault)
declare -A pkg=([backup-fault]=./backupctl [restore-fault]=./backupctl)
declare -A run=([backup-fault]='TestBackupFault' [restore-fault]='TestRestoreFault')
if [ "$QEMU" = all ]; then
	groups+=(qemu)
	pkg[qemu]=./qemu-tests
	run[qemu]='.'
elif [ -n "$QEMU" ]; then
	groups+=(qemu)
	pkg[qemu]=./qemu-tests
	run[qemu]="$QEMU"
fi

declare -A passed failed
failures=()
start=$(date +%s)
for ((i = 1; i <= RUNS; i++)); do
	for g in "${groups[@]}"; do
		log=$logs/$g-$i.log
		t0=$(date +%s)
		if $GO test -count=1 -timeout 60m -v -run "${run[$g]}" "${pkg[$g]}" >"$log" 2>&1; then
			passed[$g]=$((${passed[$g]:-0} + 1))
			res=ok
		else
			failed[$g]=$((${failed[$g]:-0} + 1))
			failures+=("$log")
			res=FAILED
		fi
		printf 'round %d/%d %-14s %-6s %4ds  load %s\n' "$i" "$RUNS" "$g" "$res" $(($(date +%s) - t0)) "$(cut -d' ' -f1-3 /proc/loadavg)"
	done
done

echo
echo "stress: $RUNS rounds in $(($(date +%s) - start)) s"
for g in "${groups[@]}"; do
	printf '  %-14s %d passed, %d failed\n' "$g" "${passed[$g]:-0}" "${failed[$g]:-0}"
done
if [ ${#failures[@]} -gt 0 ]; then
	echo
	for log in "${failures[@]}"; do
		echo "=== $log"
		grep -E -e '--- FAIL|^FAIL|panic:' "$log" | head -20
		echo "--- last lines:"
		tail -15 "$log"
	done
	exit 1
fi
