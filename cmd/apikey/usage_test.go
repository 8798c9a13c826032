package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/sqlstore/sqlopen"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestUsageCommand meters requests through a service's Manager on SQLite,
// closes it (which flushes), and reads the usage back with apikey usage,
// as a table and as JSON, per key, per owner and per key of an owner
// (--per-key); bad flags are refused.
func TestUsageCommand(t *testing.T) {
	cli, _ := buildBinaries(t)
	db := "sqlite:" + filepath.Join(t.TempDir(), "keys.db")
	env := testEnv(db)
	ctx := t.Context()
	st, err := sqlopen.Open(ctx, db)
	require.NoError(t, err)
	defer st.Close()
	require.NoError(t, st.Migrate(ctx))
	m, err := apikey.NewManager(st, apikey.WithPrefix("acme_live"), apikey.WithPepper("v1", []byte("e2e-test-pepper-0123456789abcdef")))
	require.NoError(t, err)
	h := m.Middleware()(apikey.Cost(2)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
	var ids []string
	var tok0 string
	for i := range 2 {
		s, k, err := m.Issue(ctx, apikey.IssueRequest{Owner: "team-42"})
		require.NoError(t, err)
		ids = append(ids, k.ID)
		if i == 0 {
			tok0 = s.Reveal()
		}
		for range 3 + i {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.Header.Set("Authorization", "Bearer "+s.Reveal())
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			require.Equal(t, 200, w.Code)
		}
	}
	require.NoError(t, m.Close())

	r := runCLI(t, cli, env, "", "usage", "--owner", "team-42", "--by", "month", "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	var rows []apikey.UsageRow
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rows))
	require.Len(t, rows, 1)
	assert.Equal(t, apikey.Month.Truncate(time.Now()), rows[0].Start)
	assert.Equal(t, int64(7), rows[0].Requests)
	assert.Equal(t, int64(14), rows[0].Units)

	// --per-key: the owner's keys apart, in one query.
	r = runCLI(t, cli, env, "", "usage", "--owner", "team-42", "--per-key", "--by", "month", "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	rows = nil
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rows))
	require.Len(t, rows, 2)
	got := map[string][2]int64{}
	for _, row := range rows {
		assert.Equal(t, "team-42", row.Owner)
		assert.Equal(t, apikey.Month.Truncate(time.Now()), row.Start)
		got[row.KeyID] = [2]int64{row.Requests, row.Units}
	}
	assert.Equal(t, map[string][2]int64{ids[0]: {3, 6}, ids[1]: {4, 8}}, got)
	r = runCLI(t, cli, env, "", "usage", "--owner", "team-42", "--per-key", "--by", "month")
	require.Equal(t, exitOK, r.code, r.stderr)
	for _, id := range ids {
		assert.Contains(t, r.stdout, id, "a row per key")
	}
	assert.Regexp(t, `total\s+7\s+14\n$`, r.stdout)

	r = runCLI(t, cli, env, "", "usage", "--key", ids[1], "--by", "hour")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, ids[1])
	assert.Regexp(t, `total\s+4\s+8\n$`, r.stdout)

	// A whole key names its key, and is never echoed.
	r = runCLI(t, cli, env, "", "usage", "--key", tok0, "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.NotContains(t, r.stdout+r.stderr, tok0)
	assert.Contains(t, r.stdout, ids[0])

	r = runCLI(t, cli, env, "", "usage", "--owner", "team-42", "--from", "2026-01-01", "--to", "2026-01-01")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Regexp(t, `total\s+0\s+0\n$`, r.stdout, "an empty range")

	for _, args := range [][]string{
		{"usage"},
		{"usage", "--owner", "o", "--by", "week"},
		{"usage", "--owner", "o", "--from", "yesterday"},
		{"usage", "--owner", "o", "--from", "2026-02-01", "--to", "2026-01-01"},
		{"usage", "--key", "not-a-key-id"},
		{"usage", "--per-key"},
		{"usage", "--key", "AAAAAAAAAAAA", "--per-key"},
		{"usage", "--owner", "o", "--key", "AAAAAAAAAAAA", "--per-key"},
	} {
		r := runCLI(t, cli, env, "", args...)
		assert.Equal(t, exitError, r.code, "%v: %s", args, r.stdout)
		assert.NotEmpty(t, strings.TrimSpace(r.stderr), "%v says why", args)
	}
}
