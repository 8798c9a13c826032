package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/redislimit"
	"github.com/apikeykit/apikey/sqlstore/sqlopen"
)

// TestCreditsCommand: create and update take --credits, show, list and
// --json show them, and apikey credits reads and tops up a key's balance
// and an owner's in the database's Ledger, the one a service's middleware
// spends from; what it refuses (an overflow, an unknown key, bad input)
// exits 2 and changes nothing.
func TestCreditsCommand(t *testing.T) {
	cli, _ := buildBinaries(t)
	db := "sqlite:" + filepath.Join(t.TempDir(), "keys.db")
	env := testEnv(db)
	require.Equal(t, exitOK, runCLI(t, cli, env, "", "migrate").code)

	r := runCLI(t, cli, env, "", "create", "--owner", "team-42", "--credits", "1000/month@15", "--quota", "50/month@31", "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	var issued struct {
		Key    string         `json:"key"`
		Record apikey.KeyView `json:"record"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &issued), r.stdout)
	id := issued.Record.ID
	require.NotEmpty(t, id, r.stdout)
	assert.Equal(t, "1000/month@15", issued.Record.Credits)
	assert.Equal(t, "50/month@31", issued.Record.Quota)

	r = runCLI(t, cli, env, "", "show", id)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Regexp(t, `credits\s+1000/month@15\n`, r.stdout)
	r = runCLI(t, cli, env, "", "list")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "CREDITS")
	assert.Regexp(t, id+`.*1000/month@15\n`, r.stdout)

	// The balance, as a table and as JSON; the next refill is the 15th.
	now := time.Now()
	c := apikey.Credits{Grant: 1000, Period: apikey.MonthPeriod, Day: 15}
	_, end := c.Window(now)
	r = runCLI(t, cli, env, "", "credits", "--key", id)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Regexp(t, `balance\s+1000\n`, r.stdout)
	assert.Regexp(t, `ledger\s+the database's`, r.stdout)
	assert.Regexp(t, `next refill\s+`+end.Format(time.RFC3339)+`\n`, r.stdout)

	// What a service spends, the command sees.
	ctx := t.Context()
	st, err := sqlopen.Open(ctx, db)
	require.NoError(t, err)
	defer st.Close()
	d, err := st.Ledger().Spend(ctx, "credits:"+id, c, 400)
	require.NoError(t, err)
	require.True(t, d.Allowed)
	view := func(args ...string) creditsView {
		t.Helper()
		r := runCLI(t, cli, env, "", append([]string{"credits", "--json"}, args...)...)
		require.Equal(t, exitOK, r.code, r.stderr)
		var v creditsView
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &v), r.stdout)
		return v
	}
	v := view("--key", id, "--top-up", "250")
	assert.Equal(t, creditsView{Ledger: "database", LedgerKey: "credits:" + id, KeyID: id, Credits: "1000/month@15", Balance: 850, Limit: 1250,
		NextRefill: end, ToppedUp: 250}, v)
	d, err = st.Ledger().Spend(ctx, "credits:"+id, c, 850)
	require.NoError(t, err)
	assert.True(t, d.Allowed, "the top-up is spendable by the service")
	require.NoError(t, st.Ledger().Refund(ctx, "credits:"+id, c, 850))

	// The whole key names its key, and is never printed.
	r = runCLI(t, cli, env, "", "credits", "--key", issued.Key)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.NotContains(t, r.stdout+r.stderr, issued.Key)
	assert.Contains(t, r.stdout, "credits:"+id)

	// An overflow adds nothing.
	r = runCLI(t, cli, env, "", "credits", "--key", id, "--top-up", "9007199254740500")
	assert.Equal(t, exitError, r.code)
	assert.Contains(t, r.stderr, "nothing was added")
	assert.Equal(t, int64(850), view("--key", id).Balance)

	// An owner's balance, under the policy the services use.
	v = view("--owner", "team-42", "--policy", "100000/month", "--top-up", "5")
	assert.Equal(t, "owner-credits:team-42", v.LedgerKey)
	assert.Equal(t, int64(100005), v.Balance)
	assert.Equal(t, "team-42", v.Owner)

	// update changes the policy and clears it.
	r = runCLI(t, cli, env, "", "update", id, "--credits", "5000")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Regexp(t, `credits\s+5000\n`, r.stdout)
	v = view("--key", id)
	assert.True(t, v.NextRefill.IsZero(), "a one-off grant is never refilled")
	r = runCLI(t, cli, env, "", "update", id, "--credits", "")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.NotContains(t, r.stdout, "credits")

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"credits"}, "give --key or --owner"},
		{[]string{"credits", "--key", id, "--owner", "o"}, "give --key or --owner"},
		{[]string{"credits", "--owner", "o"}, "needs --policy"},
		{[]string{"credits", "--key", id}, "has no credits"},
		{[]string{"credits", "--key", "000000000000"}, "no key with ID"},
		{[]string{"credits", "--owner", "o", "--policy", "10/month@32"}, "day of the month past 31"},
		{[]string{"credits", "--owner", "o", "--policy", "-1"}, "--policy"},
		{[]string{"credits", "--owner", "o", "--policy", "10", "--top-up", "0"}, "want a whole number"},
		{[]string{"credits", "--owner", "o", "--policy", "10", "--top-up", "-4"}, "want a whole number"},
		{[]string{"credits", "--owner", "o", "--policy", "10", "--top-up", "9007199254740993"}, "want a whole number"},
		{[]string{"credits", "--owner", "o\xff", "--policy", "10"}, "UTF-8"},
		{[]string{"create", "--owner", "o", "--credits", "10/month@0"}, "--credits"},
		{[]string{"update", id, "--credits", "1000/fortnight"}, "--credits"},
	} {
		r := runCLI(t, cli, env, "", tc.args...)
		assert.Equal(t, exitError, r.code, "%q: %s", tc.args, r.stdout)
		assert.Contains(t, r.stderr, tc.want, "%q", tc.args)
	}
	r = runCLI(t, cli, env, "", "show", id)
	assert.NotContains(t, r.stdout, "credits", "a refused update changed nothing")
}

