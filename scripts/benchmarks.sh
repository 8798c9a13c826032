#!/usr/bin/env bash
# Every measurement behind BENCHMARKS.md, in one run, printed as Markdown:
# the root benchmarks with same-run baselines, the limiter and the
# middleware against their peers, the stores against raw SQL and the Redis
# limiter (on throwaway servers), the load test, and the opt-in timing
# tests. ROUNDS sets the repetitions of each comparison (default 5);
# expect about half an hour on a 2-vCPU machine.
#
#	scripts/benchmarks.sh > /tmp/benchmarks.md
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${ROUNDS:-5}"
source .ci/services.sh
start_postgres >&2
start_redis >&2

echo "# Measurements, $(date -u '+%Y-%m-%d %H:%M UTC'), $(go version | awk '{print $3}'), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "## Root benchmarks (scripts/bench.sh $rounds)"
scripts/bench.sh "$rounds"
echo
echo "## Limiter against peers (benchmarks/run.sh $rounds)"
(cd benchmarks && ./run.sh "$rounds")
echo
echo "## Middleware against peers (benchmarks/run-middleware.sh $rounds)"
(cd benchmarks && ./run-middleware.sh "$rounds")
echo
echo "## sqlstore Get against raw SQL, and Verify through the cache"
go test -run '^$' -bench 'BenchmarkSQLStoreGet|BenchmarkVerifyCached' -benchmem -benchtime=1s -count=1 ./sqlstore/ | grep -E '^(Benchmark|ok)'
echo
echo "## Redis limiter"
go test -run '^$' -bench BenchmarkRedisLimiter -benchmem -count="$rounds" ./redislimit/ | grep -E '^(Benchmark|ok)'
echo
echo "## Load test (scripts/loadtest.sh)"
scripts/loadtest.sh
echo
echo "## Timing of Verify (opt-in tests; a failure is reported, not fatal)"
APIKEY_TIMING_TEST=1 go test -count=1 -v -run 'TestVerifyTiming' . 2>&1 | grep -E '^(---|\s+timing_test.go)' || true
