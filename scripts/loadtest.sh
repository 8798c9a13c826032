#!/usr/bin/env bash
# Load test on loopback with a real HTTP client, wrk (installed from the
# distribution's packages if missing), on a throwaway PostgreSQL and Redis
# of its own (.ci/services.sh). Every phase runs the same wrk script
# (scripts/loadtest.lua) and differs from the bare phase of its group in
# exactly one thing; rounds are interleaved (each round runs every phase
# once, in turn) and each phase is reported as ratios to its bare phase in
# the same round: the median and the range over the rounds.
#
# Three groups of phases:
#   chains  one server process (scripts/loadtest, keys in memory) serves the
#           same JSON handler bare (/bare), behind authentication (/auth) and
#           behind authentication, a per-key limit and RequireScopes (/full);
#           /empty does no work, so it measures what the client costs. N
#           valid keys first; then the mixed classes on /full: 20 valid, 5
#           limited to 10/s, 7 invalid (revoked, unknown, a typo).
#   sqlite  the quickstart on SQLite: /healthz (bare), then /v1/whoami with
#           N valid keys, then with the mixed classes.
#   pair    two quickstarts on one PostgreSQL and one Redis (sqlstore and
#           redislimit), loaded by one wrk process whose two threads send to
#           one instance each (PORTS in loadtest.lua), PAIR_CONNECTIONS
#           connections in all: /healthz on both (bare), then /v1/whoami
#           with N valid keys, each limited to 10^6/s so that every request
#           asks the Redis limiter; then the same on two more quickstarts
#           that differ in one flag, -redis-lease (redislimit.LeaseLimiter,
#           which decides locally from leased shares), reported against
#           both the bare phase and the exact pair; then both pairs again on
#           100 of the keys, which each instance sees more often than once
#           per sync interval of the lease mode (100 ms).
# Chains and sqlite run 2 threads with 1 connection each (so that every
# response can be matched to its key, and checked against its class).
#
# Besides requests/s, p50 and p99 from wrk, it reads the CPU time each
# server process used (utime + stime in /proc/PID/stat), which excludes
# wrk's, and wrk's own (bash's time): the server's CPU per request is the
# figure that the client's cost does not touch. For the pair it also
# reads Redis's CPU time and script calls (INFO cpu, commandstats) and
# PostgreSQL's transactions, and, after the rounds, measures the Redis
# limiter's own ceiling (scripts/loadtest -ceiling: 64 goroutines calling
# Limiter.Allow flat out, no HTTP). Exits 1 on any unexpected status.
#
#	scripts/loadtest.sh        ROUNDS=3 DURATION=5 (seconds per phase) N=1000 (valid keys)
#	                           PAIR_CONNECTIONS=8; about 4 minutes with the defaults
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${ROUNDS:-3}"
duration="${DURATION:-5}"
nkeys="${N:-1000}"
pair_conns="${PAIR_CONNECTIONS:-8}"

if ! command -v wrk >/dev/null 2>&1; then
	echo "installing wrk" >&2
	DEBIAN_FRONTEND=noninteractive apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi

work=$(mktemp -d)
pids=()
source .ci/services.sh # sets its own EXIT trap, which this one extends
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; _apikey_stop_all; rm -rf "$work"' EXIT
# A PostgreSQL and a Redis of its own, so that their counters are this
# test's alone.
start_postgres >&2
start_redis >&2
pg="$APIKEY_TEST_POSTGRES"
redis_url="$APIKEY_TEST_REDIS"

go build -o "$work/loadtest" ./scripts/loadtest
go build -o "$work/quickstart" ./examples/quickstart
export APIKEY_PEPPER="load-test pepper, 32 bytes or more, not a secret" APIKEY_PREFIX="load"
"$work/loadtest" -issue "sqlite:$work/load.db" -keys "$work/sqlite.keys" -n "$nkeys"
"$work/loadtest" -issue "$pg" -keys "$work/pair.keys" -n "$nkeys"

