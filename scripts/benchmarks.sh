#!/usr/bin/env bash
# Regenerates every measured table in BENCHMARKS.md in one run: the root
# benchmarks with same-run baselines (scripts/bench.sh), the limiter
# against its peers (benchmarks/run.sh), the middleware against its peers
# and the backends against their floors (benchmarks/run-peers.sh, on a
# throwaway PostgreSQL and Redis), the Redis limiter's exact and lease
# modes, the cache-miss path and the storm of cold keys, the gRPC
# interceptor and the OpenTelemetry adapter against their baselines, the load test
# (scripts/loadtest.sh) and the timing tests. Each table lands between its
# "<!-- begin generated: NAME -->" and "<!-- end generated: NAME -->"
# markers; the prose around them is written by hand. BENCHMARKS.md is
# rewritten only if every measurement succeeded (a timing test that fails
# is a result, shown in its table), so that its tables always come from
# one run. Needs root on a Debian-like system (it installs PostgreSQL,
# Redis and wrk with apt-get when they are missing), and the Go module
# proxy (benchstat, the peers).
#
#	scripts/benchmarks.sh            ROUNDS=5 by default; about 20 minutes on 2 vCPUs
#	ROUNDS=3 DURATION=5 scripts/benchmarks.sh
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${ROUNDS:-5}"
out=$(mktemp -d)

source .ci/services.sh # sets its own EXIT trap, which this one extends
trap 'rm -rf "$out"; _apikey_stop_all' EXIT
start_postgres >&2
start_redis >&2

step() { printf '\n=== %s (%s)\n' "$1" "$(date -u +%H:%M:%S)" >&2; }

step "machine"
{
	echo "$(date -u '+%Y-%m-%d'), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'),"
	echo "$(nproc) CPUs, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -sr),"
	echo "$(go version | cut -d' ' -f3), load average $(cut -d' ' -f1-3 /proc/loadavg) at the start,"
	echo "\`ROUNDS=$rounds scripts/benchmarks.sh\` from $(date -u '+%H:%M UTC')."
} >"$out/machine"

step "root benchmarks: scripts/bench.sh $rounds"
{
	echo "\`scripts/bench.sh $rounds\` ($(date -u '+%Y-%m-%d %H:%M UTC'), load $(cut -d' ' -f1-3 /proc/loadavg))"
	scripts/bench.sh "$rounds"
} >"$out/root"

step "limiter against peers: benchmarks/run.sh $rounds"
{
	echo "\`benchmarks/run.sh $rounds\` ($(date -u '+%Y-%m-%d %H:%M UTC'), load $(cut -d' ' -f1-3 /proc/loadavg))"
	(cd benchmarks && ./run.sh "$rounds")
} >"$out/limiter"

step "middleware and backends against peers: benchmarks/run-peers.sh $rounds"
(cd benchmarks && ./run-peers.sh "$rounds") >"$out/peers"

step "Redis limiter, exact and lease modes"
{
	echo "\`go test -run '^\$' -bench 'Lease(Fleet|Local)' -count $rounds ./redislimit/\` ($(date -u '+%Y-%m-%d %H:%M UTC'), load $(cut -d' ' -f1-3 /proc/loadavg))"
	echo
	go test -run '^$' -bench 'Lease(Fleet|Local)' -benchmem -count "$rounds" ./redislimit/ | awk -f scripts/medians.awk
	echo
	echo "Largest overshoot over spans of 10 ms to 1 s (\`TestLeaseOvershootBound\`, limit 200/s, burst 20, sync interval 50 ms; the bound is ceil(T/I) = 10 without advances, 10 + N×n with n advances on N instances):"
	echo
	go test -count=1 -v -run 'TestLeaseOvershootBound' ./redislimit/ | sed -n 's/^ *lease_test.go:[0-9]*: /- /p'
	echo
	echo "Credits on Redis: a Ledger's Spend beside a Counter's Add, one EVALSHA each, 10,000 keys (\`go test -run '^\$' -bench RedisLedger -count $rounds ./redislimit/\`):"
	echo
	go test -run '^$' -bench 'RedisLedger' -benchmem -count "$rounds" ./redislimit/ | awk -f scripts/medians.awk
} >"$out/redis"

step "cache-miss path: BenchmarkVerifyMiss"
{
	echo "\`go test -run '^\$' -bench 'VerifyMiss/.*/paired' -benchtime 3000x -count $rounds ./sqlstore/\` ($(date -u '+%Y-%m-%d %H:%M UTC'), load $(cut -d' ' -f1-3 /proc/loadavg))"
	echo
	go test -run '^$' -bench 'VerifyMiss/.*/paired' -benchtime 3000x -count "$rounds" ./sqlstore/ | awk -f scripts/medians.awk
} >"$out/miss"

step "storm of cold keys: TestVerifyStorm"
{
	echo "\`APIKEY_STORM_KEYS=10000 go test -count=1 -v -run TestVerifyStorm ./sqlstore/\` ($(date -u '+%Y-%m-%d %H:%M UTC'), load $(cut -d' ' -f1-3 /proc/loadavg))"
	echo
	APIKEY_STORM_KEYS=10000 go test -count=1 -v -run 'TestVerifyStorm' ./sqlstore/ | sed -n 's/^ *storm_test.go:[0-9]*: /- /p'
} >"$out/storm"

