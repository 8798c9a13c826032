#!/usr/bin/env bash
# Runs the limiter comparison and prints it. Usage: ./run.sh [rounds]
#
# Each round runs every limiter once, one after the other, so that a
# burst of load from elsewhere on the machine spreads over all of them
# instead of skewing one. Raw results land in results.txt; benchstat
# (fetched through the Go module proxy) then prints one table per metric,
# every peer compared with apikey, the first column.
set -euo pipefail
cd "$(dirname "$0")"
rounds="${1:-5}"
: >results.txt
for i in $(seq "$rounds"); do
	echo "round $i of $rounds" >&2
	go test -run '^$' -bench '^Benchmark(Limiter|BytesPerKey)$' -benchmem -count 1 -timeout 30m . | tee -a results.txt
done
echo
if ! go run golang.org/x/perf/cmd/benchstat@latest -col /impl results.txt; then
	echo "benchstat unavailable: raw results above and in results.txt" >&2
fi
