package apikey_test

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apikeykit/apikey"
)

func TestKeyView(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	base := func() *apikey.Key {
		return &apikey.Key{
			ID: "AbC123dEf456", Prefix: "acme_live", Owner: "alice", Name: "ci",
			Digest: []byte("0123456789abcdef0123456789abcdef"), DigestVersion: "hmac-sha256/1",
			CreatedAt: now.Add(-time.Hour).In(time.FixedZone("X", 3600)),
		}
	}
	tests := []struct {
		name   string
		change func(*apikey.Key)
		status string
	}{
		{"active", func(*apikey.Key) {}, apikey.StatusActive},
		{"expired", func(k *apikey.Key) { k.ExpiresAt = now }, apikey.StatusExpired},
		{"not yet valid", func(k *apikey.Key) { k.NotBefore = now.Add(time.Second) }, apikey.StatusNotYetValid},
		{"suspended", func(k *apikey.Key) { k.SuspendedAt = now; k.ExpiresAt = now }, apikey.StatusSuspended},
		{"revoked", func(k *apikey.Key) { k.RevokedAt = now.Add(time.Hour); k.SuspendedAt = now }, apikey.StatusRevoked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := base()
			tt.change(k)
			assert.Equal(t, tt.status, k.View(now).Status)
		})
	}

	k := base()
	k.RateLimit = apikey.Limit{Rate: 100, Period: time.Minute}
	k.Quota = apikey.Quota{Limit: 1000, Period: 24 * time.Hour}
	k.AllowedIPs = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	k.Metadata = map[string]string{"team": "core"}
	v := k.View(now)
	assert.Equal(t, "acme_live_AbC123dEf456_…", v.Masked)
	assert.Equal(t, "100/m", v.RateLimit)
	assert.Equal(t, []string{"10.0.0.0/8"}, v.AllowedIPs)
	assert.Equal(t, time.UTC, v.CreatedAt.Location())
	v.Metadata["team"] = "changed"
	assert.Equal(t, "core", k.Metadata["team"], "the view shares no memory with the key")

	b, err := json.Marshal(k.View(now))
	require.NoError(t, err)
	s := string(b)
	assert.Contains(t, s, `"created_at":"2026-12-01T11:00:00Z"`)
	assert.Contains(t, s, `"scopes":[]`)
	for _, absent := range []string{"digest", "hmac-sha256", "0123456789abcdef", "expires_at", "revoked_at", "revoked_reason", "last_used_at"} {
		assert.False(t, strings.Contains(strings.ToLower(s), absent), "view JSON holds %q: %s", absent, s)
	}

	k.RevokedAt, k.RevokedReason = now, "leaked: https://github.com/o/r/blob/1/x.go"
	b, err = json.Marshal(k.View(now))
	require.NoError(t, err)
	assert.Contains(t, string(b), `"revoked_reason":"leaked: https://github.com/o/r/blob/1/x.go"`)
	assert.Equal(t, apikey.StatusRevoked, k.View(now).Status)
}
