package main

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/sqlstore/sqlopen"
)

// TestListExpiringUnused: list --expiring and --unused select the usable
// keys that expire soon, or have been idle long, as the sweeps do.
func TestListExpiringUnused(t *testing.T) {
	cli, _ := buildBinaries(t)
	dbPath := "sqlite:" + filepath.Join(t.TempDir(), "keys.db")
	env := testEnv(dbPath)
	require.Equal(t, exitOK, runCLI(t, cli, env, "", "migrate").code)

	ctx := t.Context()
	st, err := sqlopen.Open(ctx, dbPath)
	require.NoError(t, err)
	defer st.Close()
	now := time.Now()
	const day = 24 * time.Hour
	put := func(change func(*apikey.Key)) string {
		tok, err := apikey.Generate("acme_live")
		require.NoError(t, err)
		k := &apikey.Key{ID: tok.ID, Prefix: "acme_live", Owner: "o", Digest: make([]byte, 32), DigestVersion: "hmac-sha256/v1",
			CreatedAt: now.Add(-10 * day), LastUsedAt: now.Add(-time.Hour)}
		change(k)
		require.NoError(t, st.Create(ctx, k))
		return k.ID
	}
	soon := put(func(k *apikey.Key) { k.ExpiresAt = now.Add(10 * day) })
	put(func(k *apikey.Key) { k.ExpiresAt = now.Add(20 * day) })                                     // not soon
	put(func(k *apikey.Key) { k.ExpiresAt = now.Add(5 * day); k.RevokedAt = now.Add(-time.Minute) }) // revoked
	put(func(k *apikey.Key) { k.ExpiresAt = now.Add(-day) })                                         // expired
	idle := put(func(k *apikey.Key) { k.LastUsedAt = now.Add(-100 * day); k.CreatedAt = now.Add(-200 * day) })
	neverUsed := put(func(k *apikey.Key) { k.LastUsedAt = time.Time{}; k.CreatedAt = now.Add(-95 * day) })
	put(func(k *apikey.Key) { k.LastUsedAt = time.Time{}; k.CreatedAt = now.Add(-5 * day) })            // new
	put(func(k *apikey.Key) { k.CreatedAt = now.Add(-200 * day); k.SuspendedAt = now.Add(-time.Hour) }) // suspended

	ids := func(args ...string) []string {
		r := runCLI(t, cli, env, "", append([]string{"list", "--json"}, args...)...)
		require.Equal(t, exitOK, r.code, r.stderr)
		var views []apikey.KeyView
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &views), r.stdout)
		var out []string
		for _, v := range views {
			out = append(out, v.ID)
		}
		slices.Sort(out)
		return out
	}
	sorted := func(s ...string) []string { slices.Sort(s); return s }
	assert.Equal(t, []string{soon}, ids("--expiring", "14d"))
	assert.Equal(t, sorted(idle, neverUsed), ids("--unused", "90d"))
	assert.Empty(t, ids("--unused", "90d", "--expiring", "1000d"))

	for _, bad := range [][]string{{"--expiring", "soon"}, {"--unused", "0d"}, {"--unused", "-1h"}} {
		r := runCLI(t, cli, env, "", append([]string{"list"}, bad...)...)
		assert.Equal(t, exitError, r.code, "%v", bad)
		assert.Contains(t, r.stderr, bad[0])
	}
}
