package apikey

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// The cache is split into cacheShards independently locked parts; a key
// ID's shard is given by the top cacheShardBits bits of its hash.
const (
	cacheShardBits = 6
	cacheShards    = 1 << cacheShardBits
)

// cacheID is a key ID as a map key. An array, unlike a string, is stored
// inside the map itself, so a lookup does not chase a pointer to compare.
type cacheID [IDLen]byte

// keyCache is the Manager's verification cache: key ID → stored record
// (positive entry) or "no such key" (negative entry), each with its own
// expiry. It is bounded, and concurrent misses for one ID share one store
// call. It is safe for concurrent use.
type keyCache struct {
	shards      [cacheShards]cacheShard
	perShard    int           // most positive entries per shard; 0 disables caching
	negPerShard int           // most negative entries per shard, besides those
	ttl, negTTL time.Duration // lifetimes of positive and negative entries
	// staleIfError is how long past its TTL a positive entry may still
	// answer when the store fails; 0 never.
	staleIfError time.Duration
	digests      *digesters // to resolve each record's DigestVersion once
	// onBroken is told of each record that can never verify for a reason
	// the operator must fix (a pepper that is not configured, limits that
	// make no sense), when it is loaded.
	onBroken func(k *Key, reason error)
	// dummy is the digest held by entries that can never verify (see
	// cacheEntry). It is random and never leaves the cache, so no secret
	// is known to match it; and were one to, the entry's refusal,
	// ErrInvalidKey, still refuses it (but for a legacy key's entry: see
	// newEntry).
	dummy [digestSize]byte
}

type cacheShard struct {
	mu sync.RWMutex
	// stats counts what the shard did, for Manager.CacheStats. Kept per
	// shard, beside the lock every lookup touches, so that counting adds
	// no cache line that all cores write.
	stats    shardStats
	entries  map[cacheID]*cacheEntry
	inflight map[cacheID]*cacheLoad
	// Negative entries are bounded apart from positive ones, so that a
	// flood of made-up IDs never evicts a real key: negatives counts them,
	// and negRing holds their IDs in order of insertion (slots of entries
	// that have gone since are stale and skipped), so the oldest is
	// evicted in O(1).
	negatives int
	negRing   []cacheID
	negNext   int // the ring's oldest slot, overwritten next
	// gen changes on every invalidation in the shard. A load that started
	// before an invalidation must not cache what it read: it may be the
	// record as it was before a revocation.
	gen uint64
}

// cacheEntry holds what Verify needs of a record in one small block of
// memory, resolved once when the record is loaded: the digest inline, its
// digester, and the validity window as integers. It is immutable apart
// from its atomic fields; key is shared by every caller of Verify and
// must not be modified.
//
// Every entry, negative ones included, has a digester and a digest, so
// that Verify runs the same instructions on the same fields whether the
// key ID exists or not: an entry that can never verify (no such key, a
// DigestVersion that is not configured, a digest of the wrong size) holds
// the current digester and the cache's dummy digest, and its refusal is
// ErrInvalidKey. A wrong secret for a real key and any secret for an
// unknown ID then differ only in which digest bytes are compared
// (timing_test.go).
//
// An entry is 192 bytes, three cache lines. A verified request reads only
// the first two: what Verify needs, then the usage meter's counters. What
// only other paths read comes last.
type cacheEntry struct {
	key      *Key // nil: no key with this ID
	digester *digester
	digest   [digestSize]byte
	prefix   string
	expires  int64 // of the entry, unix nanoseconds

	// The key's validity window, in unix nanoseconds (math.MaxInt64 or
	// MinInt64 when unset), so that checking it needs no time.Time
	// arithmetic. An entry with a refusal has expiresAt math.MinInt64:
	// the comparison that status makes anyway then finds it.
	expiresAt, notBefore int64

	lastTouched atomic.Int64 // last use handed to the last-used batch

	// use counts the key's requests for the Manager's usage meter, here
	// rather than in a map of the meter's; the fields a request touches
	// come first in it.
	use usageSlots

	// refusal is why the entry refuses every secret: ErrRevoked or
	// ErrSuspended when the record says so, an error wrapping
	// ErrUnavailable for a record that makes no sense, or ErrInvalidKey
	// for an entry that can never verify. It takes precedence over the
	// validity window: a revoked key is reported revoked, not expired.
	refusal    error
	redigested atomic.Bool // a re-digest under the current pepper was tried
	// keys holds the key's limit keys once a request needed them
	// (limitKeysOf).
	keys atomic.Pointer[limitKeys]
}

// status is Key.Status on the precomputed window, and the entry's
// refusal.
func (e *cacheEntry) status(now int64) error {
	switch {
	case now >= e.expiresAt: // always, with a refusal
		if e.refusal != nil {
			return e.refusal
		}
		return ErrExpired
	case now < e.notBefore:
		return ErrNotYetValid
	}
	return nil
}

// refuse makes e refuse every secret with err.
func (e *cacheEntry) refuse(err error) {
	e.refusal, e.expiresAt = err, math.MinInt64
}