step "gRPC interceptor over a bare gRPC call (apikeygrpc)"
{
	echo "\`(cd apikeygrpc && go test -run '^\$' -bench 'InterceptorCost|Unary|Interceptor\$' -benchmem -count $rounds .)\` ($(date -u '+%Y-%m-%d %H:%M UTC'), load $(cut -d' ' -f1-3 /proc/loadavg))"
	echo
	(cd apikeygrpc && go test -run '^$' -bench 'InterceptorCost|Unary|Interceptor$' -benchmem -count "$rounds" .) | awk -f scripts/medians.awk
} >"$out/grpc"

step "OpenTelemetry adapter over the bare middleware (apikeyotel)"
{
	echo "\`(cd apikeyotel && go test -run '^\$' -bench 'AdapterCost|OnEvent|Middleware' -benchtime 1s -benchmem -count $rounds .)\` ($(date -u '+%Y-%m-%d %H:%M UTC'), load $(cut -d' ' -f1-3 /proc/loadavg))"
	echo
	(cd apikeyotel && go test -run '^$' -bench 'AdapterCost|OnEvent|Middleware' -benchtime 1s -benchmem -count "$rounds" .) | awk -f scripts/medians.awk
} >"$out/otel"

step "load test: scripts/loadtest.sh"
# With a PostgreSQL and a Redis of its own, so that their counters are the
# load test's alone.
ROUNDS="$rounds" scripts/loadtest.sh >"$out/loadtest"

step "timing tests"
timing_log="$out/timing.log"
APIKEY_TIMING_TEST=all go test -count=1 -v -run 'TestVerifyTiming' . >"$timing_log" 2>&1 || true
{
	echo "\`APIKEY_TIMING_TEST=all go test -count=1 -v -run TestVerifyTiming .\` ($(date -u '+%Y-%m-%d %H:%M UTC'), load $(cut -d' ' -f1-3 /proc/loadavg))"
	echo
	echo "| test | result | max \\|t\\| (asserted) | max \\|t(samples)\\| (dudect's, logged) |"
	echo "|---|---|---:|---:|"
	awk '
	/^=== RUN +TestVerifyTiming[A-Za-z]*$/ { name = $3 }
	/max \|t\| = / {
		for (i = 1; i < NF; i++) if ($i == "=") { worst[name] = $(i + 1); break }
		if (match($0, /max \|t\(samples\)\| = [-0-9.]+/)) { v = substr($0, RSTART, RLENGTH); sub(/.*= /, "", v); samples[name] = v }
	}
	/^--- (PASS|FAIL|SKIP): TestVerifyTiming/ && $3 !~ /Instructions/ { r = $2; sub(/:$/, "", r); printf "| %s | %s | %s | %s |\n", $3, tolower(r), worst[$3], samples[$3] }
	' "$timing_log"
	if command -v valgrind >/dev/null 2>&1; then
		# Instructions rather than time: callgrind counts them exactly, so
		# two classes that run the same code give the same count whatever
		# the machine is doing (TestVerifyTimingInstructions).
		go test -c -o "$out/apikey.test" .
		echo
		echo "Instructions executed by 1,000 \`Verify\` calls (100 tokens × 10, warm cache), counted by callgrind (\`TestVerifyTimingInstructions\`):"
		echo
		echo "| class | instructions | per call |"
		echo "|---|---:|---:|"
		for class in known unknown; do
			APIKEY_TIMING_CALLGRIND=$class GODEBUG=asyncpreemptoff=1 GOGC=off GOMAXPROCS=1 \
				valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.$class" \
				--toggle-collect='*callgrindLoop*' \
				"$out/apikey.test" -test.run '^TestVerifyTimingInstructions$' >/dev/null 2>&1
			awk -v class="$class" '/^totals:/ { printf "| %s kid, wrong secret | %d | %.3f |\n", class, $2, $2 / 1000 }' "$out/callgrind.$class"
		done | sed 's/| unknown kid, wrong secret |/| unknown kid |/'
	fi
} >"$out/timing"

step "writing BENCHMARKS.md"
# fill NAME FILE replaces the lines between NAME's markers with FILE.
fill() {
	awk -v name="$1" -v file="$2" '
	$0 == "<!-- begin generated: " name " -->" {
		print
		while ((getline line < file) > 0) print line
		skip = 1; found = 1
		next
	}
	$0 == "<!-- end generated: " name " -->" { skip = 0; ended = 1 }
	!skip { print }
	END { if (!found || !ended) { print "BENCHMARKS.md lacks a marker for " name > "/dev/stderr"; exit 1 } }
	' BENCHMARKS.md >"$out/BENCHMARKS.md"
	cp "$out/BENCHMARKS.md" BENCHMARKS.md
}
for name in machine root limiter peers redis miss storm grpc otel loadtest timing; do
	fill "$name" "$out/$name"
done
cat "$out"/{machine,root,limiter,peers,redis,miss,storm,grpc,otel,loadtest,timing}
