#!/usr/bin/env bash
# Runs the benchmarks of the root package (verification, token format,
# scopes, scanning, middleware) and of memlimit (the in-memory limiter),
# and prints a Markdown table of
# medians over COUNT runs, each with its ratio to the baseline measured in
# the same runs: Verify against VerifyFloor, Middleware/* against
# Middleware/bare (and the nanoseconds it adds).
# Usage: scripts/bench.sh [COUNT] [REGEXP]     (default 5, all of them)
set -euo pipefail
cd "$(dirname "$0")/.."
count="${1:-5}"
pattern="${2:-Verify|Parse|Generate|ScopeMatch|Scan|Middleware|Metering|Limiter}"
out=$(mktemp)
bin=$(mktemp)
membin=$(mktemp)
trap 'rm -f "$out" "$bin" "$membin"' EXIT

# One binary, run COUNT times, so that every run measures a benchmark and
# its baseline back to back: on a shared, noisy machine the load then
# changes between runs rather than between the two things compared.
go test -c -o "$bin" .
go test -c -o "$membin" ./memlimit
for i in $(seq "$count"); do
	echo "run $i of $count" >&2
	"$bin" -test.run '^$' -test.bench "$pattern" -test.benchmem -test.timeout 60m | tee -a "$out" >&2
	(cd memlimit && "$membin" -test.run '^$' -test.bench "$pattern" -test.benchmem -test.timeout 60m) | tee -a "$out" >&2
done

echo
echo "| benchmark | ns/op (median of $count) | B/op | allocs/op | baseline | ratio | added ns |"
echo "|---|---:|---:|---:|---|---:|---:|"
awk -v count="$count" '
/^Benchmark/ {
	name = $1; sub(/-[0-9]+$/, "", name)
	n[name]++; ns[name, n[name]] = $3 + 0
	for (i = 4; i <= NF; i++) {
		if ($i == "B/op") b[name] = $(i - 1)
		if ($i == "allocs/op") a[name] = $(i - 1)
		if ($i == "B/key") bk[name] = $(i - 1)
	}
	if (!(name in seen)) { seen[name] = 1; order[++k] = name }
	# The benchmarks that time several steps in one loop report, as
	# metrics of their own, the "+ns" of each step over the first one or
	# over an A/A control, from the same requests: their medians go in a
	# table apart.
	for (i = 4; i <= NF; i++) {
		if ($i !~ /\+ns$/ && $i != "dropped/op") continue
		key = name SUBSEP $i
		if (!(key in mcnt)) morder[++mk] = key
		mv[key, ++mcnt[key]] = $(i - 1) + 0
	}
}
function median(name) { return medianOf(ns, name, n[name]) }
# medianOf returns the median of the m values vals[key, 1..m].
function medianOf(vals, key, m,   i, j, t, v) {
	for (i = 1; i <= m; i++) v[i] = vals[key, i]
	for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
	return (m % 2) ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2
}
# baseline names the benchmark another is compared with, or "".
function baseline(name,   mode, parts) {
	mode = name; sub(/^.*\//, "", mode)
	if (name ~ /^BenchmarkVerify\//) return "BenchmarkVerifyFloor/" mode
	if (name ~ /^BenchmarkMiddleware\// && name !~ /\/bare\//) return "BenchmarkMiddleware/bare/" mode
	return ""
}
END {
	for (i = 1; i <= k; i++) med[order[i]] = median(order[i])
	for (i = 1; i <= k; i++) {
		name = order[i]; base = baseline(name); ratio = ""; added = ""
		if (base != "" && med[base] > 0) {
			ratio = sprintf("%.2f×", med[name] / med[base])
			added = sprintf("%+.0f", med[name] - med[base])
		}
		extra = (name in bk) ? " (" bk[name] " B/key)" : ""
		shown = base; sub(/^Benchmark/, "", shown)
		printf "| %s%s | %.0f | %s | %s | %s | %s | %s |\n", substr(name, 10), extra, med[name], b[name], a[name], shown, ratio, added
	}
	if (mk == 0) exit
	printf "\nSame-loop differences (medians of %d; \"aa+ns\" and \"control+ns\" compare two identical steps: the resolution):\n\n", count
	print "| benchmark | metric | median |"
	print "|---|---|---:|"
	for (i = 1; i <= mk; i++) {
		split(morder[i], p, SUBSEP)
		fmt = (p[2] == "dropped/op") ? "| %s | %s | %.4f |\n" : "| %s | %s | %+.0f |\n"
		printf fmt, substr(p[1], 10), p[2], medianOf(mv, morder[i], mcnt[morder[i]])
	}
}' "$out"