// unixNanos is t in unix nanoseconds, unset if t is zero, clamped to the
// int64 range (a key may well expire in the year 9999).
func unixNanos(t time.Time, unset int64) int64 {
	switch {
	case t.IsZero():
		return unset
	case t.Year() >= 2262:
		return math.MaxInt64
	case t.Year() <= 1677:
		return math.MinInt64
	}
	return t.UnixNano()
}

// cacheLoad is one store call that concurrent misses for an ID wait on.
type cacheLoad struct {
	done  chan struct{}
	entry *cacheEntry
	err   error
}

func newKeyCache(size int, ttl time.Duration, negSize int, negTTL time.Duration, digests *digesters) *keyCache {
	c := &keyCache{ttl: ttl, negTTL: negTTL, digests: digests}
	rand.Read(c.dummy[:]) // never fails since Go 1.24
	if size > 0 && ttl > 0 {
		// IDs never spread perfectly evenly, so each shard gets an eighth
		// more than its share: a cache sized for n active keys holds them.
		perShard := (size + cacheShards - 1) / cacheShards
		c.perShard = perShard + perShard/8
		if negSize > 0 && negTTL > 0 {
			// The same eighth more than a shard's share as for keys.
			negPerShard := (negSize + cacheShards - 1) / cacheShards
			c.negPerShard = negPerShard + negPerShard/8
		}
	}
	for i := range c.shards {
		c.shards[i].entries = make(map[cacheID]*cacheEntry)
		c.shards[i].inflight = make(map[cacheID]*cacheLoad)
		c.shards[i].negRing = make([]cacheID, c.negPerShard)
	}
	return c
}

func (c *keyCache) shard(id cacheID) *cacheShard {
	// Fibonacci hashing of the first four characters: the top bits of
	// the product spread random base62 IDs evenly over the shards.
	h := uint32(id[0]) | uint32(id[1])<<8 | uint32(id[2])<<16 | uint32(id[3])<<24
	return &c.shards[(h*0x9E3779B1)>>(32-cacheShardBits)]
}

// get returns the entry for id, which must be IDLen bytes (Parse ensures
// it), loading it from store on a miss. It returns a negative entry when
// the store reports ErrNotFound; any other error is returned as is and
// nothing is cached.
func (c *keyCache) get(ctx context.Context, idString string, now time.Time, store Store) (*cacheEntry, error) {
	var id cacheID
	copy(id[:], idString)
	s := c.shard(id)
	nowNano := now.UnixNano()
	s.mu.RLock()
	e, ok := s.entries[id]
	s.mu.RUnlock()
	if ok && nowNano < e.expires {
		s.stats.hits.Add(1)
		return e, nil
	}
	s.stats.misses.Add(1)
	fresh, err := c.miss(ctx, s, id, idString, now, store)
	if err != nil && ok && e.key != nil && nowNano < e.expires+int64(c.staleIfError) && !isContextError(err) {
		s.stats.stale.Add(1)
		return e, nil // stale-if-error, when enabled
	}
	return fresh, err
}

