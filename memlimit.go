package apikey

import (
	"context"
	"fmt"
	"hash/maphash"
	"sync"
	"time"
)

// memShards is the number of independently locked shards of a
// MemoryLimiter or MemoryCounter. A power of two, so a hash picks a shard
// with a mask; 256 keeps lock contention negligible on large machines
// while each shard's table stays big enough to be worth a lock.
const (
	memShardBits = 8
	memShards    = 1 << memShardBits
)

// MemoryLimiter is a Limiter that keeps one token bucket per key in this
// process's memory. Use it when one process serves all requests; with
// many processes, each would apply the limit on its own (see redislimit).
//
// Decisions are those of golang.org/x/time/rate (see Limit). Keys are
// spread over 256 shards, each with its own lock. A key is tracked by a
// 64-bit hash (seeded at random per limiter, so collisions cannot be
// crafted) and one int64 of state, its theoretical arrival time (GCRA),
// in a 16-byte slot of an open-addressing table that grows at 3/4 full:
// 21 to 43 bytes per key as keys are added (34 measured with a million),
// whatever the key's length. Two keys whose hashes collide (odds about 1
// in 4×10^7 that any two of a million tracked keys do) share a bucket:
// stricter, never looser.
//
// A key whose bucket is full again is indistinguishable from a key never
// seen, so a background goroutine forgets such keys, one shard at a time,
// without touching the request path, and shrinks tables that have emptied
// out; Close stops it. An optional bound on the number of keys
// (WithMaxKeys) caps memory even under a flood of distinct keys.
//
// A MemoryLimiter is safe for concurrent use. Allow and AllowAt do not
// allocate for a key already tracked, nor for a new key unless its
// shard's table grows.
type MemoryLimiter struct {
	seed      maphash.Seed
	now       func() time.Time
	epoch     time.Time // times are kept as nanoseconds since epoch
	sweep     time.Duration
	maxPerMap int // 0: unbounded
	shards    [memShards]limiterShard

	closeOnce sync.Once
	stop      chan struct{}
	done      chan struct{}
}

type limiterShard struct {
	mu sync.Mutex
	// tat maps a key's hash to its theoretical arrival time in
	// nanoseconds since the limiter's epoch: the time at which its bucket
	// is full again. The bucket
	// holds (tolerance - (tat - now)) / interval tokens at time now.
	// Keying by hash rather than by string saves the string's memory and
	// a cache miss per lookup, and a new key costs no allocation.
	tat table[int64]
	_   [24]byte // keep shards on separate cache lines
}

// MemoryLimiterOption configures NewMemoryLimiter.
type MemoryLimiterOption func(*memConfig)

// memConfig is shared by MemoryLimiter and MemoryCounter options.
type memConfig struct {
	now     func() time.Time
	sweep   time.Duration
	maxKeys int
}

// WithLimiterClock sets the clock that Allow reads (default time.Now).
// Tests pass a fake clock so that they need not sleep.
func WithLimiterClock(now func() time.Time) MemoryLimiterOption {
	return func(c *memConfig) { c.now = now }
}

// WithSweepInterval sets how long the background sweeper takes to visit
// every shard once, forgetting keys whose bucket is full again (default
// one minute). A key is forgotten at most this long after its bucket is
// full again. The sweeper visits at most one shard per millisecond, so a
// visit of all 256 shards takes at least 256ms. It must be positive.
func WithSweepInterval(d time.Duration) MemoryLimiterOption {
	return func(c *memConfig) { c.sweep = d }
}

// WithMaxKeys bounds the number of keys tracked at once to about n, but
// never below one per shard, 256 in all (default 0: no bound beyond the
// sweeper's). When a shard is full, a new
// key displaces the sampled key whose bucket is closest to full; that key
// then starts over with a full bucket, so it may get a few more requests
// than its limit allows. Set n well above the number of keys active
// within a bucket's refill time. It must not be negative.
func WithMaxKeys(n int) MemoryLimiterOption {
	return func(c *memConfig) { c.maxKeys = n }
}

func newMemConfig(opts []MemoryLimiterOption) memConfig {
	c := memConfig{now: time.Now, sweep: time.Minute}
	for _, o := range opts {
		o(&c)
	}
	if c.now == nil {
		panic("apikey: nil clock")
	}
	if c.sweep <= 0 {
		panic(fmt.Sprintf("apikey: sweep interval %v is not positive", c.sweep))
	}
	if c.maxKeys < 0 {
		panic(fmt.Sprintf("apikey: max keys %d is negative", c.maxKeys))
	}
	return c
}

// perShard returns the per-shard key bound for a total of maxKeys.
func perShard(maxKeys int) int {
	if maxKeys == 0 {
		return 0
	}
	return max(1, (maxKeys+memShards-1)/memShards)
}

