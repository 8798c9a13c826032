package main

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestQuickstartScalesOutLease runs two quickstarts with -redis-lease on
// one PostgreSQL and one Redis: each decides locally from shares leased
// from Redis, and together they allow no more than the limit plus the
// documented overshoot, ceil(T/I) + N×n (T = 100 ms, I = 15 s for 4/m: 1;
// N = 2 instances, n = 1 advance each by default: 2).
func TestQuickstartScalesOutLease(t *testing.T) {
	cli, quickstart, env, rd := scaleOutSetup(t, "e2e_lease")

	baseA, _ := startQuickstart(t, quickstart, env, "-redis", rd, "-redis-lease")
	baseB, _ := startQuickstart(t, quickstart, env, "-redis", rd, "-redis-lease")

	r := runCLI(t, cli, env, "", "create", "--owner", "erin", "--scopes", "orders:read", "--rate", "4/m", "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	var limited struct{ Key string }
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &limited))
	allowed := 0
	for i := range 12 {
		base := baseA
		if i%2 == 1 {
			base = baseB
		}
		resp, _ := call(t, "GET", base+"/v1/orders", limited.Key, "")
		switch resp.StatusCode {
		case 200:
			allowed++
		case 429:
		default:
			t.Fatalf("unexpected status %d", resp.StatusCode)
		}
	}
	assert.GreaterOrEqual(t, allowed, 1, "the key's first request is within its limit")
	assert.LessOrEqual(t, allowed, 4+1+2, "the two instances share one bucket: at most the limit (4) plus the bound (1 + 2)")
	t.Logf("%d of 12 requests allowed under 4/m across two instances in lease mode", allowed)
}

// TestQuickstartLeaseNeedsRedis: -redis-lease without -redis is refused
// with a message that names both flags.
func TestQuickstartLeaseNeedsRedis(t *testing.T) {
	_, quickstart := buildBinaries(t)
	cmd := exec.Command(quickstart, "-addr", "127.0.0.1:0", "-redis-lease")
	cmd.Env = testEnv("sqlite:" + filepath.Join(t.TempDir(), "keys.db"))
	out, err := cmd.CombinedOutput()
	require.Error(t, err, "the quickstart started: %s", out)
	assert.Contains(t, string(out), "-redis-lease needs -redis")
}
