package apikey

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCacheIsBounded(t *testing.T) {
	c := newKeyCache(640, time.Hour, 640, time.Hour, new(digesters))
	store := &fixedStore{}
	now := time.Now()
	for i := 0; i < 10_000; i++ {
		tok, err := Generate("k")
		require.NoError(t, err)
		_, err = c.get(context.Background(), tok.ID, now, store)
		require.NoError(t, err)
	}
	assert.LessOrEqual(t, c.len(), 640+640/8)
	assert.Greater(t, c.len(), 500, "a full cache stays nearly full")
}

func TestCacheSpreadsOverShards(t *testing.T) {
	c := newKeyCache(DefaultCacheSize, time.Hour, 0, 0, new(digesters))
	counts := make(map[*cacheShard]int)
	for i := 0; i < 64_000; i++ {
		tok, err := Generate("k")
		require.NoError(t, err)
		var id cacheID
		copy(id[:], tok.ID)
		counts[c.shard(id)]++
	}
	require.Len(t, counts, cacheShards)
	for _, n := range counts {
		assert.InDelta(t, 1000, n, 200)
	}
}

func TestCacheLoadRacingInvalidateIsNotCached(t *testing.T) {
	// A load that read the store before an invalidation must not cache
	// what it read: it may be the record from before a revocation.
	c := newKeyCache(100, time.Hour, 100, time.Hour, new(digesters))
	id := "AbCdEf123456"
	store := &fixedStore{during: func() { c.invalidate(id) }}
	_, err := c.get(context.Background(), id, time.Now(), store)
	require.NoError(t, err)
	assert.Zero(t, c.len())
}

// fixedStore answers every Get with a key of that ID, running during
// (if set) while the call is in progress.
type fixedStore struct {
	Store
	during func()
}

func (s *fixedStore) Get(_ context.Context, id string) (*Key, error) {
	if s.during != nil {
		s.during()
	}
	return &Key{ID: id, Owner: fmt.Sprint("o-", id)}, nil
}

// TestCacheEntryStatusMatchesKeyStatus: the cache keeps a key's validity
// window as integers for speed; it must decide exactly as Key.Status does,
// including at the boundaries and for times beyond the int64 nanosecond
// range.
func TestCacheEntryStatusMatchesKeyStatus(t *testing.T) {
	base := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	times := []time.Time{{}, base.Add(-time.Hour), base, base.Add(time.Nanosecond), base.Add(time.Hour),
		time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC)}
	digests := &digesters{current: newUnkeyedDigester()}
	digests.byName = map[string]*digester{digests.current.version: digests.current}
	c := newKeyCache(10, time.Hour, 10, time.Hour, digests)
	for _, revoked := range times {
		for _, suspended := range times {
			for _, expires := range times {
				for _, notBefore := range times {
					// A native key, and one imported with WithLegacy,
					// whose entry has no digest but a status all the same.
					native := &Key{RevokedAt: revoked, SuspendedAt: suspended, ExpiresAt: expires, NotBefore: notBefore,
						Digest: make([]byte, digestSize), DigestVersion: digests.current.version}
					legacy := &Key{RevokedAt: revoked, SuspendedAt: suspended, ExpiresAt: expires, NotBefore: notBefore,
						DigestVersion: LegacyDigestVersion}
					// A key that can never verify refuses at every time.
					broken := &Key{RevokedAt: revoked, SuspendedAt: suspended, ExpiresAt: expires, NotBefore: notBefore}
					for _, now := range times[1:5] {
						for _, k := range []*Key{native, legacy} {
							if got, want := c.newEntry(k, base.UnixNano()).status(now.UnixNano()), k.Status(now); got != want {
								t.Fatalf("revoked %v, suspended %v, expires %v, not before %v, at %v (digest version %q): cache says %v, Key.Status %v",
									revoked, suspended, expires, notBefore, now, k.DigestVersion, got, want)
							}
						}
						if got := c.newEntry(broken, base.UnixNano()).status(now.UnixNano()); got != ErrInvalidKey {
							t.Fatalf("a key without a digest, at %v: cache says %v, want ErrInvalidKey", now, got)
						}
					}
				}
			}
		}
	}
}

// notFoundStore knows no key.
type notFoundStore struct{ Store }

