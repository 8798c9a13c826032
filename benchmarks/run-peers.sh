#!/usr/bin/env bash
# The side-by-side comparison, in one run of one test binary: the
# middleware against its peers (BenchmarkMiddlewarePeers) and the backends
# against their floors and peers (BenchmarkBackends), over the same
# 100,000 keys. Prints one Markdown table per comparison (table.awk).
#
# Usage: ./run-peers.sh [rounds]            (default 5)
#        BENCHTIME=500ms ./run-peers.sh 7   (default BENCHTIME=1s)
#
# The backends need APIKEY_TEST_POSTGRES and APIKEY_TEST_REDIS (source
# ../.ci/services.sh; start_postgres; start_redis, as
# scripts/benchmarks.sh does); without them those cases are skipped.
#
# Each round measures every case once, in turn (-rounds), so that a burst
# of load from elsewhere on the machine spreads over all of them instead
# of skewing one. Raw output lands in peers-results.txt.
set -euo pipefail
cd "$(dirname "$0")"
rounds="${1:-5}"
benchtime="${BENCHTIME:-1s}"
raw=peers-results.txt
bin="$(mktemp -d)/peers.test"
trap 'rm -rf "$(dirname "$bin")"' EXIT

go test -c -o "$bin" .
# Refuse to measure a misconfigured peer or floor.
"$bin" -test.count 1 -test.run '^(TestPeersAuthenticate|TestBackendsRefuse)$' >&2

start="$(date -u '+%Y-%m-%d %H:%M') UTC, load $(cut -d' ' -f1-3 /proc/loadavg)"
"$bin" -test.run '^$' -test.bench '^Benchmark(MiddlewarePeers|Backends)$' -test.benchmem \
	-test.benchtime "$benchtime" -test.timeout 60m -rounds "$rounds" | tee "$raw" >&2
end="$(date -u '+%H:%M') UTC, load $(cut -d' ' -f1-3 /proc/loadavg)"

echo "\`benchmarks/run-peers.sh $rounds\` (BENCHTIME=$benchtime; from $start to $end; $(nproc) CPUs, $(go version | cut -d' ' -f3))"
echo
echo "### The middleware against its peers"
echo
awk -v bench=MiddlewarePeers -f table.awk "$raw"
echo
echo "### The backends: verification without a cache, and the Redis limiter"
echo
awk -v bench=Backends -f table.awk "$raw"
