package apikey_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/memstore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCacheStats(t *testing.T) {
	ctx := context.Background()
	store := &countingStore{Store: memstore.New(), failErr: errors.New("connection refused")}
	clock := newFakeClock()
	m, err := apikey.NewManager(store, apikey.WithPrefix("acme_test"), apikey.WithPepper("v1", testPepper),
		apikey.WithClock(clock.Now), apikey.WithCache(1000, time.Minute), apikey.WithNegativeCache(1000, time.Minute))
	require.NoError(t, err)
	defer m.Close()
	assert.Equal(t, apikey.CacheStats{}, m.CacheStats(), "a new Manager has done nothing")

	secret, k, err := m.Issue(ctx, apikey.IssueRequest{Owner: "o"})
	require.NoError(t, err)
	base := m.CacheStats() // Issue drops a negative entry for the new ID

	for range 3 {
		_, err := m.Verify(ctx, secret.Reveal())
		require.NoError(t, err)
	}
	unknown := forge("acme_test", "000000000000", "0000000000000000000000000000000000000000000")
	for range 2 {
		_, err := m.Verify(ctx, unknown)
		require.ErrorIs(t, err, apikey.ErrInvalidKey)
	}
	st := m.CacheStats()
	assert.Equal(t, uint64(2), st.Misses-base.Misses, "one miss for the key, one for the unknown ID")
	assert.Equal(t, uint64(3), st.Hits-base.Hits, "two hits for the key, one for the unknown ID")
	assert.Equal(t, 1, st.Entries)
	assert.Equal(t, 1, st.NegativeEntries)
	assert.Zero(t, st.StoreErrors)

	require.NoError(t, m.Revoke(ctx, k.ID))
	assert.Equal(t, st.Invalidations+1, m.CacheStats().Invalidations, "Revoke drops the key's entry")
	assert.Equal(t, 0, m.CacheStats().Entries)

	// A failing store is counted once per failed lookup, and the cache
	// keeps nothing.
	clock.Advance(2 * time.Minute)
	store.failing.Store(true)
	_, err = m.Verify(ctx, secret.Reveal())
	require.ErrorIs(t, err, apikey.ErrUnavailable)
	assert.Equal(t, st.StoreErrors+1, m.CacheStats().StoreErrors)
}

func TestCacheStatsEvictions(t *testing.T) {
	ctx := context.Background()
	// 64 shards of at most 2 entries each (1 plus an eighth, rounded up):
	// 400 keys must evict. The store is not a Watcher: a late change
	// notification of an Issue would drop an entry, which is neither
	// cached nor evicted (a CI run on a loaded machine saw it).
	m, err := apikey.NewManager(plainStore{memstore.New()}, apikey.WithPrefix("acme_test"), apikey.WithPepper("v1", testPepper),
		apikey.WithCache(64, time.Hour), apikey.WithNegativeCache(64, time.Hour))
	require.NoError(t, err)
	defer m.Close()
	var secrets []apikey.Secret
	for range 400 {
		s, _, err := m.Issue(ctx, apikey.IssueRequest{Owner: "o"})
		require.NoError(t, err)
		secrets = append(secrets, s)
	}
	for _, s := range secrets {
		_, err := m.Verify(ctx, s.Reveal())
		require.NoError(t, err)
	}
	for i := range 400 {
		id := []byte("000000000000")
		id[0], id[1] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"[i%62], "0123456789"[i/62]
		_, err := m.Verify(ctx, forge("acme_test", string(id), "0000000000000000000000000000000000000000000"))
		require.ErrorIs(t, err, apikey.ErrInvalidKey)
	}
	st := m.CacheStats()
	assert.Equal(t, uint64(400), st.Evictions+uint64(st.Entries), "every key loaded is cached or was evicted")
	assert.Equal(t, uint64(400), st.NegativeEvictions+uint64(st.NegativeEntries), "every unknown ID loaded is cached or was evicted")
	assert.Positive(t, st.Evictions)
	assert.Positive(t, st.NegativeEvictions)
}

func TestCacheStatsNotifications(t *testing.T) {
	ctx := context.Background()
	store := memstore.New() // a Watcher
	a, err := apikey.NewManager(store, apikey.WithPrefix("acme_test"), apikey.WithPepper("v1", testPepper))
	require.NoError(t, err)
	defer a.Close()
	b, err := apikey.NewManager(store, apikey.WithPrefix("acme_test"), apikey.WithPepper("v1", testPepper))
	require.NoError(t, err)
	defer b.Close()
	// b may not be watching yet when the first key is issued: issue until
	// it hears of one.
	var k *apikey.Key
	require.Eventually(t, func() bool {
		_, k, err = a.Issue(ctx, apikey.IssueRequest{Owner: "o"})
		require.NoError(t, err)
		return b.CacheStats().Notifications >= 1
	}, time.Second, 10*time.Millisecond, "the other Manager hears of new keys")
	n := b.CacheStats().Notifications
	require.NoError(t, a.Revoke(ctx, k.ID))
	require.Eventually(t, func() bool { return b.CacheStats().Notifications > n }, time.Second, time.Millisecond,
		"the other Manager hears of the revocation")
}

func TestCacheStatsConcurrent(t *testing.T) {
	// Counters are read while Verify runs, under -race.
	ctx := context.Background()
	m, _, _ := newTestManager(t)
	s, _, err := m.Issue(ctx, apikey.IssueRequest{Owner: "o"})
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 1000 {
			_, _ = m.Verify(ctx, s.Reveal())
		}
	}()
	for range 100 {
		_ = m.CacheStats()
	}
	<-done
	st := m.CacheStats()
	assert.Equal(t, uint64(1000), st.Hits+st.Misses)
}
