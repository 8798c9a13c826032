#!/usr/bin/env bash
# Runs the limiter comparison and prints it as Markdown. Usage: ./run.sh [rounds]
#
# Each round runs every limiter once, one after the other, so that a
# burst of load from elsewhere on the machine spreads over all of them
# instead of skewing one. Raw results land in results.txt; the tables
# give medians over the rounds, and benchstat (fetched through the Go
# module proxy) the significance of each time comparison with apikey.
set -euo pipefail
cd "$(dirname "$0")"
rounds="${1:-5}"
: >results.txt
for i in $(seq "$rounds"); do
	echo "round $i of $rounds" >&2
	go test -run '^$' -bench '^Benchmark(Limiter|BytesPerKey)$' -benchmem -count 1 -timeout 30m . | tee -a results.txt >&2
done
echo
echo "| limiter | bytes per tracked key (median) |"
echo "|---|---:|"
awk '/^BenchmarkBytesPerKey\/impl=/ {
	impl = $1; sub(/^BenchmarkBytesPerKey\/impl=/, "", impl); sub(/-[0-9]+$/, "", impl)
	for (i = 2; i < NF; i++) if ($(i + 1) == "B/key") v[impl] = v[impl] " " $i
	if (!(impl in seen)) { seen[impl] = 1; order[++n] = impl }
}
END {
	for (j = 1; j <= n; j++) {
		k = split(substr(v[order[j]], 2), a, " ")
		for (x = 2; x <= k; x++) for (y = x; y > 1 && a[y - 1] + 0 > a[y] + 0; y--) { t = a[y]; a[y] = a[y - 1]; a[y - 1] = t }
		printf "| %s | %s |\n", order[j], k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
	}
}' results.txt
echo
awk -v bench=Limiter -v base=apikey -f table.awk results.txt
echo
echo "benchstat (apikey as the base; p-values of the time comparisons):"
echo
echo '```'
if ! go run golang.org/x/perf/cmd/benchstat@latest -col /impl results.txt | awk 'NR > 1 && /^$/ { exit } { print }'; then
	echo "benchstat unavailable: raw results in results.txt"
fi
echo '```'