# start NAME ARGS...: starts a server in the background, records its pid
# in $NAME_pid, and waits until it answers on the port in $NAME_port.
start() {
	local name="$1" port
	shift
	port=$(_free_port)
	"$@" -addr "127.0.0.1:$port" >"$work/$name.out" 2>"$work/$name.err" &
	pids+=($!)
	printf -v "${name}_pid" %s $!
	printf -v "${name}_port" %s "$port"
	for _ in $(seq 300); do
		curl -s -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "$name did not start:" >&2
	cat "$work/$name.err" >&2
	exit 1
}
start chains "$work/loadtest" -keys "$work/chains.keys" -n "$nkeys"
# The quickstarts cache keys for an hour (-cache-ttl), longer than the
# test, and each is warmed up before the rounds, so that every round
# measures the request path on a warm cache (a round lasts longer than the
# default TTL of 30 s, and cache misses are BenchmarkVerifyMiss's subject).
# Every request comes from 127.0.0.1 and the mixed phase sends invalid
# keys on purpose, so the failed-authentication limit would soon block
# the client: the load test measures the request path, not that limit.
start sqlite "$work/quickstart" -db "sqlite:$work/load.db" -cache-ttl 1h -failed-auth off
start pair_a "$work/quickstart" -db "$pg" -redis "$redis_url" -cache-ttl 1h -failed-auth off
start pair_b "$work/quickstart" -db "$pg" -redis "$redis_url" -cache-ttl 1h -failed-auth off
start lease_a "$work/quickstart" -db "$pg" -redis "$redis_url" -cache-ttl 1h -redis-lease -failed-auth off
start lease_b "$work/quickstart" -db "$pg" -redis "$redis_url" -cache-ttl 1h -redis-lease -failed-auth off

# keys FILE NAME: the valid keys of FILE, and the mixed classes (20 valid
# keys, so that each of the 5 limited ones comes round often enough to
# pass its 10/s, and the invalid ones).
keys() {
	grep '^valid ' "$1" >"$work/$2.valid"
	{ head -n 20 "$work/$2.valid"; grep -v '^valid ' "$1"; } >"$work/$2.mixed"
}
keys "$work/chains.keys" chains
keys "$work/sqlite.keys" sqlite
keys "$work/pair.keys" pair
head -n 100 "$work/pair.valid" >"$work/pair.hot"

clk=$(getconf CLK_TCK)
# ticks PID...: CPU time (user + system) the processes used so far, in ticks.
ticks() {
	local p t=0
	for p in "$@"; do t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat"))); done
	echo "$t"
}
# machine: busy and total ticks of every CPU (everyone's load, not only ours).
machine() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat; }
# redis_counters: Redis's CPU time in seconds and its script calls so far.
redis_counters() {
	redis-cli -u "$redis_url" info all | tr -d '\r' | awk -F'[:,=]' '
	/^used_cpu_(user|sys):/ { cpu += $2 }
	/^cmdstat_eval(sha)?:/ { calls += $3 }
	END { printf "%.6f %d\n", cpu, calls }'
}
pg_xacts() { psql "$pg" -Atc 'SELECT sum(xact_commit + xact_rollback) FROM pg_stat_database'; }

