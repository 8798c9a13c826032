package apikey_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/memstore"
)

// TestIdentify: Identify answers as Verify does but records no use, so a
// key checked only by a leak handler still looks idle.
func TestIdentify(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	clock := newFakeClock()
	m, err := apikey.NewManager(store, apikey.WithPrefix("acme_test"), apikey.WithPepper("v1", testPepper),
		apikey.WithClock(clock.Now), apikey.WithLastUsedInterval(time.Hour))
	require.NoError(t, err)
	secret, k, err := m.Issue(ctx, apikey.IssueRequest{Owner: "o"})
	require.NoError(t, err)
	revokedSecret, revoked, err := m.Issue(ctx, apikey.IssueRequest{Owner: "o"})
	require.NoError(t, err)
	require.NoError(t, m.Revoke(ctx, revoked.ID))
	clock.Advance(time.Minute)

	got, err := m.Identify(ctx, secret.Reveal())
	require.NoError(t, err)
	assert.Equal(t, k.ID, got.ID)
	_, err = m.Identify(ctx, revokedSecret.Reveal())
	assert.ErrorIs(t, err, apikey.ErrRevoked)
	tampered := []byte(secret.Reveal())
	tampered[len(tampered)-8] ^= 'a' ^ 'b'
	_, err = m.Identify(ctx, string(tampered))
	assert.Error(t, err)
	_, err = m.Identify(ctx, "not a key")
	assert.ErrorIs(t, err, apikey.ErrMalformedKey)

	require.NoError(t, m.Close(), "Close flushes every recorded use")
	after, err := store.Get(ctx, k.ID)
	require.NoError(t, err)
	assert.True(t, after.LastUsedAt.IsZero(), "Identify recorded a use at %v", after.LastUsedAt)
}
