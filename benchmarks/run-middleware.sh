#!/usr/bin/env bash
# Runs the middleware comparison (BenchmarkMiddlewarePeers in
# middleware_test.go) and prints a Markdown table of medians.
#
# Usage: ./run-middleware.sh [rounds]      (default 5)
#        BENCHTIME=500ms ./run-middleware.sh 7   (default BENCHTIME=1s)
#
# The test binary is built once. Each round runs every case once, one
# after the other (serial, then parallel, case by case), so that a burst
# of load from elsewhere on the machine spreads over all of them instead
# of skewing one. Raw output lands in middleware-results.txt; the table
# (median of the rounds per case and mode; ratios and differences of
# those medians) is computed from it by awk.
set -euo pipefail
cd "$(dirname "$0")"
rounds="${1:-5}"
benchtime="${BENCHTIME:-1s}"
raw=middleware-results.txt
bin="$(mktemp -d)/mw.test"
trap 'rm -rf "$(dirname "$bin")"' EXIT

go test -c -o "$bin" .
go test -count=1 -run '^TestPeersAuthenticate$' . >&2 # refuse to measure a misconfigured peer

start="$(date -u '+%Y-%m-%d %H:%M') UTC, load $(cut -d' ' -f1-3 /proc/loadavg)"
: >"$raw"
for i in $(seq "$rounds"); do
	echo "round $i of $rounds" >&2
	"$bin" -test.run '^$' -test.bench '^BenchmarkMiddlewarePeers$' -test.benchmem \
		-test.count 1 -test.benchtime "$benchtime" -test.timeout 30m | tee -a "$raw" >&2
done
end="$(date -u '+%H:%M') UTC, load $(cut -d' ' -f1-3 /proc/loadavg)"

echo
echo "\`./run-middleware.sh $rounds\` (BENCHTIME=$benchtime; from $start to $end; $(nproc) CPUs, $(go version | cut -d' ' -f3))"
echo
awk '
function median(a, k, n,    i, j, v, t) {
	for (i = 1; i <= n; i++) t[i] = a[k, i]
	for (i = 2; i <= n; i++) {
		v = t[i]
		for (j = i - 1; j >= 1 && t[j] > v; j--) t[j + 1] = t[j]
		t[j + 1] = v
	}
	if (n % 2) return t[(n + 1) / 2]
	return (t[n / 2] + t[n / 2 + 1]) / 2
}
function lo(a, k, n,    i, m) { m = a[k, 1]; for (i = 2; i <= n; i++) if (a[k, i] < m) m = a[k, i]; return m }
function hi(a, k, n,    i, m) { m = a[k, 1]; for (i = 2; i <= n; i++) if (a[k, i] > m) m = a[k, i]; return m }
function fmt(x) { return x >= 100 ? sprintf("%.0f", x) : sprintf("%.1f", x) }
function signed(x) { return (x >= 0 ? "+" : "") fmt(x) }
/^BenchmarkMiddlewarePeers\/impl=[^\/]+\/mode=/ {
	split($1, p, "/")
	impl = substr(p[2], 6)
	mode = substr(p[3], 6); sub(/-[0-9]+$/, "", mode)
	if (!(impl in seen)) { seen[impl] = 1; impls[++ni] = impl }
	if (!(mode in seenm)) { seenm[mode] = 1; modes[++nm] = mode }
	k = impl "|" mode
	c = ++cnt[k]
	for (i = 2; i < NF; i++) {
		if ($(i + 1) == "ns/op") ns[k, c] = $i
		if ($(i + 1) == "B/op") by[k, c] = $i
		if ($(i + 1) == "allocs/op") al[k, c] = $i
	}
}
END {
	if (ni == 0) { print "no results" > "/dev/stderr"; exit 1 }
	print "| case | mode | ns/op (median) | min–max | B/op | allocs/op | × floor | × bare | ns over bare | ns over echo-bare |"
	print "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
	for (m = 1; m <= nm; m++) {
		mode = modes[m]
		fk = "floor|" mode; bk = "bare|" mode; ek = "echo-bare|" mode
		f = cnt[fk] ? median(ns, fk, cnt[fk]) : 0
		b = cnt[bk] ? median(ns, bk, cnt[bk]) : 0
		e = cnt[ek] ? median(ns, ek, cnt[ek]) : 0
		for (j = 1; j <= ni; j++) {
			k = impls[j] "|" mode
			n = cnt[k]
			if (!n) continue
			x = median(ns, k, n)
			row = "| " impls[j] " | " mode " | " fmt(x) " | " fmt(lo(ns, k, n)) "–" fmt(hi(ns, k, n))
			row = row " | " median(by, k, n) " | " median(al, k, n)
			row = row " | " (f ? sprintf("%.2f×", x / f) : "")
			row = row " | " (b ? sprintf("%.1f×", x / b) : "")
			row = row " | " (b ? signed(x - b) : "")
			row = row " | " (e && impls[j] ~ /^echo-/ ? signed(x - e) : "") " |"
			print row
		}
	}
	printf "\n%d rounds per case and mode.\n", cnt[impls[1] "|" modes[1]]
}' "$raw"
