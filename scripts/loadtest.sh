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
"$work/quickstart" -addr "127.0.0.1:$port" >"$work/qs.out" 2>"$work/qs.err" &
qs_pid=$!
for _ in $(seq 100); do
	curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
	sleep 0.1
done

echo "## bare handler: GET /healthz (no key, no middleware)"
wrk -t2 -c2 -d"${duration}s" --timeout 30s --latency "http://127.0.0.1:$port/healthz" | sed -n '/Latency Distribution/,/Transfer/p'
echo
echo "## quickstart: GET /v1/whoami, $(grep -c '^valid' "$work/keys") valid, $(grep -c '^limited' "$work/keys") limited (10/s), $(grep -c '^invalid' "$work/keys") invalid keys in turn"
KEYS_FILE="$work/keys" wrk -t2 -c2 -d"${duration}s" --timeout 30s --latency -s scripts/loadtest.lua "http://127.0.0.1:$port/v1/whoami" |
	tee "$work/wrk.out" | cat
grep -q '^unexpected statuses: 0$' "$work/wrk.out"