// NewMemoryLimiter returns a MemoryLimiter and starts its sweeper, which
// runs until Close. It panics if an option is invalid (a nil clock, a
// sweep interval that is not positive, a negative key bound): that is a
// programming error, caught at construction rather than per request.
func NewMemoryLimiter(opts ...MemoryLimiterOption) *MemoryLimiter {
	c := newMemConfig(opts)
	l := &MemoryLimiter{
		seed:      maphash.MakeSeed(),
		now:       c.now,
		epoch:     c.now(),
		sweep:     c.sweep,
		maxPerMap: perShard(c.maxKeys),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	go runSweeper(l.sweep, l.now, l.stop, l.done, l.sweepShard)
	return l
}

// Allow takes one request from key's bucket under limit at the limiter's
// clock's current time. It returns an error wrapping ErrInvalidRequest if
// limit is not usable (see Limit), and no other error. ctx is not used.
// It keeps only a hash of key, never key itself: the middleware relies on
// this to pass it the key ID as a slice of the presented token, whose
// memory holds the secret.
func (l *MemoryLimiter) Allow(_ context.Context, key string, limit Limit) (Decision, error) {
	return l.AllowAt(l.now(), key, limit)
}

// AllowAt is Allow at time now, like rate.Limiter's AllowN(now, 1). Times
// need not increase from call to call, but the sweeper uses the
// limiter's clock, so keep them close to it.
//
// Times are measured from the clock's time when the limiter was made,
// with time.Time's Sub: on the monotonic clock when both readings have
// one (time.Now's do), so a step of the wall clock neither refills nor
// drains buckets, as with x/time/rate.
func (l *MemoryLimiter) AllowAt(now time.Time, key string, limit Limit) (Decision, error) {
	iv, tol, err := limit.GCRA()
	if err != nil {
		return Decision{}, err
	}
	interval, tolerance := int64(iv), int64(tol)
	t := int64(now.Sub(l.epoch))
	h := hashKey(maphash.String(l.seed, key))
	s := &l.shards[h>>(64-memShardBits)]
	s.mu.Lock()
	i, ok := s.tat.find(h)
	tat := t // a key not tracked has a full bucket
	if ok {
		tat = s.tat.e[i].v
	}
	d, newTat := gcraDecide(t, tat, interval, tolerance)
	switch {
	case !d.Allowed:
	case ok:
		s.tat.e[i].v = newTat
	case l.maxPerMap > 0 && s.tat.n >= l.maxPerMap:
		s.displace(t)
		i, _ = s.tat.find(h) // displace moved entries
		fallthrough
	default:
		s.tat.insert(i, h, newTat)
	}
	s.mu.Unlock()
	return d, nil
}

// gcraDecide is the whole algorithm, shared with the Redis script (which
// must stay in step with it): tat is the key's theoretical arrival time
// (any time ≤ now for a full bucket), now the current time, both in
// nanoseconds. A request is allowed when, after taking its token, the
// bucket would not need more than tolerance to refill.
func gcraDecide(now, tat, interval, tolerance int64) (Decision, int64) {
	ahead := tat - now // time until full; ≤ 0 when full
	if ahead < 0 {
		ahead = 0
	}
	next := ahead + interval
	if next > tolerance {
		return Decision{
			Allowed:    false,
			Limit:      tolerance / interval,
			Remaining:  0,
			Reset:      time.Duration(ahead),
			RetryAfter: time.Duration(next - tolerance),
		}, tat
	}
	return Decision{
		Allowed:   true,
		Limit:     tolerance / interval,
		Remaining: (tolerance - next) / interval,
		Reset:     time.Duration(next),
	}, now + next
}

// displace makes room for one key: it samples a few keys from a place
// that moves on each call and deletes the one whose bucket is closest to
// full, stopping early at one that is full already. s.mu is held.
func (s *limiterShard) displace(now int64) {
	const samples = 8
	e := s.tat.e
	victim, n := -1, 0
	for i := int(now) & (len(e) - 1); n < samples; i = (i + 1) & (len(e) - 1) {
		if e[i].h == 0 {
			continue
		}
		if victim < 0 || e[i].v < e[victim].v {
			victim = i
		}
		if n++; e[i].v <= now {
			break
		}
	}
	if victim >= 0 {
		s.tat.remove(victim)
	}
}

// sweepShard forgets the keys of shard i whose bucket is full at now.
func (l *MemoryLimiter) sweepShard(i int, now time.Time) {
	t := int64(now.Sub(l.epoch))
	s := &l.shards[i]
	s.mu.Lock()
	s.tat.removeIf(func(tat int64) bool { return tat <= t })
	s.mu.Unlock()
}

// Len returns the number of keys tracked (for tests and metrics).
func (l *MemoryLimiter) Len() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += s.tat.n
		s.mu.Unlock()
	}
	return n
}

// Close stops the sweeper and waits for it to exit. The limiter still
// answers afterwards, but no longer forgets idle keys. Close is
// idempotent and always returns nil.
func (l *MemoryLimiter) Close() error {
	l.closeOnce.Do(func() { close(l.stop) })
	<-l.done
	return nil
}

// runSweeper calls sweep for each shard in turn, spreading one round over
// interval, until stop is closed; then it closes done.
func runSweeper(interval time.Duration, now func() time.Time, stop <-chan struct{}, done chan<- struct{}, sweep func(int, time.Time)) {
	defer close(done)
	tick := time.NewTicker(max(interval/memShards, time.Millisecond))
	defer tick.Stop()
	for i := 0; ; i = (i + 1) & (memShards - 1) {
		select {
		case <-stop:
			return
		case <-tick.C:
			sweep(i, now())
		}
	}
}

var _ Limiter = (*MemoryLimiter)(nil)
