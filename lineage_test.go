package apikey_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apikeykit/apikey"
)

// TestRotationKeepsLimits: a key made by Rotate goes on with its
// predecessor's quota and rate limit bucket, down the whole chain, so
// that rotating is not a way to get a fresh quota, and the old and new
// key do not get a bucket each during the grace period.
func TestRotationKeepsLimits(t *testing.T) {
	ctx := context.Background()
	m, _, _ := usageManager(t, utc(2027, 3, 10, 12))
	tok, k := issue(t, m, apikey.IssueRequest{
		Quota:     apikey.Quota{Limit: 4, Period: apikey.MonthPeriod},
		RateLimit: apikey.Limit{Rate: 1, Period: time.Hour, Burst: 3},
	})
	h := m.Middleware()(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	require.Equal(t, 200, call(h, tok))

	s1, k1, err := m.Rotate(ctx, k.ID, time.Hour)
	require.NoError(t, err)
	assert.Equal(t, k.ID, k1.Lineage)
	assert.Equal(t, k.ID, k1.LineageID())
	assert.Equal(t, k.ID, k.LineageID(), "a key that replaced none is its own lineage")
	require.Equal(t, 200, call(h, s1.Reveal()))
	require.Equal(t, 200, call(h, tok), "the old key, in its grace period")
	assert.Equal(t, 429, call(h, s1.Reveal()), "the bucket of 3 is shared, not one each")

	_, k2, err := m.Rotate(ctx, k1.ID, 0)
	require.NoError(t, err)
	assert.Equal(t, k.ID, k2.Lineage, "the lineage is the first key of the chain, not the previous one")
	assert.Equal(t, k1.ID, k2.RotatedFrom)
	stored, err := m.Get(ctx, k2.ID)
	require.NoError(t, err)
	assert.Equal(t, k.ID, stored.Lineage, "the Store keeps the lineage")
}

// TestRotationKeepsQuota: three of a quota of 4 used before rotation leave
// one for the replacement.
func TestRotationKeepsQuota(t *testing.T) {
	ctx := context.Background()
	m, _, _ := usageManager(t, utc(2027, 3, 10, 12))
	tok, k := issue(t, m, apikey.IssueRequest{Quota: apikey.Quota{Limit: 4, Period: apikey.MonthPeriod}})
	h := m.Middleware()(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for range 3 {
		require.Equal(t, 200, call(h, tok))
	}
	s1, _, err := m.Rotate(ctx, k.ID, 0)
	require.NoError(t, err)
	assert.Equal(t, 200, call(h, s1.Reveal()))
	assert.Equal(t, 429, call(h, s1.Reveal()), "the month's quota of 4 is spent across the rotation")
}
