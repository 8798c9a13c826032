package inmem

import (
	"hash/maphash"
	"sync"
	"time"
)

// Limiter keeps one token bucket per key: its theoretical arrival time
// (GCRA), the time at which the bucket is full again. It is safe for
// concurrent use.
//
// A key whose bucket is full is indistinguishable from a key never seen,
// so the sweeper forgets such keys and shrinks tables that have emptied
// out; with Config.MaxKeys, a full shard makes room by displacing the key
// closest to full.
type Limiter struct {
	seed      maphash.Seed
	now       func() time.Time
	epoch     time.Time // times are kept as nanoseconds since epoch
	maxPerMap int       // 0: unbounded
	shards    [shards]limiterShard
	sweeper   *sweeper
}

type limiterShard struct {
	mu sync.Mutex
	// tat maps a key's hash to its theoretical arrival time in
	// nanoseconds since the limiter's epoch. The bucket holds
	// (tolerance - (tat - now)) / interval tokens at time now.
	tat table[int64]
	_   [24]byte // keep shards on separate cache lines
}

// NewLimiter returns a Limiter and starts its sweeper, which runs until
// Close. c must be valid (the callers check it).
func NewLimiter(c Config) *Limiter {
	l := &Limiter{
		seed:      maphash.MakeSeed(),
		now:       c.Now,
		epoch:     c.Now(),
		maxPerMap: perShard(c.MaxKeys),
	}
	l.sweeper = startSweeper(c.Sweep, c.Now, l.sweepShard)
	return l
}

// Now reads the limiter's clock.
func (l *Limiter) Now() time.Time { return l.now() }

// AllowAt takes one token from key's bucket at time now, for a bucket
// whose tokens come back every interval and that holds tolerance/interval
// of them (see apikey.Limit.GCRA). Times are measured from the clock's
// reading when the limiter was made, with time.Time's Sub: on the
// monotonic clock when both readings have one, so a step of the wall
// clock neither refills nor drains buckets.
func (l *Limiter) AllowAt(now time.Time, key string, interval, tolerance time.Duration) Decision {
	t := int64(now.Sub(l.epoch))
	h := hashKey(maphash.String(l.seed, key))
	s := &l.shards[shardOf(h)]
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.tat.find(h)
	tat := t // a key not tracked has a full bucket
	if ok {
		tat = s.tat.e[i].v
	}
	d, newTat := gcra(t, tat, int64(interval), int64(tolerance))
	switch {
	case !d.Allowed:
	case ok:
		s.tat.e[i].v = newTat
	default:
		if l.maxPerMap > 0 && s.tat.n >= l.maxPerMap {
			s.displace(t)
			i, _ = s.tat.find(h) // displace moved entries
		}
		s.tat.insert(i, h, newTat)
	}
	return d
}

// gcra is the whole algorithm; redislimit's script is the same in Lua and
// must stay in step with it. tat is the key's theoretical arrival time (any
// time ≤ now for a full bucket), now the current time, both in
// nanoseconds. A request is allowed when, after taking its token, the
// bucket would not need more than tolerance to refill.
func gcra(now, tat, interval, tolerance int64) (Decision, int64) {
	ahead := max(tat-now, 0) // time until full
	next := ahead + interval
	if next > tolerance {
		return Decision{
			Limit:      tolerance / interval,
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
func (l *Limiter) sweepShard(i int, now time.Time) {
	t := int64(now.Sub(l.epoch))
	s := &l.shards[i]
	s.mu.Lock()
	s.tat.removeIf(func(tat int64) bool { return tat <= t })
	s.mu.Unlock()
}

// Len returns the number of keys tracked.
func (l *Limiter) Len() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += s.tat.n
		s.mu.Unlock()
	}
	return n
}

// Close stops the sweeper and waits for it to exit; the limiter still
// answers afterwards. It is idempotent.
func (l *Limiter) Close() { l.sweeper.close() }
