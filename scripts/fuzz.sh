#!/usr/bin/env bash
# Runs every fuzz target of the module for FUZZTIME each (default 30s),
# one after the other (go test -fuzz takes one target of one package at a
# time). New failing inputs land in the package's testdata/fuzz/<Target>/
# and are then replayed by every plain `go test`.
#
#   scripts/fuzz.sh                  # all targets, 30s each
#   FUZZTIME=5m scripts/fuzz.sh      # longer
#   scripts/fuzz.sh ./internal/disklayout   # only these packages
#
# Exit status: 0 when no target failed, 1 otherwise (the failing targets
# are listed at the end).
set -uo pipefail

cd "$(dirname "$0")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-30s}
pkgs=("$@")
if [ ${#pkgs[@]} -eq 0 ]; then
	mapfile -t pkgs < <($GO list ./...)
fi

failed=()
count=0
for pkg in "${pkgs[@]}"; do
	dir=$($GO list -f '{{.Dir}}' "$pkg") || { failed+=("$pkg (go list)"); continue; }
	# Fuzz targets are top-level func FuzzX(f *testing.F) in _test files.
	mapfile -t targets < <(grep -ho '^func Fuzz[A-Za-z0-9_]*(f \*testing\.F)' "$dir"/*_test.go 2>/dev/null |
		sed 's/^func \(Fuzz[A-Za-z0-9_]*\).*/\1/' | sort -u)
	for t in "${targets[@]}"; do
		count=$((count + 1))
		echo "=== $pkg $t ($FUZZTIME)"
		if ! $GO test -run '^$' -fuzz "^${t}\$" -fuzztime "$FUZZTIME" "$pkg"; then
			failed+=("$pkg $t")
		fi
	done
done

echo "=== $count fuzz targets run"
if [ ${#failed[@]} -gt 0 ]; then
	printf 'FAILED: %s\n' "${failed[@]}"
	exit 1
fi
