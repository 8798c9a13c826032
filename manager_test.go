package apikey_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/memstore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewManagerRejects(t *testing.T) {
	store := memstore.New()
	pepper := apikey.WithPepper("v1", testPepper)
	prefix := apikey.WithPrefix("acme_live")
	tests := []struct {
		name  string
		store apikey.Store
		opts  []apikey.Option
		want  error
	}{
		{"nil store", nil, []apikey.Option{prefix, pepper}, apikey.ErrInvalidRequest},
		{"no prefix", store, []apikey.Option{pepper}, apikey.ErrInvalidPrefix},
		{"empty prefix", store, []apikey.Option{apikey.WithPrefix(""), pepper}, apikey.ErrInvalidPrefix},
		{"prefix outside grammar", store, []apikey.Option{apikey.WithPrefix("Acme-Live"), pepper}, apikey.ErrInvalidPrefix},
		{"no pepper", store, []apikey.Option{prefix}, apikey.ErrInvalidRequest},
		{"empty pepper", store, []apikey.Option{prefix, apikey.WithPepper("v1", nil)}, apikey.ErrInvalidRequest},
		{"short pepper", store, []apikey.Option{prefix, apikey.WithPepper("v1", []byte("short"))}, apikey.ErrInvalidRequest},
		{"empty pepper version", store, []apikey.Option{prefix, apikey.WithPepper("", testPepper)}, apikey.ErrInvalidRequest},
		{"pepper twice", store, []apikey.Option{prefix, pepper, apikey.WithPepper("v2", testPepper)}, apikey.ErrInvalidRequest},
		{"version reused", store, []apikey.Option{prefix, pepper, apikey.WithPreviousPepper("v1", testPepper)}, apikey.ErrInvalidRequest},
		{"nil clock", store, []apikey.Option{prefix, pepper, apikey.WithClock(nil)}, apikey.ErrInvalidRequest},
		{"previous pepper without a current one", store, []apikey.Option{prefix, apikey.WithUnkeyedDigest(), apikey.WithPreviousPepper("v1", testPepper)}, apikey.ErrInvalidRequest},
		{"negative cache", store, []apikey.Option{prefix, pepper, apikey.WithCache(-1, time.Second)}, apikey.ErrInvalidRequest},
		{"zero last-used interval", store, []apikey.Option{prefix, pepper, apikey.WithLastUsedInterval(0)}, apikey.ErrInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := apikey.NewManager(tt.store, tt.opts...)
			require.ErrorIs(t, err, tt.want)
			require.Nil(t, m)
		})
	}
	m, err := apikey.NewManager(store, prefix, apikey.WithUnkeyedDigest())
	require.NoError(t, err, "WithUnkeyedDigest is an explicit alternative to a pepper")
	require.NoError(t, m.Close())
}

func TestIssueAndVerify(t *testing.T) {
	ctx := context.Background()
	m, store, clock := newTestManager(t)
	expires := clock.Now().Add(24 * time.Hour)
	secret, k, err := m.Issue(ctx, apikey.IssueRequest{
		Owner:      "team-42",
		Name:       "CI deploy",
		Scopes:     []string{"orders:read", "billing:*"},
		ExpiresAt:  expires,
		RateLimit:  apikey.Limit{Rate: 10, Period: time.Second, Burst: 20},
		Quota:      apikey.Quota{Limit: 1000, Period: 24 * time.Hour},
		AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.1.2.3/8")},
		Metadata:   map[string]string{"plan": "pro"},
	})
	require.NoError(t, err)
	assert.Equal(t, "acme_test", k.Prefix)
	assert.Equal(t, "team-42", k.Owner)
	assert.Equal(t, []string{"orders:read", "billing:*"}, k.Scopes)
	assert.True(t, k.ExpiresAt.Equal(expires))
	assert.True(t, k.CreatedAt.Equal(clock.Now()))
	assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, k.AllowedIPs, "prefixes are stored masked")
	assert.Equal(t, "hmac-sha256/v1", k.DigestVersion)
	assert.Equal(t, int64(1), k.Revision)

	got, err := m.Verify(ctx, secret.Reveal())
	require.NoError(t, err)
	assert.Equal(t, k.ID, got.ID)
	assert.Equal(t, "team-42", got.Owner)

	// The store never sees the key or its secret part.
	_, _, secretPart := parts(t, secret.Reveal())
	stored, err := store.Get(ctx, k.ID)
	require.NoError(t, err)
	assert.NotContains(t, fmt.Sprintf("%#v", stored), secretPart)
	assert.NotContains(t, string(stored.Digest), secretPart[:8])
}