func (notFoundStore) Get(context.Context, string) (*Key, error) { return nil, ErrNotFound }

// TestCacheWithoutNegativeTTLKeepsNoNegativeEntries: WithNegativeCache(n, 0)
// means unknown IDs are not remembered, so a flood of them cannot push
// live keys out of the cache.
func TestCacheWithoutNegativeTTLKeepsNoNegativeEntries(t *testing.T) {
	digests := new(digesters)
	digests.current = newUnkeyedDigester()
	c := newKeyCache(640, time.Hour, 640, 0, digests)
	now := time.Now()
	for i := 0; i < 2000; i++ {
		tok, err := Generate("k")
		require.NoError(t, err)
		e, err := c.get(context.Background(), tok.ID, now, notFoundStore{})
		require.NoError(t, err)
		require.Nil(t, e.key)
	}
	assert.Zero(t, c.len())
}

// TestNegativeEntriesNeverEvictKeys is the flood of item 6 of issue 12:
// made-up IDs, five times as many as the cache holds, must not push out
// any of the real keys that fit, and negative entries stay within their
// own bound.
func TestNegativeEntriesNeverEvictKeys(t *testing.T) {
	digests := new(digesters)
	digests.current = newUnkeyedDigester()
	c := newKeyCache(6400, time.Hour, 640, time.Hour, digests)
	now := time.Now()
	ctx := context.Background()
	var hot []string
	for range 2000 {
		tok, err := Generate("k")
		require.NoError(t, err)
		hot = append(hot, tok.ID)
		_, err = c.get(ctx, tok.ID, now, &fixedStore{})
		require.NoError(t, err)
	}
	for range 32_000 {
		tok, err := Generate("k")
		require.NoError(t, err)
		e, err := c.get(ctx, tok.ID, now, notFoundStore{})
		require.NoError(t, err)
		require.Nil(t, e.key)
	}
	counting := &countingGets{}
	for _, id := range hot {
		e, err := c.get(ctx, id, now, counting)
		require.NoError(t, err)
		require.NotNil(t, e.key)
	}
	assert.Zero(t, counting.n, "real keys were evicted by made-up ones")
	negatives := 0
	for i := range c.shards {
		negatives += c.shards[i].negatives
		n := 0
		for _, e := range c.shards[i].entries {
			if e.key == nil {
				n++
			}
		}
		require.Equal(t, n, c.shards[i].negatives, "shard %d miscounts its negative entries", i)
	}
	assert.LessOrEqual(t, negatives, c.negPerShard*cacheShards)
	assert.Greater(t, negatives, c.negPerShard*cacheShards/2, "negative entries are still cached")
}

// countingGets counts Gets and answers each with a key.
type countingGets struct {
	Store
	n int
}

func (s *countingGets) Get(_ context.Context, id string) (*Key, error) {
	s.n++
	return &Key{ID: id}, nil
}

// TestCacheTTLSaturates: a TTL meant as "forever" must not wrap around and
// disable the cache (item 15 of issue 12).
func TestCacheTTLSaturates(t *testing.T) {
	c := newKeyCache(100, math.MaxInt64, 100, math.MaxInt64, new(digesters))
	store := &countingGets{}
	for range 3 {
		_, err := c.get(context.Background(), "AbCdEf123456", time.Now(), store)
		require.NoError(t, err)
	}
	assert.Equal(t, 1, store.n)
}

// TestCacheEntryLayout: a verified, metered request reads only the first
// two of an entry's three cache lines; the usage counters a request
// touches must stay in the second, and the entry in its size class.
func TestCacheEntryLayout(t *testing.T) {
	var e cacheEntry
	assert.LessOrEqual(t, unsafe.Sizeof(e), uintptr(192), "an entry fits in 192 bytes")
	hot := unsafe.Offsetof(e.use) + unsafe.Offsetof(e.use.listed) + unsafe.Sizeof(e.use.listed)
	assert.LessOrEqual(t, hot, uintptr(128), "Verify's fields and the usage counters fit in two cache lines")
	assert.Less(t, unsafe.Offsetof(e.lastTouched), uintptr(128))
	assert.Less(t, unsafe.Offsetof(e.use.requests), unsafe.Offsetof(e.use.extra), "requests come before extra")
}