func (c *keyCache) miss(ctx context.Context, s *cacheShard, id cacheID, idString string, now time.Time, store Store) (*cacheEntry, error) {
	s.mu.Lock()
	if l, ok := s.inflight[id]; ok {
		s.mu.Unlock()
		select {
		case <-l.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if l.err != nil && ctx.Err() == nil && isContextError(l.err) {
			// The caller that led the load gave up; that is not our answer.
			return c.load(ctx, idString, now, store)
		}
		return l.entry, l.err
	}
	l := &cacheLoad{done: make(chan struct{})}
	s.inflight[id] = l
	gen := s.gen
	s.mu.Unlock()

	l.entry, l.err = c.load(ctx, idString, now, store)
	if l.err != nil && !isContextError(l.err) {
		s.stats.storeErrors.Add(1)
	}

	s.mu.Lock()
	if s.inflight[id] == l {
		delete(s.inflight, id)
	}
	// An entry that is expired already (a negative TTL of 0) is not kept:
	// it would only push out live ones.
	if l.err == nil && s.gen == gen && l.entry.expires > now.UnixNano() {
		c.putLocked(s, id, l.entry)
	}
	s.mu.Unlock()
	close(l.done)
	return l.entry, l.err
}

func (c *keyCache) load(ctx context.Context, id string, now time.Time, store Store) (*cacheEntry, error) {
	k, err := store.Get(ctx, id)
	switch {
	case err == nil:
		return c.newEntry(k, expiry(now, c.ttl)), nil
	case errors.Is(err, ErrNotFound):
		return c.negativeEntry(expiry(now, c.negTTL)), nil
	}
	return nil, err
}

// expiry is now + ttl in unix nanoseconds, saturated: a TTL meant as
// "forever" (math.MaxInt64) must not wrap around into the past.
func expiry(now time.Time, ttl time.Duration) int64 {
	t := now.UnixNano()
	if t > math.MaxInt64-int64(ttl) {
		return math.MaxInt64
	}
	return t + int64(ttl)
}

// negativeEntry is the entry for an ID with no key: it compares as a key
// whose secret nobody has, and refuses every secret.
func (c *keyCache) negativeEntry(expires int64) *cacheEntry {
	e := &cacheEntry{digester: c.digests.current, digest: c.dummy, expires: expires}
	e.refuse(ErrInvalidKey)
	return e
}

func (c *keyCache) newEntry(k *Key, expires int64) *cacheEntry {
	e := &cacheEntry{
		key:       k,
		digester:  c.digests.lookup(k.DigestVersion),
		prefix:    k.Prefix,
		expires:   expires,
		expiresAt: unixNanos(k.ExpiresAt, math.MaxInt64),
		notBefore: unixNanos(k.NotBefore, math.MinInt64),
	}
	e.use.key, e.use.shard = k, usageShardIndex(k.ID)
	switch {
	case !k.RevokedAt.IsZero():
		e.refuse(ErrRevoked)
	case !k.SuspendedAt.IsZero():
		e.refuse(ErrSuspended)
	default:
		// Limits that make no sense must not pass for "no limit": the key
		// is refused as unavailable until its record is fixed.
		if err := checkLimits(k.RateLimit, k.Quota); err != nil {
			e.refuse(fmt.Errorf("%w: %w: key %s: %w", ErrUnavailable, ErrCorruptRecord, k.ID, err))
			c.broken(k, err)
		}
	}
	// A record whose DigestVersion is not configured, or whose digest has
	// the wrong size, never verifies; it is compared like an unknown ID.
	// A key imported with WithLegacy has no digest either, but its entry
	// must still answer status for the legacy path (legacyKey), so only
	// the dummy digest stands in the way of a native token with its ID.
	if e.digester == nil || len(k.Digest) != digestSize || copy(e.digest[:], k.Digest) != digestSize {
		if k.DigestVersion != LegacyDigestVersion {
			e.refuse(ErrInvalidKey)
		}
		e.digester, e.digest = c.digests.current, c.dummy
		if c.digests.lookup(k.DigestVersion) == nil && k.DigestVersion != LegacyDigestVersion {
			c.broken(k, fmt.Errorf("digested under %q, which this Manager is not configured with (WithPepper, WithPreviousPepper)", k.DigestVersion))
		}
	}
	return e
}

func (c *keyCache) broken(k *Key, reason error) {
	if c.onBroken != nil {
		c.onBroken(k, reason)
	}
}

// putLocked stores e, if the cache keeps entries of its kind. A negative
// entry evicts the oldest negative one when there are negPerShard; a
// positive entry evicts an arbitrary positive one when there are
// perShard (map iteration starts at a random place, so this is random
// eviction, and needs no background sweep). Neither kind ever evicts the
// other.
func (c *keyCache) putLocked(s *cacheShard, id cacheID, e *cacheEntry) {
	c.deleteLocked(s, id)
	if e.key == nil {
		if c.negPerShard == 0 {
			return
		}
		// The slot to overwrite is the oldest; its entry, if it is still a
		// negative one, goes. Every negative entry thus keeps a slot, so
		// there are never more than the ring holds.
		if old, ok := s.entries[s.negRing[s.negNext]]; ok && old.key == nil {
			c.deleteLocked(s, s.negRing[s.negNext])
			s.stats.negEvictions.Add(1)
		}
		s.negRing[s.negNext] = id
		s.negNext = (s.negNext + 1) % len(s.negRing)
		s.negatives++
		s.entries[id] = e
		return
	}
	if c.perShard == 0 {
		return
	}
	if len(s.entries)-s.negatives >= c.perShard {
		for victim, old := range s.entries {
			if old.key != nil {
				delete(s.entries, victim)
				s.stats.evictions.Add(1)
				break
			}
		}
	}
	s.entries[id] = e
}

// deleteLocked drops id's entry, if any, keeping the count of negatives.
func (c *keyCache) deleteLocked(s *cacheShard, id cacheID) {
	if old, ok := s.entries[id]; ok {
		if old.key == nil {
			s.negatives--
		}
		delete(s.entries, id)
	}
}

// invalidate drops id and makes loads that are in flight for it
// uncacheable. An id that is not a key ID changes nothing.
func (c *keyCache) invalidate(idString string) {
	if len(idString) != IDLen {
		return // no such ID can be cached
	}
	var id cacheID
	copy(id[:], idString)
	s := c.shard(id)
	s.mu.Lock()
	c.deleteLocked(s, id)
	delete(s.inflight, id)
	s.gen++
	s.mu.Unlock()
	s.stats.invalidations.Add(1)
}

// invalidateAll drops every entry and makes every load in flight
// uncacheable.
func (c *keyCache) invalidateAll() {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		clear(s.entries)
		clear(s.inflight)
		s.negatives = 0
		s.gen++
		s.mu.Unlock()
		s.stats.invalidations.Add(1)
	}
}

// len returns the number of cached entries (for tests).
func (c *keyCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.entries)
		s.mu.RUnlock()
	}
	return n
}