func TestVerifyRejects(t *testing.T) {
	ctx := context.Background()
	m, _, _ := newTestManager(t)
	secret, _, err := m.Issue(ctx, apikey.IssueRequest{Owner: "o"})
	require.NoError(t, err)
	prefix, id, secretPart := parts(t, secret.Reveal())
	other, _ := apikey.Generate("acme_test")
	_, _, otherSecret := parts(t, other.Secret().Reveal())

	flipped := []byte(secret.Reveal())
	flipped[len(flipped)-1] ^= 1

	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"empty", "", apikey.ErrMalformedKey},
		{"garbage", "hello world", apikey.ErrMalformedKey},
		{"flipped checksum", string(flipped), apikey.ErrInvalidKey},
		{"unknown kid", other.Secret().Reveal(), apikey.ErrInvalidKey},
		{"wrong secret for a known kid", forge(prefix, id, otherSecret), apikey.ErrInvalidKey},
		{"right secret under another prefix", forge("acme_live", id, secretPart), apikey.ErrInvalidKey},
		{"10 KB", strings.Repeat("a", 10<<10), apikey.ErrMalformedKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := m.Verify(ctx, tt.token)
			require.ErrorIs(t, err, tt.want)
			require.ErrorIs(t, err, apikey.ErrInvalidKey)
			require.Nil(t, got)
		})
	}

	// The same secret and ID verify again: nothing above was cached wrongly.
	_, err = m.Verify(ctx, secret.Reveal())
	require.NoError(t, err)
}

func TestVerifyTimeBounds(t *testing.T) {
	ctx := context.Background()
	m, _, clock := newTestManager(t)
	now := clock.Now()
	secret, _, err := m.Issue(ctx, apikey.IssueRequest{
		Owner:     "o",
		NotBefore: now.Add(time.Hour),
		ExpiresAt: now.Add(2 * time.Hour),
	})
	require.NoError(t, err)

	_, err = m.Verify(ctx, secret.Reveal())
	require.ErrorIs(t, err, apikey.ErrNotYetValid)
	clock.Advance(time.Hour)
	_, err = m.Verify(ctx, secret.Reveal())
	require.NoError(t, err)
	clock.Advance(time.Hour - time.Microsecond)
	_, err = m.Verify(ctx, secret.Reveal())
	require.NoError(t, err, "valid until the last instant before ExpiresAt")
	clock.Advance(time.Microsecond)
	_, err = m.Verify(ctx, secret.Reveal())
	require.ErrorIs(t, err, apikey.ErrExpired)
}

func TestRevokeTakesEffectAtOnce(t *testing.T) {
	ctx := context.Background()
	m, _, _ := newTestManager(t, apikey.WithCache(1000, 10*time.Minute))
	secret, k, err := m.Issue(ctx, apikey.IssueRequest{Owner: "o"})
	require.NoError(t, err)
	_, err = m.Verify(ctx, secret.Reveal()) // now cached for 10 minutes
	require.NoError(t, err)

	require.NoError(t, m.Revoke(ctx, k.ID))
	_, err = m.Verify(ctx, secret.Reveal())
	require.ErrorIs(t, err, apikey.ErrRevoked)

	require.NoError(t, m.Revoke(ctx, k.ID), "revoking twice is not an error")
	require.ErrorIs(t, m.Revoke(ctx, "000000000000"), apikey.ErrNotFound)
	got, err := m.Get(ctx, k.ID)
	require.NoError(t, err)
	assert.False(t, got.RevokedAt.IsZero())
}

func TestRevokeReachesOtherManagers(t *testing.T) {
	// Two Managers (two processes, in effect) on one Store that
	// implements Watcher, both caching for 10 minutes.
	ctx := context.Background()
	store := memstore.New()
	newManager := func() *apikey.Manager {
		m, err := apikey.NewManager(store, apikey.WithPrefix("acme_test"), apikey.WithPepper("v1", testPepper),
			apikey.WithCache(1000, 10*time.Minute))
		require.NoError(t, err)
		t.Cleanup(func() { m.Close() })
		return m
	}
	a, b := newManager(), newManager()
	secret, k, err := a.Issue(ctx, apikey.IssueRequest{Owner: "o"})
	require.NoError(t, err)
	_, err = b.Verify(ctx, secret.Reveal())
	require.NoError(t, err)

	require.NoError(t, a.Revoke(ctx, k.ID))
	require.Eventually(t, func() bool {
		_, err := b.Verify(ctx, secret.Reveal())
		return errors.Is(err, apikey.ErrRevoked)
	}, time.Second, 5*time.Millisecond)
}

func TestVerifyStoreFailureIsUnavailable(t *testing.T) {
	ctx := context.Background()
	mem := memstore.New()
	store := &countingStore{Store: mem, failErr: errors.New("connection refused")}
	m, err := apikey.NewManager(store, apikey.WithPrefix("acme_test"), apikey.WithPepper("v1", testPepper))
	require.NoError(t, err)
	defer m.Close()
	secret, _, err := m.Issue(ctx, apikey.IssueRequest{Owner: "o"})
	require.NoError(t, err)

	store.failing.Store(true)
	got, err := m.Verify(ctx, secret.Reveal())
	require.ErrorIs(t, err, apikey.ErrUnavailable)
	require.NotErrorIs(t, err, apikey.ErrInvalidKey, "a store outage must not tell a valid caller the key is bad")
	require.Nil(t, got)
	assert.Contains(t, err.Error(), "connection refused")
	assert.NotContains(t, err.Error(), secret.Reveal())

	// Failures are not cached: the key verifies once the store is back.
	store.failing.Store(false)
	_, err = m.Verify(ctx, secret.Reveal())
	require.NoError(t, err)
}

