package inmem

import (
	"hash/maphash"
	"sync"
	"time"
)

// Counter counts units per key in fixed windows aligned to the Unix
// epoch: for each key, the end of its current window and the units used
// in it. The sweeper forgets keys whose window has ended. It is safe for
// concurrent use.
type Counter struct {
	seed    maphash.Seed
	now     func() time.Time
	shards  [shards]counterShard
	sweeper *sweeper
}

type counterShard struct {
	mu    sync.Mutex
	usage table[usage] // by key hash, as in Limiter
	_     [24]byte
}

// usage is a key's count in the window that ends at end (Unix ns).
type usage struct {
	end, used int64
}

// NewCounter returns a Counter and starts its sweeper, which runs until
// Close. c.MaxKeys is not used.
func NewCounter(c Config) *Counter {
	ct := &Counter{seed: maphash.MakeSeed(), now: c.Now}
	ct.sweeper = startSweeper(c.Sweep, c.Now, ct.sweepShard)
	return ct
}

// Now reads the counter's clock.
func (c *Counter) Now() time.Time { return c.now() }

// AddAt adds n ≥ 0 units to key's usage in the window of length period
// (> 0; or < 0 for a calendar month in UTC starting on day, see window)
// that contains now, unless the usage would then exceed limit (> 0):
// then nothing is added and the Decision is refused, with RetryAfter the
// time until the window ends. n = 0 reports the usage.
func (c *Counter) AddAt(now time.Time, key string, limit int64, period time.Duration, day int, n int64) Decision {
	t := now.UnixNano()
	_, end := window(t, int64(period), day)
	left := end - t
	h := hashKey(maphash.String(c.seed, key))
	s := &c.shards[shardOf(h)]
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.usage.find(h)
	var used int64
	if ok && s.usage.e[i].v.end == end {
		used = s.usage.e[i].v.used
	}
	d := Decision{Limit: limit, Reset: time.Duration(left)}
	if n > limit-used {
		d.Remaining = max(limit-used, 0)
		d.RetryAfter = d.Reset
		return d
	}
	d.Allowed = true
	used += n
	d.Remaining = limit - used
	if ok {
		s.usage.e[i].v = usage{end: end, used: used}
	} else {
		s.usage.insert(i, h, usage{end: end, used: used})
	}
	return d
}

// RefundAt takes n ≥ 0 units off key's usage in the window of period and
// day (as for AddAt) that contains now, never below zero. A key with no
// usage in that window is left alone.
func (c *Counter) RefundAt(now time.Time, key string, period time.Duration, day int, n int64) {
	_, end := window(now.UnixNano(), int64(period), day)
	h := hashKey(maphash.String(c.seed, key))
	s := &c.shards[shardOf(h)]
	s.mu.Lock()
	defer s.mu.Unlock()
	if i, ok := s.usage.find(h); ok && s.usage.e[i].v.end == end {
		s.usage.e[i].v.used = max(s.usage.e[i].v.used-n, 0)
	}
}

func (c *Counter) sweepShard(i int, now time.Time) {
	t := now.UnixNano()
	s := &c.shards[i]
	s.mu.Lock()
	s.usage.removeIf(func(u usage) bool { return u.end <= t })
	s.mu.Unlock()
}

// Len returns the number of keys tracked.
func (c *Counter) Len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += s.usage.n
		s.mu.Unlock()
	}
	return n
}

// Close stops the sweeper and waits for it to exit; the counter still
// answers afterwards. It is idempotent.
func (c *Counter) Close() { c.sweeper.close() }
