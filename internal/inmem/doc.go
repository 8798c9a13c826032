// Package inmem holds the in-memory rate limiter, quota counter and credit
// ledger that package memlimit exports and that the apikey middleware uses
// by default.
// It works on plain numbers (nanoseconds, counts) rather than on apikey's
// types, so that both the root package and memlimit can import it.
//
// Keys are spread over 256 shards, each with its own lock, and tracked by
// a 64-bit seeded hash rather than by the key itself: a key's string is
// never kept, and a new key costs no allocation unless its shard's table
// grows. Two keys whose hashes collide share a bucket (stricter, never
// looser). Memory per key is in BENCHMARKS.md.
package inmem

import (
	"sync"
	"time"
)

// shardBits is log2 of the number of shards; a hash's top shardBits bits
// pick its shard.
const (
	shardBits = 8
	shards    = 1 << shardBits
)

// shardOf returns the shard index of a key hash.
func shardOf(h uint64) uint64 { return h >> (64 - shardBits) }

// Decision has the fields of apikey.Decision, so that callers convert it
// with apikey.Decision(d).
type Decision struct {
	Allowed    bool
	Limit      int64
	Remaining  int64
	Reset      time.Duration
	RetryAfter time.Duration
}

// Config is what both Limiter and Counter are built from.
type Config struct {
	Now     func() time.Time // the clock; never nil
	Sweep   time.Duration    // time to visit every shard once; > 0
	MaxKeys int              // Limiter only: bound on tracked keys; 0 none
}

// perShard returns the per-shard key bound for a total of maxKeys: never
// below one per shard.
func perShard(maxKeys int) int {
	if maxKeys == 0 {
		return 0
	}
	return max(1, (maxKeys+shards-1)/shards)
}

// sweeper calls sweep for each shard in turn, spreading one round over
// interval (at most one shard per millisecond), until Close.
type sweeper struct {
	once sync.Once
	stop chan struct{}
	done chan struct{}
}

func startSweeper(interval time.Duration, now func() time.Time, sweep func(shard int, now time.Time)) *sweeper {
	s := &sweeper{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(max(interval/shards, time.Millisecond))
		defer tick.Stop()
		for i := 0; ; i = (i + 1) % shards {
			select {
			case <-s.stop:
				return
			case <-tick.C:
				sweep(i, now())
			}
		}
	}()
	return s
}

// close stops the sweeper and waits for it to exit. It is idempotent.
func (s *sweeper) close() {
	s.once.Do(func() { close(s.stop) })
	<-s.done
}