func TestVerifyHonoursContext(t *testing.T) {
	store := &countingStore{Store: memstore.New(), delay: time.Minute}
	m, err := apikey.NewManager(store, apikey.WithPrefix("acme_test"), apikey.WithPepper("v1", testPepper))
	require.NoError(t, err)
	defer m.Close()
	tok, _ := apikey.Generate("acme_test")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = m.Verify(ctx, tok.Secret().Reveal())
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), 5*time.Second)
}

func TestCacheCoalescesMisses(t *testing.T) {
	ctx := context.Background()
	store := &countingStore{Store: memstore.New(), delay: 20 * time.Millisecond}
	m, err := apikey.NewManager(store, apikey.WithPrefix("acme_test"), apikey.WithPepper("v1", testPepper))
	require.NoError(t, err)
	defer m.Close()
	secret, _, err := m.Issue(ctx, apikey.IssueRequest{Owner: "o"})
	require.NoError(t, err)

	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := m.Verify(ctx, secret.Reveal())
			assert.NoError(t, err)
		}()
	}
	wg.Wait()
	assert.Equal(t, int64(1), store.gets.Load(), "50 concurrent misses for one ID make one store call")

	// Unknown IDs are cached as such.
	unknown, _ := apikey.Generate("acme_test")
	for i := 0; i < 5; i++ {
		_, err := m.Verify(ctx, unknown.Secret().Reveal())
		require.ErrorIs(t, err, apikey.ErrInvalidKey)
	}
	assert.Equal(t, int64(2), store.gets.Load(), "a negative entry keeps repeated unknown IDs from the store")

	// Malformed tokens never reach the store.
	for _, bad := range []string{"", "x", strings.Repeat("a", 300), unknown.Secret().Reveal() + "0"} {
		_, _ = m.Verify(ctx, bad)
	}
	assert.Equal(t, int64(2), store.gets.Load())
}

func TestCacheTTL(t *testing.T) {
	ctx := context.Background()
	mem := memstore.New()
	store := &countingStore{Store: mem}
	clock := newFakeClock()
	m, err := apikey.NewManager(store, apikey.WithPrefix("acme_test"), apikey.WithPepper("v1", testPepper),
		apikey.WithClock(clock.Now), apikey.WithCache(100, time.Minute), apikey.WithNegativeCache(100, time.Second))
	require.NoError(t, err)
	defer m.Close()
	secret, _, err := m.Issue(ctx, apikey.IssueRequest{Owner: "o"})
	require.NoError(t, err)

	verify := func() {
		_, err := m.Verify(ctx, secret.Reveal())
		require.NoError(t, err)
	}
	verify()
	verify()
	assert.Equal(t, int64(1), store.gets.Load())
	clock.Advance(59 * time.Second)
	verify()
	assert.Equal(t, int64(1), store.gets.Load())
	clock.Advance(time.Second)
	verify()
	assert.Equal(t, int64(2), store.gets.Load(), "entry expired after its TTL")

	// A key created after its ID was cached as unknown is found once the
	// negative entry expires (another process created it, unseen here).
	tok, _ := apikey.Generate("acme_test")
	_, err = m.Verify(ctx, tok.Secret().Reveal())
	require.ErrorIs(t, err, apikey.ErrInvalidKey)
	assert.Equal(t, int64(3), store.gets.Load())
	clock.Advance(time.Second)
	_, err = m.Verify(ctx, tok.Secret().Reveal())
	require.ErrorIs(t, err, apikey.ErrInvalidKey)
	assert.Equal(t, int64(4), store.gets.Load())
}

func TestCacheDisabled(t *testing.T) {
	ctx := context.Background()
	store := &countingStore{Store: memstore.New()}
	m, err := apikey.NewManager(store, apikey.WithPrefix("acme_test"), apikey.WithPepper("v1", testPepper), apikey.WithCache(0, 0))
	require.NoError(t, err)
	defer m.Close()
	secret, _, err := m.Issue(ctx, apikey.IssueRequest{Owner: "o"})
	require.NoError(t, err)
	for i := 0; i < 3; i++ {
		_, err := m.Verify(ctx, secret.Reveal())
		require.NoError(t, err)
	}
	assert.Equal(t, int64(3), store.gets.Load())
}