# run NAME CONNECTIONS PORTS PATH KEYS PIDS...: one wrk phase against the
# servers on PORTS (the first is in the URL) whose processes are PIDS. Its
# output lands in $work/NAME.ROUND; a line of counters in $work/NAME.ROUND.cpu:
# server ticks, wrk user and system seconds, machine busy and total ticks,
# Redis CPU seconds and script calls, PostgreSQL transactions.
run() {
	local name="$1" conns="$2" ports="$3" path="$4" keys="$5"
	shift 5
	local s0 s1 m0 m1 r0 r1 x0 x1 w
	s0=$(ticks "$@")
	m0=$(machine)
	r0=$(redis_counters)
	x0=$(pg_xacts)
	w=$( { TIMEFORMAT='%U %S'; time KEYS_FILE="$keys" PORTS="$ports" wrk -t2 -c"$conns" -d"${duration}s" --timeout 30s --latency \
		-s scripts/loadtest.lua "http://127.0.0.1:${ports%% *}$path" >"$work/$name.$round"; } 2>&1)
	s1=$(ticks "$@")
	m1=$(machine)
	r1=$(redis_counters)
	x1=$(pg_xacts)
	echo "$((s1 - s0)) $w $m0 $m1 $r0 $r1 $x0 $x1" |
		awk '{ print $1, $2, $3, $6 - $4, $7 - $5, $10 - $8, $11 - $9, $13 - $12 }' >"$work/$name.$round.cpu"
	if ! grep -q '^unexpected statuses: 0$' "$work/$name.$round"; then
		echo "phase $name, round $round: unexpected statuses" >&2
		cat "$work/$name.$round" >&2
		exit 1
	fi
}
# Warm-up, not reported: every valid key through every quickstart once.
for warm in "$sqlite_port:sqlite" "$pair_a_port $pair_b_port:pair" "$lease_a_port $lease_b_port:pair"; do
	ports="${warm%%:*}"
	KEYS_FILE="$work/${warm##*:}.valid" PORTS="$ports" wrk -t2 -c2 -d2s -s scripts/loadtest.lua "http://127.0.0.1:${ports%% *}/v1/whoami" >/dev/null
done
start_time="$(date -u '+%Y-%m-%d %H:%M UTC'), load $(cut -d' ' -f1-3 /proc/loadavg)"
pair_ports="$pair_a_port $pair_b_port"
lease_ports="$lease_a_port $lease_b_port"
for round in $(seq "$rounds"); do
	run empty 2 "$chains_port" /empty "$work/chains.valid" "$chains_pid"
	run bare 2 "$chains_port" /bare "$work/chains.valid" "$chains_pid"
	run auth 2 "$chains_port" /auth "$work/chains.valid" "$chains_pid"
	run full 2 "$chains_port" /full "$work/chains.valid" "$chains_pid"
	run mixed 2 "$chains_port" /full "$work/chains.mixed" "$chains_pid"
	run sqlite-bare 2 "$sqlite_port" /healthz "$work/sqlite.valid" "$sqlite_pid"
	run sqlite-valid 2 "$sqlite_port" /v1/whoami "$work/sqlite.valid" "$sqlite_pid"
	run sqlite-mixed 2 "$sqlite_port" /v1/whoami "$work/sqlite.mixed" "$sqlite_pid"
	run pair-bare "$pair_conns" "$pair_ports" /healthz "$work/pair.valid" "$pair_a_pid" "$pair_b_pid"
	run pair-valid "$pair_conns" "$pair_ports" /v1/whoami "$work/pair.valid" "$pair_a_pid" "$pair_b_pid"
	run pair-lease "$pair_conns" "$lease_ports" /v1/whoami "$work/pair.valid" "$lease_a_pid" "$lease_b_pid"
	run pair-hot "$pair_conns" "$pair_ports" /v1/whoami "$work/pair.hot" "$pair_a_pid" "$pair_b_pid"
	run pair-lease-hot "$pair_conns" "$lease_ports" /v1/whoami "$work/pair.hot" "$lease_a_pid" "$lease_b_pid"
done
"$work/loadtest" -ceiling "$redis_url" -n 10000 -g 64 -d "${duration}s" >"$work/ceiling"

