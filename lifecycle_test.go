package apikey_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/memstore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBadIDsChangeNothing: Revoke(ctx, "") used to empty the whole
// verification cache and return ErrNotFound (item 4 of issue 12). An
// empty or malformed ID, or a whole key pasted instead of its ID, is now
// refused by every entry point that takes an ID, changes nothing (the
// cache keeps serving without the store), and the error does not repeat
// what was given.
func TestBadIDsChangeNothing(t *testing.T) {
	store := &countingStore{Store: memstore.New()}
	m, err := apikey.NewManager(store, apikey.WithPrefix("acme_test"), apikey.WithPepper("v1", testPepper))
	require.NoError(t, err)
	defer m.Close()
	ctx := context.Background()
	secret, k, err := m.Issue(ctx, apikey.IssueRequest{Owner: "o"})
	require.NoError(t, err)
	_, err = m.Verify(ctx, secret.Reveal())
	require.NoError(t, err)
	gets := store.gets.Load()

	one := "x"
	for _, id := range []string{"", " ", "AbCdEf12345", "AbCdEf1234567", "AbCdEf12345!", secret.Reveal()} {
		for name, call := range map[string]func() error{
			"Revoke":  func() error { return m.Revoke(ctx, id) },
			"Suspend": func() error { return m.Suspend(ctx, id) },
			"Resume":  func() error { return m.Resume(ctx, id) },
			"Rotate":  func() error { _, _, err := m.Rotate(ctx, id, 0); return err },
			"Update":  func() error { _, err := m.Update(ctx, id, apikey.KeyUpdate{Name: &one}); return err },
			"Get":     func() error { _, err := m.Get(ctx, id); return err },
		} {
			err := call()
			require.ErrorIs(t, err, apikey.ErrInvalidRequest, "%s(%q)", name, id)
			assert.NotContains(t, err.Error(), secret.Reveal(), "%s echoes its argument", name)
		}
	}
	_, err = m.Verify(ctx, secret.Reveal())
	require.NoError(t, err)
	assert.Equal(t, gets, store.gets.Load(), "the cache was emptied")
	got, err := m.Get(ctx, k.ID)
	require.NoError(t, err)
	assert.Equal(t, k.Revision, got.Revision, "the record changed")
}

// TestUpdate: Manager.Update applies the rules of Issue (item 11 of issue
// 12): Store.Update had accepted scope "orders::bad", RateLimit{0, -5ns}
// and an empty owner, and the key then got 503 on every request.
func TestUpdate(t *testing.T) {
	m, store, clock := newTestManager(t)
	ctx := context.Background()
	secret, k, err := m.Issue(ctx, apikey.IssueRequest{Owner: "team", Name: "ci", Scopes: []string{"orders:read"},
		Metadata: map[string]string{"plan": "pro"}})
	require.NoError(t, err)

	name := "deploy"
	scopes := []string{"orders:read", "orders:write"}
	limit := apikey.Limit{Rate: 10, Period: time.Second}
	quota := apikey.Quota{Limit: 1000, Period: 24 * time.Hour}
	expires := clock.Now().Add(time.Hour)
	ips := []netip.Prefix{netip.MustParsePrefix("::ffff:10.1.0.0/112")}
	md := map[string]string{}
	got, err := m.Update(ctx, k.ID, apikey.KeyUpdate{Name: &name, Scopes: &scopes, RateLimit: &limit, Quota: &quota,
		ExpiresAt: &expires, AllowedIPs: &ips, Metadata: &md})
	require.NoError(t, err)
	assert.Equal(t, "deploy", got.Name)
	assert.Equal(t, scopes, got.Scopes)
	assert.Equal(t, limit, got.RateLimit)
	assert.Equal(t, quota, got.Quota)
	assert.True(t, got.ExpiresAt.Equal(expires))
	assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}, got.AllowedIPs, "IPv4-mapped prefixes are stored as IPv4")
	assert.Nil(t, got.Metadata, "a pointer to an empty map clears metadata")
	assert.Equal(t, "team", got.Owner)
	stored, err := store.Get(ctx, k.ID)
	require.NoError(t, err)
	assert.Equal(t, got, stored)

	// The change takes effect on the cached key at once.
	v, err := m.Verify(ctx, secret.Reveal())
	require.NoError(t, err)
	assert.Equal(t, scopes, v.Scopes)

	bad := func(u apikey.KeyUpdate, want error) {
		t.Helper()
		before, err := store.Get(ctx, k.ID)
		require.NoError(t, err)
		_, err = m.Update(ctx, k.ID, u)
		require.ErrorIs(t, err, want)
		after, err := store.Get(ctx, k.ID)
		require.NoError(t, err)
		assert.Equal(t, before, after, "a refused update wrote something")
	}
	badScopes := []string{"orders::bad"}
	bad(apikey.KeyUpdate{Scopes: &badScopes}, apikey.ErrInvalidScope)
	badLimit := apikey.Limit{Rate: 0, Period: -5}
	bad(apikey.KeyUpdate{RateLimit: &badLimit}, apikey.ErrInvalidRequest)
	badQuota := apikey.Quota{Limit: -1, Period: time.Hour}
	bad(apikey.KeyUpdate{Quota: &badQuota}, apikey.ErrInvalidRequest)
	spoof := "admin\u202egnp.exe"
	bad(apikey.KeyUpdate{Name: &spoof, Scopes: &scopes}, apikey.ErrInvalidRequest)
	late := expires.Add(time.Hour)
	bad(apikey.KeyUpdate{NotBefore: &late}, apikey.ErrInvalidRequest)
	wide := []netip.Prefix{netip.MustParsePrefix("::ffff:0.0.0.0/64")}
	bad(apikey.KeyUpdate{AllowedIPs: &wide}, apikey.ErrInvalidRequest)
	huge := map[string]string{"k": strings.Repeat("v", apikey.MaxMetadataSize)}
	bad(apikey.KeyUpdate{Metadata: &huge}, apikey.ErrInvalidRequest)

	require.NoError(t, m.Revoke(ctx, k.ID))
	bad(apikey.KeyUpdate{Name: &name}, apikey.ErrRevoked)
	_, err = m.Update(ctx, "AAAAAAAAAAAA", apikey.KeyUpdate{Name: &name})
	assert.ErrorIs(t, err, apikey.ErrNotFound)
}