func TestRotate(t *testing.T) {
	ctx := context.Background()
	m, _, clock := newTestManager(t, apikey.WithCache(1000, 10*time.Minute))
	now := clock.Now()
	oldSecret, old, err := m.Issue(ctx, apikey.IssueRequest{
		Owner: "team", Name: "prod", Scopes: []string{"orders:read"},
		ExpiresAt:  now.Add(90 * 24 * time.Hour),
		RateLimit:  apikey.Limit{Rate: 5, Period: time.Second, Burst: 5},
		Quota:      apikey.Quota{Limit: 100, Period: time.Hour},
		AllowedIPs: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")},
		Metadata:   map[string]string{"plan": "pro"},
	})
	require.NoError(t, err)
	_, err = m.Verify(ctx, oldSecret.Reveal())
	require.NoError(t, err)

	clock.Advance(30 * 24 * time.Hour)
	newSecret, k, err := m.Rotate(ctx, old.ID, time.Hour)
	require.NoError(t, err)
	assert.NotEqual(t, old.ID, k.ID)
	assert.Equal(t, old.ID, k.RotatedFrom)
	for name, pair := range map[string][2]any{
		"Owner": {old.Owner, k.Owner}, "Name": {old.Name, k.Name}, "Scopes": {old.Scopes, k.Scopes},
		"RateLimit": {old.RateLimit, k.RateLimit}, "Quota": {old.Quota, k.Quota},
		"AllowedIPs": {old.AllowedIPs, k.AllowedIPs}, "Metadata": {old.Metadata, k.Metadata}, "Prefix": {old.Prefix, k.Prefix},
	} {
		assert.Equal(t, pair[0], pair[1], name)
	}
	assert.True(t, k.ExpiresAt.Equal(clock.Now().Add(90*24*time.Hour)), "the replacement gets the old key's lifetime")

	stored, err := m.Get(ctx, old.ID)
	require.NoError(t, err)
	assert.Equal(t, k.ID, stored.ReplacedBy)

	// Both work during the grace period, even though the old one was cached.
	_, err = m.Verify(ctx, oldSecret.Reveal())
	require.NoError(t, err)
	_, err = m.Verify(ctx, newSecret.Reveal())
	require.NoError(t, err)

	clock.Advance(time.Hour)
	_, err = m.Verify(ctx, oldSecret.Reveal())
	require.ErrorIs(t, err, apikey.ErrExpired)
	_, err = m.Verify(ctx, newSecret.Reveal())
	require.NoError(t, err)

	_, _, err = m.Rotate(ctx, old.ID, time.Hour)
	require.Error(t, err, "an expired, rotated key cannot be rotated again")
}

func TestRotateRejects(t *testing.T) {
	ctx := context.Background()
	m, store, _ := newTestManager(t)
	_, a, err := m.Issue(ctx, apikey.IssueRequest{Owner: "o"})
	require.NoError(t, err)
	_, b, err := m.Issue(ctx, apikey.IssueRequest{Owner: "o"})
	require.NoError(t, err)

	_, _, err = m.Rotate(ctx, a.ID, -time.Second)
	require.ErrorIs(t, err, apikey.ErrInvalidRequest)
	_, _, err = m.Rotate(ctx, "000000000000", time.Hour)
	require.ErrorIs(t, err, apikey.ErrNotFound)

	_, _, err = m.Rotate(ctx, a.ID, 24*time.Hour)
	require.NoError(t, err)
	_, _, err = m.Rotate(ctx, a.ID, 24*time.Hour)
	require.ErrorIs(t, err, apikey.ErrConflict, "a key is rotated once; rotate its replacement instead")

	require.NoError(t, m.Revoke(ctx, b.ID))
	_, _, err = m.Rotate(ctx, b.ID, time.Hour)
	require.ErrorIs(t, err, apikey.ErrRevoked)
	assert.Equal(t, 3, store.Len(), "failed rotations wrote nothing")
}

// noRotatorStore is a Store without the Rotator interface whose Update
// can be made to fail, to test Manager.Rotate's fallback.
type noRotatorStore struct {
	*countingStore
}

func TestRotateFallbackUndoesHalfWrite(t *testing.T) {
	ctx := context.Background()
	mem := memstore.New()
	store := noRotatorStore{&countingStore{Store: mem, failErr: errors.New("disk full")}}
	m, err := apikey.NewManager(store, apikey.WithPrefix("acme_test"), apikey.WithPepper("v1", testPepper))
	require.NoError(t, err)
	defer m.Close()
	oldSecret, old, err := m.Issue(ctx, apikey.IssueRequest{Owner: "o"})
	require.NoError(t, err)

	// Create succeeds, the old key's update fails: the replacement must
	// not be usable and the old key must be unchanged.
	store.failing.Store(true)
	_, _, err = m.Rotate(ctx, old.ID, time.Hour)
	require.ErrorIs(t, err, apikey.ErrUnavailable)
	store.failing.Store(false)

	_, err = m.Verify(ctx, oldSecret.Reveal())
	require.NoError(t, err)
	got, err := m.Get(ctx, old.ID)
	require.NoError(t, err)
	assert.Empty(t, got.ReplacedBy)
	assert.True(t, got.ExpiresAt.IsZero())

	// Rotation through the fallback works once the store does.
	newSecret, _, err := m.Rotate(ctx, old.ID, time.Hour)
	require.NoError(t, err)
	_, err = m.Verify(ctx, newSecret.Reveal())
	require.NoError(t, err)
}

