package apikey

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// cacheShards is the number of independently locked parts of the cache;
// key IDs are uniformly random, so their first characters spread load.
const cacheShards = 64

// keyCache is the Manager's verification cache: key ID → stored record
// (positive entry) or "no such key" (negative entry, record nil), each
// with its own expiry. It is bounded, and concurrent misses for one ID
// share one store call. It is safe for concurrent use.
type keyCache struct {
	shards      [cacheShards]cacheShard
	perShard    int           // most entries per shard; 0 disables caching
	ttl, negTTL time.Duration // lifetimes of positive and negative entries
	// staleIfError is how long past its TTL a positive entry may still
	// answer when the store fails; 0 never.
	staleIfError time.Duration
}

type cacheShard struct {
	mu       sync.RWMutex
	entries  map[string]*cacheEntry
	inflight map[string]*cacheLoad
	// gen changes on every invalidation in the shard. A load that started
	// before an invalidation must not cache what it read: it may be the
	// record as it was before a revocation.
	gen uint64
}

// cacheEntry is immutable apart from its atomic fields; key is shared by
// every caller of Verify and must not be modified.
type cacheEntry struct {
	key     *Key  // nil: no key with this ID
	expires int64 // unix nanoseconds

	lastTouched atomic.Int64 // last use handed to the last-used batch
	redigested  atomic.Bool  // a re-digest under the current pepper was tried
}

// cacheLoad is one store call that concurrent misses for an ID wait on.
type cacheLoad struct {
	done  chan struct{}
	entry *cacheEntry
	err   error
}

func newKeyCache(size int, ttl, negTTL time.Duration) *keyCache {
	c := &keyCache{ttl: ttl, negTTL: negTTL}
	if size > 0 && ttl > 0 {
		// IDs never spread perfectly evenly, so each shard gets an eighth
		// more than its share: a cache sized for n active keys holds them.
		perShard := (size + cacheShards - 1) / cacheShards
		c.perShard = perShard + perShard/8
	}
	for i := range c.shards {
		c.shards[i].entries = make(map[string]*cacheEntry)
		c.shards[i].inflight = make(map[string]*cacheLoad)
	}
	return c
}

func (c *keyCache) shard(id string) *cacheShard {
	var h uint32
	if len(id) >= 4 {
		// Fibonacci hashing of the first four characters: their top bits
		// spread random base62 IDs evenly over the shards.
		h = (uint32(id[0]) | uint32(id[1])<<8 | uint32(id[2])<<16 | uint32(id[3])<<24) * 0x9E3779B1 >> 26
	}
	return &c.shards[h%cacheShards]
}

// get returns the entry for id, loading it from store on a miss. It returns
// an entry with a nil key when the store reports ErrNotFound; any other
// error is returned as is and nothing is cached.
func (c *keyCache) get(ctx context.Context, id string, now time.Time, store Store) (*cacheEntry, error) {
	s := c.shard(id)
	nowNano := now.UnixNano()
	s.mu.RLock()
	e, ok := s.entries[id]
	s.mu.RUnlock()
	if ok && nowNano < e.expires {
		return e, nil
	}
	fresh, err := c.miss(ctx, s, id, now, store)
	if err != nil && ok && e.key != nil && nowNano < e.expires+int64(c.staleIfError) && !isContextError(err) {
		return e, nil // stale-if-error, when enabled
	}
	return fresh, err
}

func (c *keyCache) miss(ctx context.Context, s *cacheShard, id string, now time.Time, store Store) (*cacheEntry, error) {
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
			return c.load(ctx, id, now, store)
		}
		return l.entry, l.err
	}
	l := &cacheLoad{done: make(chan struct{})}
	s.inflight[id] = l
	gen := s.gen
	s.mu.Unlock()

	l.entry, l.err = c.load(ctx, id, now, store)

	s.mu.Lock()
	if s.inflight[id] == l {
		delete(s.inflight, id)
	}
	if l.err == nil && s.gen == gen && c.perShard > 0 {
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
		return &cacheEntry{key: k, expires: now.Add(c.ttl).UnixNano()}, nil
	case errors.Is(err, ErrNotFound):
		return &cacheEntry{expires: now.Add(c.negTTL).UnixNano()}, nil
	}
	return nil, err
}

// putLocked stores e. When the shard is full it first evicts one
// arbitrary entry: map iteration starts at a random place, so this is
// random eviction, O(1), and needs no background sweep.
func (c *keyCache) putLocked(s *cacheShard, id string, e *cacheEntry) {
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
func (c *keyCache) invalidate(id string) {
	if id == "" {
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

func isContextError(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
