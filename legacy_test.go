package apikey_test

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/internal/testclock"
	"github.com/apikeykit/apikey/memstore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// legacyHMACSecret is the old system's HMAC secret in these tests.
var legacyHMACSecret = []byte("the old system's hmac secret")

// legacyRule finds the ID of keys shaped like newLegacyKey's.
var legacyRule = must(apikey.LegacyIDAfter("oldco_", 8))

// newLegacyKey returns a key as the old system made them: "oldco_", an
// 8-character ID, ".", and a random secret.
func newLegacyKey(t testing.TB) (key, id string) {
	t.Helper()
	b := make([]byte, 18)
	rand.Read(b)
	id = hex.EncodeToString(b[:4])
	return "oldco_" + id + "." + base64.RawURLEncoding.EncodeToString(b[4:]), id
}

// legacyFormats hashes a key in each format the import takes, as the old
// system would have stored it, cheaply: bcrypt at its lowest cost, argon2id
// with 64 KiB.
var legacyFormats = []struct {
	name   string
	salted bool
	hash   func(t testing.TB, key string) string
}{
	{"sha256 hex", false, func(_ testing.TB, key string) string {
		sum := sha256.Sum256([]byte(key))
		return "sha256:" + hex.EncodeToString(sum[:])
	}},
	{"sha256 base64", false, func(_ testing.TB, key string) string {
		sum := sha256.Sum256([]byte(key))
		return "sha256:" + base64.StdEncoding.EncodeToString(sum[:])
	}},
	{"hmac-sha256", false, func(_ testing.TB, key string) string {
		h := hmac.New(sha256.New, legacyHMACSecret)
		h.Write([]byte(key))
		return "hmac-sha256:" + hex.EncodeToString(h.Sum(nil))
	}},
	{"bcrypt", true, func(t testing.TB, key string) string {
		b, err := bcrypt.GenerateFromPassword([]byte(key), bcrypt.MinCost)
		require.NoError(t, err)
		return string(b)
	}},
	{"argon2id", true, func(_ testing.TB, key string) string { return argon2idHash(key, 64, 1, 1) }},
}

func argon2idHash(key string, m, t uint32, p uint8) string {
	salt := make([]byte, 16)
	rand.Read(salt)
	sum := argon2.IDKey([]byte(key), salt, t, m, p, 32)
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", m, t, p,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(sum))
}

// wrongLegacyKey is key with its last character changed.
func wrongLegacyKey(key string) string {
	last := byte('A')
	if key[len(key)-1] == 'A' {
		last = 'B'
	}
	return key[:len(key)-1] + string(last)
}

// newLegacyManager is a Manager on a memstore and a fake clock that
// accepts legacy keys found by legacyRule and legacyHMACSecret.
func newLegacyManager(t testing.TB, store apikey.Store, clock *testclock.Clock, cfg apikey.LegacyConfig, opts ...apikey.Option) *apikey.Manager {
	t.Helper()
	if cfg.ID.IsZero() {
		cfg.ID = legacyRule
	}
	if cfg.HMACSecret == nil {
		cfg.HMACSecret = legacyHMACSecret
	}
	m, err := apikey.NewManager(store, append([]apikey.Option{
		apikey.WithPrefix("acme_test"), apikey.WithPepper("v1", testPepper),
		apikey.WithClock(clock.Now), apikey.WithLegacy(cfg),
	}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	return m
}

// importOne imports key under hash and returns its record.
func importOne(t testing.TB, m *apikey.Manager, hash, id string, req apikey.IssueRequest) *apikey.Key {
	t.Helper()
	if req.Owner == "" {
		req.Owner = "team-7"
	}
	keys, err := m.ImportLegacy(context.Background(), []apikey.LegacyImport{{IssueRequest: req, Hash: hash, ID: id}})
	require.NoError(t, err)
	return keys[0]
}

// TestLegacyEachFormat imports a key in each format and presents it to
// the real middleware: it authenticates as its record (owner, scopes),
// in the Authorization header and X-API-Key alike; a wrong key is a 401;
// and once revoked the key is refused as revoked.
func TestLegacyEachFormat(t *testing.T) {
	for _, f := range legacyFormats {
		t.Run(f.name, func(t *testing.T) {
			clock := newFakeClock()
			store := memstore.New()
			m := newLegacyManager(t, store, clock, apikey.LegacyConfig{})
			key, id := newLegacyKey(t)
			if !f.salted {
				id = ""
			}
			k := importOne(t, m, f.hash(t, key), id, apikey.IssueRequest{Owner: "team-7", Scopes: []string{"orders:read"}})
			assert.Equal(t, apikey.LegacyDigestVersion, k.DigestVersion)
			assert.Empty(t, k.Digest)

			var got *apikey.Key
			h := m.Middleware()(apikey.RequireScopes("orders:read")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got, _ = apikey.FromContext(r.Context())
			})))
			w := serve(h, newRequest(withKey(key)))
			require.Equal(t, http.StatusOK, w.Code, w.Body.String())
			require.NotNil(t, got)
			assert.Equal(t, k.ID, got.ID)
			assert.Equal(t, "team-7", got.Owner)

			w = serve(h, newRequest(func(r *http.Request) { r.Header.Set("X-API-Key", key) }))
			assert.Equal(t, http.StatusOK, w.Code)
			assert.NotContains(t, w.Body.String()+fmt.Sprint(w.Header()), key[6:])

			wrong := wrongLegacyKey(key)
			w = serve(h, newRequest(withKey(wrong)))
			assertRejected(t, w, http.StatusUnauthorized, `Bearer realm="api", error="invalid_token", error_description="invalid API key"`)

			// Verify, as a gRPC interceptor would call it.
			vk, err := m.Verify(context.Background(), key)
			require.NoError(t, err)
			assert.Equal(t, k.ID, vk.ID)

			require.NoError(t, m.Revoke(context.Background(), k.ID))
			w = serve(h, newRequest(withKey(key)))
			assertRejected(t, w, http.StatusUnauthorized, `Bearer realm="api", error="invalid_token", error_description="API key revoked"`)
			_, err = m.Verify(context.Background(), key)
			assert.ErrorIs(t, err, apikey.ErrRevoked)
		})
	}
}