func TestIssueRejects(t *testing.T) {
	ctx := context.Background()
	m, store, clock := newTestManager(t)
	now := clock.Now()
	tooMany := map[string]string{}
	for i := 0; i <= apikey.MaxMetadataEntries; i++ {
		tooMany[fmt.Sprint(i)] = "v"
	}
	tests := []struct {
		name string
		req  apikey.IssueRequest
		want error
	}{
		{"no owner", apikey.IssueRequest{}, apikey.ErrInvalidRequest},
		{"owner with newline", apikey.IssueRequest{Owner: "a\nb"}, apikey.ErrInvalidRequest},
		{"owner not UTF-8", apikey.IssueRequest{Owner: "\xff"}, apikey.ErrInvalidRequest},
		{"owner too long", apikey.IssueRequest{Owner: strings.Repeat("o", apikey.MaxOwnerLen+1)}, apikey.ErrInvalidRequest},
		{"name with NUL", apikey.IssueRequest{Owner: "o", Name: "a\x00"}, apikey.ErrInvalidRequest},
		{"bad scope", apikey.IssueRequest{Owner: "o", Scopes: []string{"orders::read"}}, apikey.ErrInvalidScope},
		{"too many scopes", apikey.IssueRequest{Owner: "o", Scopes: make([]string, apikey.MaxScopes+1)}, apikey.ErrInvalidRequest},
		{"expired", apikey.IssueRequest{Owner: "o", ExpiresAt: now}, apikey.ErrInvalidRequest},
		{"not-before after expiry", apikey.IssueRequest{Owner: "o", ExpiresAt: now.Add(time.Hour), NotBefore: now.Add(2 * time.Hour)}, apikey.ErrInvalidRequest},
		{"zero rate", apikey.IssueRequest{Owner: "o", RateLimit: apikey.Limit{Period: time.Second}}, apikey.ErrInvalidRequest},
		{"negative burst", apikey.IssueRequest{Owner: "o", RateLimit: apikey.Limit{Rate: 1, Period: time.Second, Burst: -1}}, apikey.ErrInvalidRequest},
		{"quota without period", apikey.IssueRequest{Owner: "o", Quota: apikey.Quota{Limit: 10}}, apikey.ErrInvalidRequest},
		{"invalid IP prefix", apikey.IssueRequest{Owner: "o", AllowedIPs: []netip.Prefix{{}}}, apikey.ErrInvalidRequest},
		{"too much metadata", apikey.IssueRequest{Owner: "o", Metadata: tooMany}, apikey.ErrInvalidRequest},
		{"empty metadata key", apikey.IssueRequest{Owner: "o", Metadata: map[string]string{"": "v"}}, apikey.ErrInvalidRequest},
		{"metadata not UTF-8", apikey.IssueRequest{Owner: "o", Metadata: map[string]string{"k": "\xc3"}}, apikey.ErrInvalidRequest},
		{"huge metadata value", apikey.IssueRequest{Owner: "o", Metadata: map[string]string{"k": strings.Repeat("v", apikey.MaxMetadataSize)}}, apikey.ErrInvalidRequest},
		{"metadata over its total size", apikey.IssueRequest{Owner: "o", Metadata: func() map[string]string {
			md := map[string]string{}
			for i := range 60 {
				md[fmt.Sprint("k", i)] = strings.Repeat("v", apikey.MaxMetadataSize/60)
			}
			return md
		}()}, apikey.ErrInvalidRequest},
		{"owner with a bidi override", apikey.IssueRequest{Owner: "admin\u202etxt.exe"}, apikey.ErrInvalidRequest},
		{"name with a bidi isolate", apikey.IssueRequest{Owner: "o", Name: "ci\u2066key"}, apikey.ErrInvalidRequest},
		{"IPv4-mapped prefix wider than /96", apikey.IssueRequest{Owner: "o", AllowedIPs: []netip.Prefix{netip.MustParsePrefix("::ffff:0.0.0.0/80")}}, apikey.ErrInvalidRequest},
		{"bad prefix override", apikey.IssueRequest{Owner: "o", Prefix: "ACME"}, apikey.ErrInvalidPrefix},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			secret, k, err := m.Issue(ctx, tt.req)
			require.ErrorIs(t, err, tt.want)
			require.True(t, secret.IsZero())
			require.Nil(t, k)
			require.Zero(t, store.Len(), "nothing written")
		})
	}
}

