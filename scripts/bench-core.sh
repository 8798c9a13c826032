#!/usr/bin/env bash
# Runs the core benchmarks (token format, verification, scopes) and prints
# a Markdown table: median ns/op, B/op and allocs/op over COUNT runs, and
# Verify as a ratio to the floor measured in the same run.
# Usage: scripts/bench-core.sh [COUNT]      (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
count="${1:-5}"
out=$(mktemp)

# One binary, run COUNT times, so that every run measures Verify and its
# floor back to back: on a shared, noisy machine the load then changes
# between runs rather than between the two things being compared.
bin=$(mktemp)
trap 'rm -f "$out" "$bin"' EXIT
go test -c -o "$bin" .
for i in $(seq "$count"); do
	"$bin" -test.run '^$' -test.bench 'Verify|Parse|Generate|ScopeMatch' -test.benchmem | tee -a "$out" >&2
done

echo
echo "| benchmark | ns/op (median of $count) | B/op | allocs/op | ratio to floor |"
echo "|---|---:|---:|---:|---:|"
awk '
/^Benchmark/ {
	name = $1; sub(/-[0-9]+$/, "", name)
	n[name]++; ns[name, n[name]] = $3; b[name] = $5; a[name] = $7
	if (!(name in seen)) { seen[name] = 1; order[++k] = name }
}
function median(name,   i, j, t, m, v) {
	m = n[name]
	for (i = 1; i <= m; i++) v[i] = ns[name, i]
	for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
	return (m % 2) ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2
}
END {
	for (i = 1; i <= k; i++) med[order[i]] = median(order[i])
	for (i = 1; i <= k; i++) {
		name = order[i]; ratio = ""
		if (name ~ /^BenchmarkVerify(Floor)?\//) {
			mode = name; sub(/^.*\//, "", mode)
			floor = med["BenchmarkVerifyFloor/" mode]
			if (floor > 0) ratio = sprintf("%.2f×", med[name] / floor)
		}
		printf "| %s | %.0f | %s | %s | %s |\n", name, med[name], b[name], a[name], ratio
	}
}' "$out"