# figures NAME ROUND prints, for one phase in one round: requests/s, p50
# and p99 (µs), then server CPU, wrk CPU, Redis CPU (µs per request),
# Redis script calls and PostgreSQL transactions per request, and the
# CPUs busy (of the machine's; everyone's load) and those of the server
# processes, wrk and Redis, per second of the phase.
figures() {
	awk -v clk="$clk" -v ncpu="$(nproc)" '
	function us(v) {
		if (v ~ /us$/) return v + 0
		if (v ~ /ms$/) return v * 1000
		if (v ~ /s$/) return v * 1000000
		return v + 0
	}
	FNR == NR {
		if ($0 ~ /^ +50%/) p50 = us($2)
		if ($0 ~ /^ +99%/) p99 = us($2)
		if ($0 ~ /^Requests\/sec:/) rps = $2
		if ($0 ~ / requests in /) { reqs = $1; secs = $4; sub(/s,$/, "", secs); secs = us(secs "s") / 1e6 }
		next
	}
	{
		srv = $1 / clk; wrk = $2 + $3; busy = $4 / $5 * ncpu
		printf "%s %s %s %.2f %.2f %.2f %.3f %.4f %.2f %.2f %.2f %.2f\n", rps, p50, p99,
			srv * 1e6 / reqs, wrk * 1e6 / reqs, $6 * 1e6 / reqs, $7 / reqs, $8 / reqs,
			busy, srv / secs, wrk / secs, $6 / secs
	}' "$work/$1.$2" "$work/$1.$2.cpu"
}