// TestSuspendResume: a suspended key is refused with its own status until
// it is resumed; a revoked key cannot be suspended or come back.
func TestSuspendResume(t *testing.T) {
	m, _, _ := newTestManager(t)
	ctx := context.Background()
	secret, k, err := m.Issue(ctx, apikey.IssueRequest{Owner: "team"})
	require.NoError(t, err)
	require.NoError(t, m.Suspend(ctx, k.ID))
	require.NoError(t, m.Suspend(ctx, k.ID), "suspending twice")
	_, err = m.Verify(ctx, secret.Reveal())
	require.ErrorIs(t, err, apikey.ErrSuspended)
	got, err := m.Get(ctx, k.ID)
	require.NoError(t, err)
	assert.False(t, got.SuspendedAt.IsZero())
	require.ErrorIs(t, got.Status(time.Now()), apikey.ErrSuspended)
	require.NoError(t, m.Resume(ctx, k.ID))
	require.NoError(t, m.Resume(ctx, k.ID), "resuming twice")
	_, err = m.Verify(ctx, secret.Reveal())
	require.NoError(t, err)
	require.NoError(t, m.Revoke(ctx, k.ID))
	require.ErrorIs(t, m.Suspend(ctx, k.ID), apikey.ErrRevoked)
}

// TestUnknownPepperIsReported: a key digested under a pepper this Manager
// does not have fails as invalid, with no hint to the client, and the
// operator gets one background error per such pepper version (item 13 of
// issue 12).
func TestUnknownPepperIsReported(t *testing.T) {
	store := memstore.New()
	ctx := context.Background()
	old, err := apikey.NewManager(store, apikey.WithPrefix("acme_test"), apikey.WithPepper("old", testPepper))
	require.NoError(t, err)
	defer old.Close()
	var keys []apikey.Secret
	var ids []string
	for range 3 {
		s, k, err := old.Issue(ctx, apikey.IssueRequest{Owner: "o"})
		require.NoError(t, err)
		keys, ids = append(keys, s), append(ids, k.ID)
	}
	var mu sync.Mutex
	var reported []error
	m, err := apikey.NewManager(store, apikey.WithPrefix("acme_test"), apikey.WithPepper("new", []byte("another-pepper-0123456789abcdef")),
		apikey.WithCache(0, 0), apikey.WithBackgroundErrors(func(err error) { mu.Lock(); reported = append(reported, err); mu.Unlock() }))
	require.NoError(t, err)
	defer m.Close()
	assert.Equal(t, []string{"hmac-sha256/new"}, m.DigestVersions())
	for range 2 {
		for _, s := range keys {
			_, err := m.Verify(ctx, s.Reveal())
			require.ErrorIs(t, err, apikey.ErrInvalidKey)
			require.False(t, errors.Is(err, apikey.ErrUnavailable))
		}
	}
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, reported, 1, "one report per pepper version: %v", reported)
	assert.Contains(t, reported[0].Error(), `"hmac-sha256/old"`)
	assert.Contains(t, reported[0].Error(), ids[0])
	for _, s := range keys {
		assert.NotContains(t, reported[0].Error(), s.Reveal())
	}
}

func TestDigestVersions(t *testing.T) {
	m, err := apikey.NewManager(memstore.New(), apikey.WithPrefix("acme_test"),
		apikey.WithPepper("v3", testPepper), apikey.WithPreviousPepper("v2", testPepper), apikey.WithPreviousPepper("v1", testPepper),
		apikey.WithUnkeyedDigest())
	require.NoError(t, err)
	defer m.Close()
	assert.Equal(t, []string{"hmac-sha256/v3", "hmac-sha256/v1", "hmac-sha256/v2", "sha256"}, m.DigestVersions())
}
