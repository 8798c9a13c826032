package apikey

import (
	"context"
	"fmt"
	"hash/maphash"
	"math"
	"sync"
	"time"
)

// MemoryCounter is a Counter that keeps usage in this process's memory:
// for each key (by a 64-bit seeded hash, as in MemoryLimiter), the end of
// its current window and the units used in it.
// Counts are lost when the process exits; with many processes, or to
// keep counts across restarts, use a shared Counter (redislimit, SQL).
//
// Windows are fixed and aligned to the Unix epoch (see Quota). A
// background goroutine forgets keys whose window has ended, one shard at
// a time; Close stops it.
//
// A MemoryCounter is safe for concurrent use. Add does not allocate for
// a key already tracked.
type MemoryCounter struct {
	seed   maphash.Seed
	now    func() time.Time
	shards [memShards]counterShard

	closeOnce sync.Once
	stop      chan struct{}
	done      chan struct{}
}

type counterShard struct {
	mu    sync.Mutex
	usage table[usage] // by key hash, as in MemoryLimiter
	_     [24]byte
}

// usage is a key's count in the window that ends at end (Unix ns).
type usage struct {
	end, used int64
}

// MemoryCounterOption configures NewMemoryCounter.
type MemoryCounterOption func(*memConfig)

// WithCounterClock sets the clock that Add reads (default time.Now).
func WithCounterClock(now func() time.Time) MemoryCounterOption {
	return func(c *memConfig) { c.now = now }
}

// NewMemoryCounter returns a MemoryCounter and starts its sweeper, which
// visits every shard once a minute until Close. It panics if an option is
// invalid (a nil clock).
func NewMemoryCounter(opts ...MemoryCounterOption) *MemoryCounter {
	lopts := make([]MemoryLimiterOption, len(opts))
	for i, o := range opts {
		lopts[i] = MemoryLimiterOption(o)
	}
	cfg := newMemConfig(lopts)
	c := &MemoryCounter{
		seed: maphash.MakeSeed(),
		now:  cfg.now,
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	go runSweeper(cfg.sweep, c.now, c.stop, c.done, c.sweepShard)
	return c
}

// Add adds n units to key's usage in the current window of q, at the
// counter's clock's time. See AddAt.
func (c *MemoryCounter) Add(_ context.Context, key string, q Quota, n int64) (Decision, error) {
	return c.AddAt(c.now(), key, q, n)
}

// AddAt adds n units to key's usage in the window of q that contains
// now. If the usage would exceed q.Limit, nothing is added and the
// Decision is refused, with RetryAfter the time until the window ends
// (even when n alone exceeds q.Limit and can never be allowed). n = 0
// reports the usage without changing it. Reset is the time until the
// window ends. It returns an error wrapping ErrInvalidRequest if q is
// zero or invalid or n is negative, and no other error.
func (c *MemoryCounter) AddAt(now time.Time, key string, q Quota, n int64) (Decision, error) {
	if err := q.Validate(); err != nil {
		return Decision{}, err
	}
	if n < 0 {
		return Decision{}, fmt.Errorf("%w: negative quota cost %d", ErrInvalidRequest, n)
	}
	t := now.UnixNano()
	end, left := windowEnd(t, int64(q.Period))
	h := hashKey(maphash.String(c.seed, key))
	s := &c.shards[h>>(64-memShardBits)]
	s.mu.Lock()
	i, ok := s.usage.find(h)
	var used int64
	if ok && s.usage.e[i].v.end == end {
		used = s.usage.e[i].v.used
	}
	d := Decision{Limit: q.Limit, Reset: time.Duration(left)}
	if n > q.Limit-used {
		d.Remaining = max(q.Limit-used, 0)
		d.RetryAfter = d.Reset
	} else {
		d.Allowed = true
		used += n
		d.Remaining = q.Limit - used
		if ok {
			s.usage.e[i].v = usage{end: end, used: used}
		} else {
			s.usage.insert(i, h, usage{end: end, used: used})
		}
	}
	s.mu.Unlock()
	return d, nil
}

// windowEnd returns the end of the window of length period (ns) that
// contains t (Unix ns), windows starting at multiples of period since
// the epoch, and the time from t to that end. The end saturates at
// math.MaxInt64 for periods too long to represent it.
func windowEnd(t, period int64) (end, left int64) {
	m := t % period
	if m < 0 {
		m += period
	}
	left = period - m
	if t > math.MaxInt64-left {
		return math.MaxInt64, left
	}
	return t + left, left
}

func (c *MemoryCounter) sweepShard(i int, now time.Time) {
	t := now.UnixNano()
	s := &c.shards[i]
	s.mu.Lock()
	s.usage.removeIf(func(u usage) bool { return u.end <= t })
	s.mu.Unlock()
}

// Len returns the number of keys tracked (for tests and metrics).
func (c *MemoryCounter) Len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += s.usage.n
		s.mu.Unlock()
	}
	return n
}

// Close stops the sweeper and waits for it to exit. The counter still
// answers afterwards. Close is idempotent and always returns nil.
func (c *MemoryCounter) Close() error {
	c.closeOnce.Do(func() { close(c.stop) })
	<-c.done
	return nil
}

var _ Counter = (*MemoryCounter)(nil)
