package apikey

import "sync/atomic"

// CacheStats is what a Manager's verification cache has done since
// NewManager, as Manager.CacheStats reports it, for metrics exporters.
// The counters only grow; Entries and NegativeEntries are the sizes now.
type CacheStats struct {
	// Hits counts lookups answered from the cache without the Store.
	Hits uint64
	// Misses counts lookups that went to the Store: a key not cached, or
	// whose entry had expired. Concurrent misses for one key share one
	// Store call but are each counted.
	Misses uint64
	// StaleHits counts misses answered with an expired entry because the
	// Store failed (WithStaleIfError); they are counted in Misses too.
	StaleHits uint64
	// StoreErrors counts Store lookups that failed, other than with
	// ErrNotFound or because the caller gave up.
	StoreErrors uint64
	// Evictions counts key entries dropped to make room for another, and
	// NegativeEvictions the same for entries of unknown key IDs.
	Evictions         uint64
	NegativeEvictions uint64
	// Invalidations counts entries dropped because a key changed: by this
	// Manager's own writes (Revoke, Update, Rotate, ...) and by the
	// Store's change notifications. A notification that the Watcher may
	// have missed changes drops every entry and counts once per shard.
	Invalidations uint64
	// Notifications counts the change notifications the Store's Watcher
	// delivered (revocations and every other change other processes
	// made); 0 for a Store that is not a Watcher.
	Notifications uint64
	// Entries is the number of key entries cached now, and
	// NegativeEntries that of entries for unknown key IDs.
	Entries         int
	NegativeEntries int
}

// shardStats are one cache shard's counters. Each is written with an
// atomic add on paths that hold the shard's lock or have just touched it.
type shardStats struct {
	hits, misses, stale, storeErrors       atomic.Uint64
	evictions, negEvictions, invalidations atomic.Uint64
}

// CacheStats returns the verification cache's counters and size. It is
// safe for concurrent use and cheap enough to call on every scrape: it
// reads each shard's counters and, under the shard's read lock, its size.
// Counting costs Verify one atomic add on a cache line it writes anyway.
func (m *Manager) CacheStats() CacheStats {
	st := CacheStats{Notifications: m.notifications.Load()}
	c := m.cache
	for i := range c.shards {
		s := &c.shards[i]
		st.Hits += s.stats.hits.Load()
		st.Misses += s.stats.misses.Load()
		st.StaleHits += s.stats.stale.Load()
		st.StoreErrors += s.stats.storeErrors.Load()
		st.Evictions += s.stats.evictions.Load()
		st.NegativeEvictions += s.stats.negEvictions.Load()
		st.Invalidations += s.stats.invalidations.Load()
		s.mu.RLock()
		st.Entries += len(s.entries) - s.negatives
		st.NegativeEntries += s.negatives
		s.mu.RUnlock()
	}
	return st
}
