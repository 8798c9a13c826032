#!/usr/bin/env bash
# Load test on loopback with a real HTTP client (wrk, installed from the
# distribution's packages if missing): the quickstart with valid,
# rate-limited and invalid keys mixed, against its unauthenticated
# /healthz handler in the same run. Bounded: DURATION seconds per phase
# (default 10), 2 threads, 2 connections (one per thread, so every
# response can be matched to its key). Prints throughput, latency
# percentiles and every status per class of key; exits 1 on any
# unexpected status (valid -> 200, limited -> 200/429, invalid -> 401).
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${DURATION:-10}"

if ! command -v wrk >/dev/null 2>&1; then
	echo "installing wrk" >&2
	DEBIAN_FRONTEND=noninteractive apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi

work=$(mktemp -d)
trap 'kill "$qs_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/quickstart" ./examples/quickstart
go build -o "$work/apikey" ./cmd/apikey
export APIKEY_DB="sqlite:$work/load.db" APIKEY_PEPPER="load-test-pepper-0123456789abcdef"
"$work/apikey" migrate >/dev/null

: >"$work/keys"
for i in $(seq 20); do
	echo "valid $("$work/apikey" create --owner "load-$i" --scopes orders:read --json | sed -n 's/^  "key": "\(.*\)",$/\1/p')" >>"$work/keys"
done
for i in $(seq 5); do
	echo "limited $("$work/apikey" create --owner "limited-$i" --rate 10/s --json | sed -n 's/^  "key": "\(.*\)",$/\1/p')" >>"$work/keys"
done
for i in $(seq 5); do
	out=$("$work/apikey" create --owner "revoked-$i" --json)
	"$work/apikey" revoke "$(echo "$out" | sed -n 's/^  "id": "\(.*\)",$/\1/p')" >/dev/null
	echo "invalid $(echo "$out" | sed -n 's/^  "key": "\(.*\)",$/\1/p')" >>"$work/keys"
done
# Well-formed keys nobody issued, and a typo.
echo "invalid acme_live_AbCdEf123456_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx139PKf" >>"$work/keys"
echo "invalid acme_live_AbCdEf123456_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx139PKg" >>"$work/keys"
if grep -q '^[a-z]* $' "$work/keys"; then
	echo "could not create the keys" >&2
	exit 1
fi

port=$((20000 + RANDOM % 20000))
# Every request comes from 127.0.0.1 and a seventh of them carry invalid
# keys on purpose, so the quickstart's failed-authentication limit would
# soon block the client: the load test measures the request path, not
# that limit, so it is off here.
"$work/quickstart" -addr "127.0.0.1:$port" -failed-auth off >"$work/qs.out" 2>"$work/qs.err" &
qs_pid=$!
for _ in $(seq 100); do
	curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
	sleep 0.1
done

bare_out="$work/bare.out"
wrk -t2 -c2 -d"${duration}s" --timeout 30s --latency "http://127.0.0.1:$port/healthz" >"$bare_out"
KEYS_FILE="$work/keys" wrk -t2 -c2 -d"${duration}s" --timeout 30s --latency -s scripts/loadtest.lua \
	"http://127.0.0.1:$port/v1/whoami" >"$work/wrk.out"

# summary FILE LABEL BASE prints a table row: requests/s (and its ratio to
# BASE requests/s, if given) and the latency percentiles wrk reported.
summary() {
	awk -v label="$2" -v base="$3" '
	/^ +(50|75|90|99)%/ { p[$1] = $2 }
	/^Requests\/sec:/ { rps = $2 }
	END {
		r = sprintf("%.0f", rps)
		if (base != "") r = r sprintf(" (%.2f×)", rps / base)
		printf "| %s | %s | %s | %s | %s | %s |\n", label, r, p["50%"], p["75%"], p["90%"], p["99%"]
	}' "$1"
}
bare_rps=$(awk '/^Requests\/sec:/ { print $2 }' "$bare_out")
valid=$(grep -c '^valid' "$work/keys")
limited=$(grep -c '^limited' "$work/keys")
invalid=$(grep -c '^invalid' "$work/keys")

echo "\`DURATION=$duration scripts/loadtest.sh\` ($(date -u '+%Y-%m-%d %H:%M UTC'), load $(cut -d' ' -f1-3 /proc/loadavg); $(wrk --version 2>&1 | head -n 1 | awk '{print $1, $2}'), 2 threads, 2 connections, ${duration} s per phase)"
echo
echo "| | requests/s | p50 | p75 | p90 | p99 |"
echo "|---|---:|---:|---:|---:|---:|"
summary "$bare_out" "bare \`/healthz\`" ""
summary "$work/wrk.out" "quickstart \`/v1/whoami\`: $valid valid, $limited limited (10/s), $invalid invalid keys in turn" "$bare_rps"
echo
echo "Responses by class of key and status:"
echo
sed -n 's/^responses \([a-z]*\) *\([0-9]*\) *\([0-9]*\)$/- \1 → \2: \3/p' "$work/wrk.out"
sed -n 's/^unexpected statuses: \([0-9]*\)$/- **unexpected statuses: \1**/p' "$work/wrk.out"
grep -q '^unexpected statuses: 0$' "$work/wrk.out"