func TestIssuePrefixOverride(t *testing.T) {
	ctx := context.Background()
	m, _, _ := newTestManager(t)
	secret, k, err := m.Issue(ctx, apikey.IssueRequest{Owner: "o", Prefix: "acme_live"})
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(secret.Reveal(), "acme_live_"))
	assert.Equal(t, "acme_live", k.Prefix)
	_, err = m.Verify(ctx, secret.Reveal())
	require.NoError(t, err)
}

func TestPepperRotation(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	pepperV2 := []byte("a-brand-new-pepper-for-version-2")
	v1, err := apikey.NewManager(store, apikey.WithPrefix("acme_test"), apikey.WithPepper("v1", testPepper))
	require.NoError(t, err)
	defer v1.Close()
	secret, k, err := v1.Issue(ctx, apikey.IssueRequest{Owner: "o"})
	require.NoError(t, err)

	// A Manager that only knows v2 refuses the key...
	v2only, err := apikey.NewManager(store, apikey.WithPrefix("acme_test"), apikey.WithPepper("v2", pepperV2))
	require.NoError(t, err)
	defer v2only.Close()
	_, err = v2only.Verify(ctx, secret.Reveal())
	require.ErrorIs(t, err, apikey.ErrInvalidKey)

	// ...one that knows v1 as previous verifies it and re-digests it...
	both, err := apikey.NewManager(store, apikey.WithPrefix("acme_test"), apikey.WithPepper("v2", pepperV2),
		apikey.WithPreviousPepper("v1", testPepper))
	require.NoError(t, err)
	defer both.Close()
	_, err = both.Verify(ctx, secret.Reveal())
	require.NoError(t, err)
	got, err := both.Get(ctx, k.ID)
	require.NoError(t, err)
	assert.Equal(t, "hmac-sha256/v2", got.DigestVersion)
	assert.NotEqual(t, k.Digest, got.Digest)

	// ...after which v1 is no longer needed.
	v2again, err := apikey.NewManager(store, apikey.WithPrefix("acme_test"), apikey.WithPepper("v2", pepperV2), apikey.WithCache(0, 0))
	require.NoError(t, err)
	defer v2again.Close()
	_, err = v2again.Verify(ctx, secret.Reveal())
	require.NoError(t, err)
}

func TestUnkeyedDigest(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	unkeyed, err := apikey.NewManager(store, apikey.WithPrefix("acme_test"), apikey.WithUnkeyedDigest())
	require.NoError(t, err)
	defer unkeyed.Close()
	secret, k, err := unkeyed.Issue(ctx, apikey.IssueRequest{Owner: "o"})
	require.NoError(t, err)
	assert.Equal(t, "sha256", k.DigestVersion)
	_, err = unkeyed.Verify(ctx, secret.Reveal())
	require.NoError(t, err)

	// A peppered Manager refuses unkeyed digests unless told otherwise:
	// whoever can write to the store could compute one for a key of
	// their choosing.
	peppered, err := apikey.NewManager(store, apikey.WithPrefix("acme_test"), apikey.WithPepper("v1", testPepper))
	require.NoError(t, err)
	defer peppered.Close()
	_, err = peppered.Verify(ctx, secret.Reveal())
	require.ErrorIs(t, err, apikey.ErrInvalidKey)

	// Moving to a pepper: both options, and unkeyed keys are re-digested.
	moving, err := apikey.NewManager(store, apikey.WithPrefix("acme_test"), apikey.WithPepper("v1", testPepper),
		apikey.WithUnkeyedDigest())
	require.NoError(t, err)
	defer moving.Close()
	_, err = moving.Verify(ctx, secret.Reveal())
	require.NoError(t, err)
	got, err := moving.Get(ctx, k.ID)
	require.NoError(t, err)
	assert.Equal(t, "hmac-sha256/v1", got.DigestVersion)
	_, fresh, err := moving.Issue(ctx, apikey.IssueRequest{Owner: "o"})
	require.NoError(t, err)
	assert.Equal(t, "hmac-sha256/v1", fresh.DigestVersion, "new keys use the pepper")

	peppered2, err := apikey.NewManager(store, apikey.WithPrefix("acme_test"), apikey.WithPepper("v1", testPepper))
	require.NoError(t, err)
	defer peppered2.Close()
	_, err = peppered2.Verify(ctx, secret.Reveal())
	require.NoError(t, err, "after re-digesting, the pepper alone verifies it")
}

func TestLastUsedFlushedOnClose(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	clock := newFakeClock()
	m, err := apikey.NewManager(store, apikey.WithPrefix("acme_test"), apikey.WithPepper("v1", testPepper),
		apikey.WithClock(clock.Now), apikey.WithLastUsedInterval(time.Hour))
	require.NoError(t, err)
	secret, k, err := m.Issue(ctx, apikey.IssueRequest{Owner: "o"})
	require.NoError(t, err)
	clock.Advance(time.Minute)
	_, err = m.Verify(ctx, secret.Reveal())
	require.NoError(t, err)
	before, err := store.Get(ctx, k.ID)
	require.NoError(t, err)
	assert.True(t, before.LastUsedAt.IsZero(), "no write on the verify path")

	require.NoError(t, m.Close())
	require.NoError(t, m.Close(), "Close twice is fine")
	after, err := store.Get(ctx, k.ID)
	require.NoError(t, err)
	assert.True(t, after.LastUsedAt.Equal(clock.Now()), "got %v", after.LastUsedAt)
}