conns_note="2 threads, 2 connections (1 per thread); the pair: 2 threads, $pair_conns connections, one thread per instance"
echo "\`ROUNDS=$rounds DURATION=$duration N=$nkeys scripts/loadtest.sh\` (from $start_time to $(date -u '+%H:%M UTC'), load $(cut -d' ' -f1-3 /proc/loadavg); $(wrk --version 2>&1 | head -n 1 | awk '{print $1, $2}'), $conns_note; $duration s per phase, $rounds interleaved rounds; wrk shares the $(nproc) CPUs with the servers)"
echo
echo "Each ratio is to the bare phase of its group (the first of each group) in the same round: median (range over the rounds). Server CPU is the CPU time of the server process(es) per request, which excludes wrk's; wrk CPU is the client's, per request."
echo
echo "| phase | requests/s | × bare: requests/s | × bare: p50 | × bare: p99 | × bare: server CPU | server CPU, wrk CPU per request | p50, p99 |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
# row PHASE BARE LABEL: a table row of PHASE's medians and ratios to BARE.
row() {
	for round in $(seq "$rounds"); do
		echo "$(figures "$2" "$round") $(figures "$1" "$round")"
	done | awk -v label="$3" '
	function med(a, n,    i, j, t) {
		for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
		return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	function span(a, n,    i, lo, hi) {
		lo = hi = a[1]
		for (i = 2; i <= n; i++) { if (a[i] < lo) lo = a[i]; if (a[i] > hi) hi = a[i] }
		return sprintf("%.2f×–%.2f×", lo, hi)
	}
	# Fields 1-12: the bare phase; 13-24: this phase.
	{ n++; rps[n] = $13; p50[n] = $14; p99[n] = $15; srv[n] = $16; wrk[n] = $17
	  r1[n] = $13 / $1; r2[n] = $14 / $2; r3[n] = $15 / $3; r4[n] = $16 / $4 }
	END {
		a = span(r1, n); b = span(r2, n); c = span(r3, n); d = span(r4, n)
		printf "| %s | %.0f | %.2f× (%s) | %.2f× (%s) | %.2f× (%s) | %.2f× (%s) | %.1f µs, %.1f µs | %.0f µs, %.0f µs |\n",
			label, med(rps, n), med(r1, n), a, med(r2, n), b, med(r3, n), c, med(r4, n), d, med(srv, n), med(wrk, n), med(p50, n), med(p99, n)
	}'
}
row empty bare "chains: \`/empty\`, no server work (what the client costs)"
row bare bare "chains: \`/bare\`, the JSON handler"
row auth bare "chains: \`/auth\`, authentication"
row full bare "chains: \`/full\`, authentication, per-key limit, RequireScopes"
row mixed bare "chains: \`/full\`, mixed keys: 20 valid, 5 limited (10/s), 7 invalid"
row sqlite-bare sqlite-bare "quickstart on SQLite: \`/healthz\`"
row sqlite-valid sqlite-bare "quickstart on SQLite: \`/v1/whoami\`, $nkeys valid keys"
row sqlite-mixed sqlite-bare "quickstart on SQLite: \`/v1/whoami\`, mixed keys"
row pair-bare pair-bare "2 quickstarts on PostgreSQL + Redis: \`/healthz\`"
row pair-valid pair-bare "2 quickstarts on PostgreSQL + Redis: \`/v1/whoami\`, $nkeys valid keys (10^6/s each)"
row pair-lease pair-bare "2 quickstarts with \`-redis-lease\`: \`/v1/whoami\`, the same keys"
row pair-lease pair-valid "2 quickstarts with \`-redis-lease\`, as a ratio to the exact pair (not to bare)"
row pair-hot pair-bare "2 quickstarts on PostgreSQL + Redis: \`/v1/whoami\`, 100 of the keys"
row pair-lease-hot pair-bare "2 quickstarts with \`-redis-lease\`: \`/v1/whoami\`, the same 100 keys"
row pair-lease-hot pair-hot "2 quickstarts with \`-redis-lease\`, 100 keys, as a ratio to the exact pair on them (not to bare)"
echo
echo "Responses of the mixed phases, all rounds, by class of key and status:"
echo
for phase in mixed sqlite-mixed; do
	cat "$work/$phase".[0-9]* | sed -n 's/^responses \([a-z]*\) *\([0-9]*\) *\([0-9]*\)$/\1 \2 \3/p' |
		awk -v phase="$phase" '{ c[$1 " → " $2] += $3 } END { for (k in c) printf "- %s: %s: %d\n", (phase == "mixed" ? "chains" : "quickstart on SQLite"), k, c[k] }' | sort
done
echo
# where PHASE LABEL: where the time of PHASE's processes went (medians
# over the rounds), against the Redis limiter's own ceiling.
where() {
	echo "$2 (\`$1\`; CPUs busy per second of the phase, of the machine's $(nproc); medians over the rounds):"
	echo
	for round in $(seq "$rounds"); do figures "$1" "$round"; done | awk -v ceiling="$(cat "$work/ceiling")" -v ncpu="$(nproc)" '
	function med(a, n,    i, j, t) {
		for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
		return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	{ n++; rps[n] = $1; srvus[n] = $4; rcpu[n] = $6; calls[n] = $7; x[n] = $8; busy[n] = $9; srv[n] = $10; wrk[n] = $11; red[n] = $12 }
	END {
		split(ceiling, c, " ")
		printf "- requests/s %.0f; per request: %.1f µs of the 2 quickstarts'"'"' CPU, %.4f Redis script calls, %.1f µs of Redis CPU, %.4f PostgreSQL transactions\n", med(rps, n), med(srvus, n), med(calls, n), med(rcpu, n), med(x, n)
		printf "- CPUs busy: %.2f of %d in all (every process on the machine), of which the 2 quickstarts %.2f, wrk %.2f, Redis %.2f\n", med(busy, n), ncpu, med(srv, n), med(wrk, n), med(red, n)
		printf "- requests/s as a share of the Redis limiter'"'"'s ceiling measured below: %.2f×\n", med(rps, n) / c[3]
	}'
	echo
}
where pair-valid "The exact pair"
where pair-lease "The pair with \`-redis-lease\`"
where pair-hot "The exact pair, 100 keys"
where pair-lease-hot "The pair with \`-redis-lease\`, 100 keys"
awk '{ printf "The Redis limiter alone (`scripts/loadtest -ceiling`: %s goroutines calling `Limiter.Allow` on %s keys flat out, no HTTP): %s decisions/s, %s script calls per decision, %s µs of Redis CPU per decision, Redis busy %s of one CPU; Redis, single-threaded, would allow about %.0f decisions/s at that CPU per decision (1 s / %s µs).\n", $11, $13, $3, $5, $7, $9, 1e6 / $7, $7 }' "$work/ceiling"