// TestCreditsCommandRedis: with --redis, apikey credits reads and tops up
// the redislimit Ledger that the services spend from; a Redis that does
// not answer is an error that does not print the URL's password.
func TestCreditsCommandRedis(t *testing.T) {
	url := os.Getenv("APIKEY_TEST_REDIS")
	if url == "" {
		t.Skip("APIKEY_TEST_REDIS is not set: no Redis to test against (source .ci/services.sh; start_redis)")
	}
	cli, _ := buildBinaries(t)
	env := testEnv("sqlite:" + filepath.Join(t.TempDir(), "none.db")) // not needed for an owner
	owner := "team-" + strings.ReplaceAll(t.Name(), "/", "-") + time.Now().Format("150405.000000000")
	r := runCLI(t, cli, env, "", "credits", "--owner", owner, "--policy", "0", "--top-up", "70", "--redis", url, "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	var v creditsView
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &v))
	assert.Equal(t, int64(70), v.Balance)

	opt, err := redis.ParseURL(url)
	require.NoError(t, err)
	opt.ContextTimeoutEnabled = true
	client := redis.NewClient(opt)
	defer client.Close()
	l, err := redislimit.NewLedger(client)
	require.NoError(t, err)
	d, err := l.Spend(t.Context(), apikey.OwnerCreditsKey(owner), apikey.Credits{Period: apikey.NoRefill}, 30)
	require.NoError(t, err)
	assert.True(t, d.Allowed)
	assert.Equal(t, int64(40), d.Remaining)
	r = runCLI(t, cli, env, "", "credits", "--owner", owner, "--policy", "0", "--redis", url)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Regexp(t, `balance\s+40\n`, r.stdout)
	assert.Regexp(t, `ledger\s+Redis`, r.stdout)

	r = runCLI(t, cli, env, "", "credits", "--owner", owner, "--policy", "0", "--redis", "redis://:Pw9secretZZ@127.0.0.1:1/0")
	assert.Equal(t, exitError, r.code)
	assert.Contains(t, r.stderr, "unavailable")
	assert.NotContains(t, r.stdout+r.stderr, "Pw9secretZZ")
}