func TestLastUsedFlushedInBackground(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	m, err := apikey.NewManager(store, apikey.WithPrefix("acme_test"), apikey.WithPepper("v1", testPepper),
		apikey.WithLastUsedInterval(20*time.Millisecond))
	require.NoError(t, err)
	defer m.Close()
	secret, k, err := m.Issue(ctx, apikey.IssueRequest{Owner: "o"})
	require.NoError(t, err)
	_, err = m.Verify(ctx, secret.Reveal())
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		got, err := store.Get(ctx, k.ID)
		return err == nil && !got.LastUsedAt.IsZero()
	}, 5*time.Second, 10*time.Millisecond)
}

func TestList(t *testing.T) {
	ctx := context.Background()
	m, _, _ := newTestManager(t)
	for i := 0; i < 5; i++ {
		_, _, err := m.Issue(ctx, apikey.IssueRequest{Owner: "a"})
		require.NoError(t, err)
	}
	_, _, err := m.Issue(ctx, apikey.IssueRequest{Owner: "b"})
	require.NoError(t, err)
	keys, next, err := m.List(ctx, apikey.ListOptions{Owner: "a", Limit: 3})
	require.NoError(t, err)
	require.Len(t, keys, 3)
	keys2, next2, err := m.List(ctx, apikey.ListOptions{Owner: "a", Cursor: next, Limit: 3})
	require.NoError(t, err)
	require.Len(t, keys2, 2)
	require.Empty(t, next2)
}

// TestConcurrentIssueVerifyRevoke hammers one Manager from many
// goroutines; once Revoke returns, the key must never verify again.
func TestConcurrentIssueVerifyRevoke(t *testing.T) {
	ctx := context.Background()
	m, _, _ := newTestManager(t, apikey.WithCache(1000, time.Hour))
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				secret, k, err := m.Issue(ctx, apikey.IssueRequest{Owner: fmt.Sprint("w", w)})
				if !assert.NoError(t, err) {
					return
				}
				var inner sync.WaitGroup
				stop := make(chan struct{})
				for r := 0; r < 3; r++ {
					inner.Add(1)
					go func() {
						defer inner.Done()
						for {
							select {
							case <-stop:
								return
							default:
							}
							_, err := m.Verify(ctx, secret.Reveal())
							if err != nil && !errors.Is(err, apikey.ErrRevoked) {
								t.Errorf("Verify: %v", err)
								return
							}
						}
					}()
				}
				if i%2 == 0 {
					_, _, err = m.Rotate(ctx, k.ID, time.Hour)
					assert.NoError(t, err)
				}
				assert.NoError(t, m.Revoke(ctx, k.ID))
				_, err = m.Verify(ctx, secret.Reveal())
				assert.ErrorIs(t, err, apikey.ErrRevoked, "revoked key verified after Revoke returned")
				close(stop)
				inner.Wait()
			}
		}()
	}
	wg.Wait()
}

func TestVerifyCacheHitDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race; .ci/run runs this test without it")
	}
	ctx := context.Background()
	m, _, _ := newTestManager(t)
	secret, _, err := m.Issue(ctx, apikey.IssueRequest{Owner: "o", Scopes: []string{"a"}})
	require.NoError(t, err)
	token := secret.Reveal()
	_, err = m.Verify(ctx, token)
	require.NoError(t, err)
	allocs := testing.AllocsPerRun(1000, func() {
		if _, err := m.Verify(ctx, token); err != nil {
			t.Fatal(err)
		}
	})
	assert.Zero(t, allocs)
}

func TestStaleIfError(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name      string
		opts      []apikey.Option
		wantStale bool
	}{
		{"off by default", nil, false},
		{"enabled", []apikey.Option{apikey.WithStaleIfError(time.Minute)}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			store := &countingStore{Store: memstore.New(), failErr: errors.New("connection refused")}
			clock := newFakeClock()
			m, err := apikey.NewManager(store, append([]apikey.Option{apikey.WithPrefix("acme_test"),
				apikey.WithPepper("v1", testPepper), apikey.WithClock(clock.Now), apikey.WithCache(100, time.Minute)}, tt.opts...)...)
			require.NoError(t, err)
			defer m.Close()
			secret, k, err := m.Issue(ctx, apikey.IssueRequest{Owner: "o"})
			require.NoError(t, err)
			_, err = m.Verify(ctx, secret.Reveal())
			require.NoError(t, err)

			store.failing.Store(true)
			clock.Advance(90 * time.Second) // past the TTL, within TTL + stale window
			_, err = m.Verify(ctx, secret.Reveal())
			if tt.wantStale {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, apikey.ErrUnavailable)
			}
			clock.Advance(31 * time.Second) // past TTL + stale window
			_, err = m.Verify(ctx, secret.Reveal())
			require.ErrorIs(t, err, apikey.ErrUnavailable)

			// Revoke drops the Manager's entry, so no stale valid entry
			// is left to serve while the store fails.
			store.failing.Store(false)
			_, err = m.Verify(ctx, secret.Reveal())
			require.NoError(t, err)
			require.NoError(t, m.Revoke(ctx, k.ID))
			store.failing.Store(true)
			clock.Advance(90 * time.Second)
			_, err = m.Verify(ctx, secret.Reveal())
			require.ErrorIs(t, err, apikey.ErrUnavailable)
		})
	}
}

