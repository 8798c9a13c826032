package apikey

import (
	"context"
	"crypto/rand"
	"errors"
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
	perShard    int           // most entries per shard; 0 disables caching
	ttl, negTTL time.Duration // lifetimes of positive and negative entries
	// staleIfError is how long past its TTL a positive entry may still
	// answer when the store fails; 0 never.
	staleIfError time.Duration
	digests      *digesters // to resolve each record's DigestVersion once
	// dummy is the digest held by entries that can never verify (see
	// cacheEntry.verifiable). It is random, so no secret is known to
	// match it; and were one to, verifiable still refuses it.
	dummy [digestSize]byte
}

type cacheShard struct {
	mu       sync.RWMutex
	entries  map[cacheID]*cacheEntry
	inflight map[cacheID]*cacheLoad
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
// the current digester and the cache's dummy digest, and verifiable is
// false. A wrong secret for a real key and any secret for an unknown ID
// then differ only in which digest bytes are compared (timing_test.go).
type cacheEntry struct {
	key      *Key // nil: no key with this ID
	digester *digester
	digest   [digestSize]byte
	prefix   string
	expires  int64 // of the entry, unix nanoseconds

	// The key's validity, unix nanoseconds, math.MaxInt64 or MinInt64
	// when unset, so checking it needs no time.Time arithmetic.
	revokedAt, expiresAt, notBefore int64

	lastTouched atomic.Int64 // last use handed to the last-used batch
	redigested  atomic.Bool  // a re-digest under the current pepper was tried

	// verifiable is false for an entry that refuses every secret. Verify
	// reads it only after the digests match, so it sits in the padding
	// at the end rather than by the digest.
	verifiable bool
}

// status is Key.Status on the precomputed window.
func (e *cacheEntry) status(now int64) error {
	switch {
	case now >= e.revokedAt:
		return ErrRevoked
	case now >= e.expiresAt:
		return ErrExpired
	case now < e.notBefore:
		return ErrNotYetValid
	}
	return nil
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

func newKeyCache(size int, ttl, negTTL time.Duration, digests *digesters) *keyCache {
	c := &keyCache{ttl: ttl, negTTL: negTTL, digests: digests}
	rand.Read(c.dummy[:]) // never fails since Go 1.24
	if size > 0 && ttl > 0 {
		// IDs never spread perfectly evenly, so each shard gets an eighth
		// more than its share: a cache sized for n active keys holds them.
		perShard := (size + cacheShards - 1) / cacheShards
		c.perShard = perShard + perShard/8
	}
	for i := range c.shards {
		c.shards[i].entries = make(map[cacheID]*cacheEntry)
		c.shards[i].inflight = make(map[cacheID]*cacheLoad)
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
		return e, nil
	}
	fresh, err := c.miss(ctx, s, id, idString, now, store)
	if err != nil && ok && e.key != nil && nowNano < e.expires+int64(c.staleIfError) && !isContextError(err) {
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

	s.mu.Lock()
	if s.inflight[id] == l {
		delete(s.inflight, id)
	}
	// An entry that is expired already (a negative TTL of 0) is not kept:
	// it would only push out live ones.
	if l.err == nil && s.gen == gen && c.perShard > 0 && l.entry.expires > now.UnixNano() {
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
		return c.newEntry(k, now.Add(c.ttl)), nil
	case errors.Is(err, ErrNotFound):
		return c.negativeEntry(now.Add(c.negTTL)), nil
	}
	return nil, err
}

// negativeEntry is the entry for an ID with no key: it compares as a key
// whose secret nobody has, and its validity window (all zero: revoked and
// expired since 1970) is never valid either.
func (c *keyCache) negativeEntry(expires time.Time) *cacheEntry {
	return &cacheEntry{digester: c.digests.current, digest: c.dummy, expires: expires.UnixNano()}
}

func (c *keyCache) newEntry(k *Key, expires time.Time) *cacheEntry {
	e := &cacheEntry{
		key:       k,
		digester:  c.digests.lookup(k.DigestVersion),
		prefix:    k.Prefix,
		expires:   expires.UnixNano(),
		revokedAt: unixNanos(k.RevokedAt, math.MaxInt64),
		expiresAt: unixNanos(k.ExpiresAt, math.MaxInt64),
		notBefore: unixNanos(k.NotBefore, math.MinInt64),
	}
	// A record whose DigestVersion is not configured, or whose digest has
	// the wrong size, never verifies; it is compared like an unknown ID.
	e.verifiable = e.digester != nil && len(k.Digest) == digestSize && copy(e.digest[:], k.Digest) == digestSize
	if !e.verifiable {
		e.digester, e.digest = c.digests.current, c.dummy
	}
	return e
}

// putLocked stores e. When the shard is full it first evicts one
// arbitrary entry: map iteration starts at a random place, so this is
// random eviction, O(1), and needs no background sweep.
func (c *keyCache) putLocked(s *cacheShard, id cacheID, e *cacheEntry) {
	if _, ok := s.entries[id]; !ok && len(s.entries) >= c.perShard {
		for victim := range s.entries {
			delete(s.entries, victim)
			break
		}
	}
	s.entries[id] = e
}

// invalidate drops id, or every entry when id is "", and makes loads that
// are in flight for it uncacheable.
func (c *keyCache) invalidate(idString string) {
	if idString == "" {
		for i := range c.shards {
			s := &c.shards[i]
			s.mu.Lock()
			clear(s.entries)
			clear(s.inflight)
			s.gen++
			s.mu.Unlock()
		}
		return
	}
	if len(idString) != IDLen {
		return // no such ID can be cached
	}
	var id cacheID
	copy(id[:], idString)
	s := c.shard(id)
	s.mu.Lock()
	delete(s.entries, id)
	delete(s.inflight, id)
	s.gen++
	s.mu.Unlock()
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