// TestLegacyRevokeReachesOtherManagers: a legacy key verified (and
// cached) by a second Manager on the same Store stops working there as
// soon as the first revokes it, through the Store's Watcher.
func TestLegacyRevokeReachesOtherManagers(t *testing.T) {
	store := memstore.New()
	clock := newFakeClock()
	a := newLegacyManager(t, store, clock, apikey.LegacyConfig{})
	b := newLegacyManager(t, store, clock, apikey.LegacyConfig{}, apikey.WithCache(1000, 10*time.Minute))
	for _, f := range legacyFormats {
		key, id := newLegacyKey(t)
		if !f.salted {
			id = ""
		}
		k := importOne(t, a, f.hash(t, key), id, apikey.IssueRequest{})
		_, err := b.Verify(context.Background(), key)
		require.NoError(t, err, f.name)
		require.NoError(t, a.Revoke(context.Background(), k.ID))
		require.Eventually(t, func() bool {
			_, err := b.Verify(context.Background(), key)
			return errors.Is(err, apikey.ErrRevoked)
		}, time.Second, 5*time.Millisecond, f.name)
	}
}

// TestLegacyRecordFollowsItsKey: an imported key's record decides, as a
// native key's does: expiry, suspension, IP allowlist, and prefixes
// refused by WithAllowedPrefixes.
func TestLegacyRecordFollowsItsKey(t *testing.T) {
	clock := newFakeClock()
	m := newLegacyManager(t, memstore.New(), clock, apikey.LegacyConfig{})
	ctx := context.Background()
	key, _ := newLegacyKey(t)
	k := importOne(t, m, legacyFormats[0].hash(t, key), "", apikey.IssueRequest{ExpiresAt: clock.Now().Add(time.Hour)})
	h := m.Middleware()(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	assert.Equal(t, http.StatusOK, serve(h, newRequest(withKey(key))).Code)

	require.NoError(t, m.Suspend(ctx, k.ID))
	_, err := m.Verify(ctx, key)
	assert.ErrorIs(t, err, apikey.ErrSuspended)
	require.NoError(t, m.Resume(ctx, k.ID))

	_, err = m.Update(ctx, k.ID, apikey.KeyUpdate{AllowedIPs: &[]netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}})
	require.NoError(t, err)
	assert.Equal(t, http.StatusForbidden, serve(h, newRequest(withKey(key))).Code)

	live := m.Middleware(apikey.WithAllowedPrefixes("acme_live"))(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	assert.Equal(t, http.StatusUnauthorized, serve(live, newRequest(withKey(key))).Code)

	clock.Advance(2 * time.Hour)
	_, err = m.Verify(ctx, key)
	assert.ErrorIs(t, err, apikey.ErrExpired)
}

// TestLegacyRecordIsNoNativeKey: the Key record of an imported key has
// no digest, so a token of this package's format with its key ID never
// verifies, and is not reported as a broken record.
func TestLegacyRecordIsNoNativeKey(t *testing.T) {
	var reported []error
	var mu sync.Mutex
	m := newLegacyManager(t, memstore.New(), newFakeClock(), apikey.LegacyConfig{},
		apikey.WithBackgroundErrors(func(err error) { mu.Lock(); reported = append(reported, err); mu.Unlock() }))
	key, _ := newLegacyKey(t)
	k := importOne(t, m, legacyFormats[0].hash(t, key), "", apikey.IssueRequest{})
	_, err := m.Verify(context.Background(), forge("acme_test", k.ID, "0123456789012345678901234567890123456789012"))
	assert.ErrorIs(t, err, apikey.ErrInvalidKey)
	mu.Lock()
	assert.Empty(t, reported)
	mu.Unlock()
}

// TestLegacyUntil: from LegacyConfig.Until on, legacy keys fail as
// malformed keys did before they were imported.
func TestLegacyUntil(t *testing.T) {
	clock := newFakeClock()
	m := newLegacyManager(t, memstore.New(), clock, apikey.LegacyConfig{Until: clock.Now().Add(24 * time.Hour)})
	key, _ := newLegacyKey(t)
	importOne(t, m, legacyFormats[0].hash(t, key), "", apikey.IssueRequest{})
	_, err := m.Verify(context.Background(), key)
	require.NoError(t, err)
	clock.Advance(24 * time.Hour)
	_, err = m.Verify(context.Background(), key)
	assert.ErrorIs(t, err, apikey.ErrMalformedKey)
}

// TestLegacyOffWithoutOption: without WithLegacy, imported keys do not
// verify, and a key that does not parse fails as it always did.
func TestLegacyOffWithoutOption(t *testing.T) {
	m, _, _ := newTestManager(t)
	key, _ := newLegacyKey(t)
	importOne(t, m, legacyFormats[0].hash(t, key), "", apikey.IssueRequest{})
	_, err := m.Verify(context.Background(), key)
	assert.ErrorIs(t, err, apikey.ErrMalformedKey)
}

// TestLegacySlowHashOncePerCacheLifetime: a bcrypt or argon2id key is
// hashed on its first use, then not again until its cache entry expires.
func TestLegacySlowHashOncePerCacheLifetime(t *testing.T) {
	clock := newFakeClock()
	m := newLegacyManager(t, memstore.New(), clock, apikey.LegacyConfig{}, apikey.WithCache(1000, time.Minute))
	key, id := newLegacyKey(t)
	importOne(t, m, legacyFormats[3].hash(t, key), id, apikey.IssueRequest{})
	h := m.Middleware()(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for range 20 {
		require.Equal(t, http.StatusOK, serve(h, newRequest(withKey(key))).Code)
	}
	checks, _ := apikey.LegacySlowChecks(m)
	assert.EqualValues(t, 1, checks)
	clock.Advance(time.Minute)
	require.Equal(t, http.StatusOK, serve(h, newRequest(withKey(key))).Code)
	checks, _ = apikey.LegacySlowChecks(m)
	assert.EqualValues(t, 2, checks)
}

// TestLegacyFloodIsBounded: wrong keys with a real legacy ID cost a slow
// hash each, so a flood of them is bounded twice: per client by
// Limits.FailedAuth (blocked clients cost no hash at all), and per
// process by MaxConcurrentHashes (requests beyond it get 503 with
// Retry-After, never a 200, and never more hashes at once).
func TestLegacyFloodIsBounded(t *testing.T) {
	t.Run("failed-auth limit", func(t *testing.T) {
		m := newLegacyManager(t, memstore.New(), newFakeClock(), apikey.LegacyConfig{})
		key, id := newLegacyKey(t)
		importOne(t, m, argon2idHash(key, 1024, 1, 1), id, apikey.IssueRequest{})
		h := m.Middleware(apikey.WithLimits(apikey.Limits{FailedAuth: apikey.Limit{Rate: 5, Period: time.Hour, Burst: 5}}))(
			http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		wrong := wrongLegacyKey(key)
		var codes []int
		for range 50 {
			codes = append(codes, serve(h, newRequest(withKey(wrong))).Code)
		}
		checks, _ := apikey.LegacySlowChecks(m)
		assert.LessOrEqual(t, checks, int64(6), "hashes computed for 50 wrong keys from one client")
		assert.Equal(t, http.StatusTooManyRequests, codes[len(codes)-1])
		assert.NotContains(t, codes, http.StatusOK)
	})
	t.Run("concurrency cap", func(t *testing.T) {
		m := newLegacyManager(t, memstore.New(), newFakeClock(), apikey.LegacyConfig{MaxConcurrentHashes: 2, HashWait: -1})
		key, id := newLegacyKey(t)
		hash, err := bcrypt.GenerateFromPassword([]byte(key), 8)
		require.NoError(t, err)
		importOne(t, m, string(hash), id, apikey.IssueRequest{})
		var events eventLog
		h := m.Middleware(apikey.WithOnEvent(events.add))(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		wrong := wrongLegacyKey(key)
		const n = 32
		codes := make([]int, n)
		retry := make([]string, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				r := newRequest(withKey(wrong))
				r.RemoteAddr = fmt.Sprintf("198.51.100.%d:4000", i) // distinct clients
				w := serve(h, r)
				codes[i], retry[i] = w.Code, w.Header().Get("Retry-After")
			})
		}
		wg.Wait()
		_, most := apikey.LegacySlowChecks(m)
		assert.LessOrEqual(t, most, int64(2))
		busy := 0
		for i, c := range codes {
			switch c {
			case http.StatusServiceUnavailable:
				busy++
				assert.NotEmpty(t, retry[i])
			case http.StatusUnauthorized:
			default:
				t.Errorf("request %d: status %d, want 401 or 503", i, c)
			}
		}
		assert.Positive(t, busy, "32 concurrent bcrypt checks with 2 slots and no wait: some must be refused")
		var sawBusy bool
		for _, e := range events.all() {
			sawBusy = sawBusy || e.Reason == apikey.ReasonLegacyBusy
		}
		assert.True(t, sawBusy)
	})
}

// TestLegacyUpgrade: with LegacyUpgrade, the first use of a legacy key
// rotates it: Deliver gets the replacement, which verifies as a native
// key with the same record; the legacy key keeps working for the grace
// period, with LegacyReplacedByHeader naming the replacement, and is
// expired after it. A failed delivery revokes the replacement and
// leaves the legacy key as it was.
func TestLegacyUpgrade(t *testing.T) {
	ctx := context.Background()
	t.Run("delivered", func(t *testing.T) {
		clock := newFakeClock()
		var delivered []apikey.Secret
		var mu sync.Mutex
		m := newLegacyManager(t, memstore.New(), clock, apikey.LegacyConfig{Upgrade: &apikey.LegacyUpgrade{
			Grace: 7 * 24 * time.Hour,
			Deliver: func(_ context.Context, old *apikey.Key, s apikey.Secret) error {
				mu.Lock()
				delivered = append(delivered, s)
				mu.Unlock()
				return nil
			},
		}})
		key, _ := newLegacyKey(t)
		k := importOne(t, m, legacyFormats[0].hash(t, key), "", apikey.IssueRequest{Scopes: []string{"orders:read"}})
		h := m.Middleware()(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		w := serve(h, newRequest(withKey(key)))
		require.Equal(t, http.StatusOK, w.Code)
		require.Len(t, delivered, 1)
		repl, err := m.Verify(ctx, delivered[0].Reveal())
		require.NoError(t, err)
		assert.Equal(t, k.ID, repl.RotatedFrom)
		assert.Equal(t, []string{"orders:read"}, repl.Scopes)
		assert.Equal(t, repl.ID, w.Header().Get(apikey.LegacyReplacedByHeader))
		assert.NotContains(t, fmt.Sprint(w.Header()), delivered[0].Reveal())

		w = serve(h, newRequest(withKey(key)))
		require.Equal(t, http.StatusOK, w.Code)
		assert.Equal(t, repl.ID, w.Header().Get(apikey.LegacyReplacedByHeader))
		assert.Len(t, delivered, 1, "upgraded once")

		clock.Advance(7*24*time.Hour + time.Second)
		_, err = m.Verify(ctx, key)
		assert.ErrorIs(t, err, apikey.ErrExpired)
		_, err = m.Verify(ctx, delivered[0].Reveal())
		assert.NoError(t, err)
	})
	t.Run("concurrent first use", func(t *testing.T) {
		var delivered atomic.Int64
		var reported atomic.Int64
		m := newLegacyManager(t, memstore.New(), newFakeClock(), apikey.LegacyConfig{Upgrade: &apikey.LegacyUpgrade{
			Grace:   time.Hour,
			Deliver: func(context.Context, *apikey.Key, apikey.Secret) error { delivered.Add(1); return nil },
		}}, apikey.WithBackgroundErrors(func(error) { reported.Add(1) }))
		key, _ := newLegacyKey(t)
		importOne(t, m, legacyFormats[0].hash(t, key), "", apikey.IssueRequest{})
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				_, err := m.Verify(ctx, key)
				assert.NoError(t, err)
			})
		}
		wg.Wait()
		assert.EqualValues(t, 1, delivered.Load(), "one replacement, however many first uses race")
		assert.Zero(t, reported.Load())
	})
	t.Run("delivery fails", func(t *testing.T) {
		var replacement apikey.Secret
		var reported []error
		m := newLegacyManager(t, memstore.New(), newFakeClock(), apikey.LegacyConfig{Upgrade: &apikey.LegacyUpgrade{
			Grace: time.Hour,
			Deliver: func(_ context.Context, _ *apikey.Key, s apikey.Secret) error {
				replacement = s
				return errors.New("mail server down")
			},
		}}, apikey.WithBackgroundErrors(func(err error) { reported = append(reported, err) }))
		key, _ := newLegacyKey(t)
		k := importOne(t, m, legacyFormats[0].hash(t, key), "", apikey.IssueRequest{})
		h := m.Middleware()(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		w := serve(h, newRequest(withKey(key)))
		require.Equal(t, http.StatusOK, w.Code)
		assert.Empty(t, w.Header().Get(apikey.LegacyReplacedByHeader))
		require.False(t, replacement.IsZero())
		_, err := m.Verify(ctx, replacement.Reveal())
		assert.ErrorIs(t, err, apikey.ErrRevoked)
		old, err := m.Get(ctx, k.ID)
		require.NoError(t, err)
		assert.Empty(t, old.ReplacedBy)
		assert.True(t, old.ExpiresAt.IsZero())
		require.NotEmpty(t, reported)
		assert.NotContains(t, fmt.Sprint(reported), replacement.Reveal())
	})
}

// TestLegacyRejectsBadConfig: WithLegacy's mistakes show at NewManager.
func TestLegacyRejectsBadConfig(t *testing.T) {
	for name, cfg := range map[string]apikey.LegacyConfig{
		"negative slots":     {MaxConcurrentHashes: -1},
		"bcrypt cap":         {Cost: apikey.LegacyCost{MaxBcryptCost: 40}},
		"upgrade no deliver": {Upgrade: &apikey.LegacyUpgrade{Grace: time.Hour}},
		"upgrade no grace":   {Upgrade: &apikey.LegacyUpgrade{Deliver: func(context.Context, *apikey.Key, apikey.Secret) error { return nil }}},
	} {
		_, err := apikey.NewManager(memstore.New(), apikey.WithPrefix("acme_test"), apikey.WithPepper("v1", testPepper), apikey.WithLegacy(cfg))
		assert.ErrorIs(t, err, apikey.ErrInvalidRequest, name)
	}
	_, err := apikey.NewManager(&countingStore{Store: memstore.New()}, apikey.WithPrefix("acme_test"), apikey.WithPepper("v1", testPepper), apikey.WithLegacy(apikey.LegacyConfig{}))
	assert.ErrorIs(t, err, apikey.ErrInvalidRequest, "a Store without LegacyStore")
}

// TestLegacyVerifyCacheHitDoesNotAllocate: a cached legacy key, of any
// kind, verifies without allocating, as a native one does.
func TestLegacyVerifyCacheHitDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race; .ci/run runs this test without it")
	}
	ctx := context.Background()
	m := newLegacyManager(t, memstore.New(), newFakeClock(), apikey.LegacyConfig{})
	for _, f := range legacyFormats {
		key, id := newLegacyKey(t)
		if !f.salted {
			id = ""
		}
		importOne(t, m, f.hash(t, key), id, apikey.IssueRequest{})
		_, err := m.Verify(ctx, key)
		require.NoError(t, err)
		allocs := testing.AllocsPerRun(1000, func() {
			if _, err := m.Verify(ctx, key); err != nil {
				t.Fatal(err)
			}
		})
		assert.Zero(t, allocs, f.name)
	}
}