// failingWatcher is a Store whose Watch fails at once, the first times.
type failingWatcher struct {
	*memstore.Store
	calls atomic.Int64
}

func (s *failingWatcher) Watch(ctx context.Context, changed func(string)) error {
	if s.calls.Add(1) <= 1 {
		return errors.New("notifications not configured")
	}
	return s.Store.Watch(ctx, changed)
}

func TestWatchFailureIsReportedAndRetried(t *testing.T) {
	ctx := context.Background()
	store := &failingWatcher{Store: memstore.New()}
	reported := make(chan error, 10)
	m, err := apikey.NewManager(store, apikey.WithPrefix("acme_test"), apikey.WithPepper("v1", testPepper),
		apikey.WithCache(100, 10*time.Minute), apikey.WithBackgroundErrors(func(err error) { reported <- err }))
	require.NoError(t, err)
	defer m.Close()
	select {
	case err := <-reported:
		assert.ErrorContains(t, err, "notifications not configured")
	case <-time.After(5 * time.Second):
		t.Fatal("a failed Watch was not reported")
	}
	// After the retry, a change by another Manager reaches this one.
	other, err := apikey.NewManager(store.Store, apikey.WithPrefix("acme_test"), apikey.WithPepper("v1", testPepper))
	require.NoError(t, err)
	defer other.Close()
	secret, k, err := other.Issue(ctx, apikey.IssueRequest{Owner: "o"})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return store.calls.Load() >= 2 }, 5*time.Second, 10*time.Millisecond)
	_, err = m.Verify(ctx, secret.Reveal())
	require.NoError(t, err)
	require.NoError(t, other.Revoke(ctx, k.ID))
	require.Eventually(t, func() bool {
		_, err := m.Verify(ctx, secret.Reveal())
		return errors.Is(err, apikey.ErrRevoked)
	}, time.Second, 5*time.Millisecond)
}

// TestVerifyRefusesMalformedDigest: a stored digest of the wrong length,
// shorter or longer (say, with bytes appended by a bug or by someone with
// write access to the store), refuses even the right secret.
func TestVerifyRefusesMalformedDigest(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func([]byte) []byte
	}{
		{"short", func(d []byte) []byte { return d[:len(d)-1] }},
		{"long", func(d []byte) []byte { return append(append([]byte(nil), d...), 0, 0) }},
		{"empty", func([]byte) []byte { return nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			m, store, _ := newTestManager(t, apikey.WithCache(0, 0))
			secret, k, err := m.Issue(ctx, apikey.IssueRequest{Owner: "o"})
			require.NoError(t, err)
			_, err = m.Verify(ctx, secret.Reveal())
			require.NoError(t, err)
			rec, err := store.Get(ctx, k.ID)
			require.NoError(t, err)
			rec.Digest = tc.change(rec.Digest)
			require.NoError(t, store.Update(ctx, rec))
			_, err = m.Verify(ctx, secret.Reveal())
			require.ErrorIs(t, err, apikey.ErrInvalidKey)
		})
	}
}

// alwaysConflicts is a Store on which every write that marks a key
// rotated loses a race, as if another writer changed the old key each
// time; other writes (the undo of a half-made replacement) succeed.
type alwaysConflicts struct{ apikey.Store }

func (s alwaysConflicts) Update(ctx context.Context, k *apikey.Key) error {
	if k.ReplacedBy != "" {
		return apikey.ErrConflict
	}
	return s.Store.Update(ctx, k)
}

// TestRotateGivesUpWithErrConflict: a key that keeps changing under
// Rotate ends in ErrConflict, which callers can match, after a bounded
// number of attempts.
func TestRotateGivesUpWithErrConflict(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	m, err := apikey.NewManager(alwaysConflicts{store}, apikey.WithPrefix("acme_test"), apikey.WithPepper("v1", testPepper))
	require.NoError(t, err)
	defer m.Close()
	_, k, err := m.Issue(ctx, apikey.IssueRequest{Owner: "o"})
	require.NoError(t, err)
	_, _, err = m.Rotate(ctx, k.ID, time.Hour)
	require.ErrorIs(t, err, apikey.ErrConflict)
}
