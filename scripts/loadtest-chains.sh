#!/usr/bin/env bash
# Load test of the middleware's chains on loopback, with wrk (installed
# from the distribution's packages if missing): one server process
# (scripts/loadtest) serves the same JSON handler bare (/bare) and behind
# each chain (/auth, /full), and /empty, which does no work; every phase
# runs the same wrk script (scripts/loadtest.lua), so each differs from
# bare in exactly one thing, and /empty measures what the script itself
# costs. Rounds are interleaved: each round runs every phase once, in
# turn, and each phase is reported as ratios to bare's figures in the same
# round, with the median and the range over the rounds. Valid keys only
# first (N of them); then the mixed classes on /full: 20 valid keys, 5
# limited to 10/s, 7 invalid (revoked, unknown), in turn. Exits 1 on any unexpected status.
#
#	scripts/loadtest-chains.sh              ROUNDS=3 DURATION=5 (seconds per phase) N=1000 (valid keys)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${ROUNDS:-3}"
duration="${DURATION:-5}"
nkeys="${N:-1000}"

if ! command -v wrk >/dev/null 2>&1; then
	echo "installing wrk" >&2
	DEBIAN_FRONTEND=noninteractive apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi

work=$(mktemp -d)
srv_pid=""
trap '[ -n "$srv_pid" ] && kill "$srv_pid" 2>/dev/null; rm -rf "$work"' EXIT
go build -o "$work/loadtest" ./scripts/loadtest
port=$((20000 + RANDOM % 20000))
"$work/loadtest" -addr "127.0.0.1:$port" -keys "$work/keys" -n "$nkeys" 2>"$work/srv.err" &
srv_pid=$!
for _ in $(seq 200); do
	curl -s -o /dev/null "http://127.0.0.1:$port/empty" 2>/dev/null && break
	sleep 0.1
done
grep '^valid ' "$work/keys" >"$work/valid"
# The mixed phase: 20 valid keys, so that each of the 5 limited ones comes
# round often enough to pass its 10/s, and the invalid ones.
{ head -n 20 "$work/valid"; grep -v '^valid ' "$work/keys"; } >"$work/mixed"

# run NAME PATH KEYS: one wrk phase; its output lands in $work/NAME.ROUND.
run() {
	KEYS_FILE="$3" wrk -t2 -c2 -d"${duration}s" --timeout 30s --latency -s scripts/loadtest.lua \
		"http://127.0.0.1:$port$2" >"$work/$1.$round"
	if ! grep -q '^unexpected statuses: 0$' "$work/$1.$round"; then
		echo "phase $1, round $round: unexpected statuses" >&2
		cat "$work/$1.$round" >&2
		exit 1
	fi
}
start="$(date -u '+%Y-%m-%d %H:%M UTC'), load $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$rounds"); do
	run empty /empty "$work/valid"
	run bare /bare "$work/valid"
	run auth /auth "$work/valid"
	run full /full "$work/valid"
	run mixed /full "$work/mixed"
done

# figures FILE prints requests/s, p50 and p99 (in µs) that wrk reported.
figures() {
	awk '
	function us(v) {
		if (v ~ /us$/) return v + 0
		if (v ~ /ms$/) return v * 1000
		if (v ~ /s$/) return v * 1000000
		return v + 0
	}
	/^ +50%/ { p50 = us($2) }
	/^ +99%/ { p99 = us($2) }
	/^Requests\/sec:/ { rps = $2 }
	END { printf "%s %s %s\n", rps, p50, p99 }' "$1"
}

echo "\`ROUNDS=$rounds DURATION=$duration N=$nkeys scripts/loadtest-chains.sh\` (from $start to $(date -u '+%H:%M UTC'), load $(cut -d' ' -f1-3 /proc/loadavg); $(wrk --version 2>&1 | head -n 1 | awk '{print $1, $2}'), 2 threads, 2 connections, $duration s per phase, $rounds interleaved rounds; wrk shares the 2 CPUs with the server)"
echo
echo "| phase | requests/s (median) | × bare: requests/s | × bare: p50 | × bare: p99 | p50, p99 (median) |"
echo "|---|---:|---:|---:|---:|---:|"
for phase in empty bare auth full mixed; do
	for round in $(seq "$rounds"); do
		echo "$(figures "$work/bare.$round") $(figures "$work/$phase.$round")"
	done | awk -v phase="$phase" '
	function med(a, n,    i, j, t) {
		for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
		return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	function span(a, n,    i, lo, hi) {
		lo = hi = a[1]
		for (i = 2; i <= n; i++) { if (a[i] < lo) lo = a[i]; if (a[i] > hi) hi = a[i] }
		return sprintf("%.2f×–%.2f×", lo, hi)
	}
	{ n++; rps[n] = $4; p50[n] = $5; p99[n] = $6; r1[n] = $4 / $1; r2[n] = $5 / $2; r3[n] = $6 / $3 }
	END {
		names["empty"] = "`/empty`: no server work (the client script alone)"
		names["bare"] = "`/bare`: the JSON handler"
		names["auth"] = "`/auth`: authentication"
		names["full"] = "`/full`: authentication, per-key limit, RequireScopes"
		names["mixed"] = "`/full`, mixed keys: 20 valid, 5 limited (10/s), 7 invalid"
		a = span(r1, n); b = span(r2, n); c = span(r3, n)
		printf "| %s | %.0f | %.2f× (%s) | %.2f× (%s) | %.2f× (%s) | %.0f µs, %.0f µs |\n", names[phase], med(rps, n), med(r1, n), a, med(r2, n), b, med(r3, n), c, med(p50, n), med(p99, n)
	}'
done
echo
echo "Responses of the mixed phase, all rounds, by class of key and status:"
echo
cat "$work"/mixed.* | sed -n 's/^responses \([a-z]*\) *\([0-9]*\) *\([0-9]*\)$/\1 \2 \3/p' |
	awk '{ c[$1 " → " $2] += $3 } END { for (k in c) printf "- %s: %d\n", k, c[k] }' | sort
