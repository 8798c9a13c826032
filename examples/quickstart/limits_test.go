package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/redislimit"
	"github.com/apikeykit/apikey/sqlstore/sqlopen"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSharedLimitsCredits: the credits a request spends are in the
// database's ledger without -redis, where `apikey credits` reads them, and
// on Redis with it, so that instances share one balance.
func TestSharedLimitsCredits(t *testing.T) {
	ctx := t.Context()
	store, err := sqlopen.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "q.db"))
	require.NoError(t, err)
	defer store.Close()
	require.NoError(t, store.Migrate(ctx))
	m, err := apikey.NewManager(store, apikey.WithPrefix("acme_test"), apikey.WithPepper("1", bytes.Repeat([]byte{1}, 32)))
	require.NoError(t, err)
	defer m.Close()
	credits := apikey.Credits{Grant: 2, Period: apikey.NoRefill}

	spend := func(t *testing.T, limits apikey.Limits) *apikey.Key {
		secret, k, err := m.Issue(ctx, apikey.IssueRequest{Owner: "team", Credits: credits})
		require.NoError(t, err)
		h := m.Middleware(apikey.WithLimits(limits))(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		for _, want := range []int{200, 200, 429} {
			r := httptest.NewRequest("GET", "/v1/whoami", nil)
			r.Header.Set("Authorization", "Bearer "+secret.Reveal())
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			require.Equal(t, want, w.Code)
		}
		return k
	}

	t.Run("database", func(t *testing.T) {
		limits, closeLimits, err := sharedLimits(ctx, store, "", false)
		require.NoError(t, err)
		defer closeLimits()
		k := spend(t, limits)
		d, err := store.Ledger().Spend(ctx, apikey.CreditsKey(k), credits, 0)
		require.NoError(t, err)
		assert.Equal(t, int64(0), d.Remaining, "the database's ledger holds what the requests spent")
	})
	t.Run("redis", func(t *testing.T) {
		url := os.Getenv("APIKEY_TEST_REDIS")
		if url == "" {
			t.Skip("APIKEY_TEST_REDIS not set (redis://host:port/db of a Redis the test may write to)")
		}
		limits, closeLimits, err := sharedLimits(ctx, store, url, false)
		require.NoError(t, err)
		defer closeLimits()
		k := spend(t, limits)
		opt, err := redis.ParseURL(url)
		require.NoError(t, err)
		opt.ContextTimeoutEnabled = true
		client := redis.NewClient(opt)
		defer client.Close()
		ledger, err := redislimit.NewLedger(client)
		require.NoError(t, err)
		d, err := ledger.Spend(ctx, apikey.CreditsKey(k), credits, 0)
		require.NoError(t, err)
		assert.Equal(t, int64(0), d.Remaining, "Redis holds what the requests spent")
	})
}
