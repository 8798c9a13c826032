package inmem

import (
	"hash/maphash"
	"math"
	"sync"
	"time"
)

// Credits has the fields of apikey.Credits, so that callers convert one
// with Credits(c). Period is > 0, apikey.MonthPeriod (-1) or
// apikey.NoRefill (-2); the callers validate it.
type Credits struct {
	Grant  int64
	Period time.Duration
	Day    int
}

// noRefill is apikey.NoRefill.
const noRefill = -2

// Ledger keeps credit balances: for each key, the refill period it was
// last used in, the units used in it and the top-ups left at its start
// plus those bought since (see apikey.Credits for the model). It is safe
// for concurrent use.
//
// A balance is forgotten by the sweeper once its period has ended with no
// top-ups left: it is then the same as a balance never seen, a fresh
// grant. A balance with top-ups, or under NoRefill (whose grant is never
// given again), is never forgotten.
type Ledger struct {
	seed    maphash.Seed
	now     func() time.Time
	shards  [shards]ledgerShard
	sweeper *sweeper
}

type ledgerShard struct {
	mu  sync.Mutex
	bal table[balance] // by key hash, as in Limiter
	_   [24]byte
}

// balance is a key's state in the refill period [start, end) (Unix ns;
// end is math.MaxInt64 for NoRefill) of the credits' period and day that
// it was last used under: used units, and extra, the top-ups. Its
// capacity is the grant plus extra, what is left capacity - used.
type balance struct {
	start, end  int64
	used, extra int64
	period      time.Duration
	day         int
}

// NewLedger returns a Ledger and starts its sweeper, which runs until
// Close. c.MaxKeys is not used.
func NewLedger(c Config) *Ledger {
	l := &Ledger{seed: maphash.MakeSeed(), now: c.Now}
	l.sweeper = startSweeper(c.Sweep, c.Now, l.sweepShard)
	return l
}

// Now reads the ledger's clock.
func (l *Ledger) Now() time.Time { return l.now() }

// SpendAt takes n ≥ 0 units from key's balance under c at time now, if
// the balance holds them; otherwise it takes nothing and the Decision is
// refused. n = 0 reports the balance. The Decision's Limit is the
// period's capacity (grant plus top-ups), Remaining the balance after,
// Reset the time until the next refill (0 for NoRefill) and, on a
// refusal, RetryAfter the time until the next refill if the grant holds
// n, 0 otherwise.
func (l *Ledger) SpendAt(now time.Time, key string, c Credits, n int64) Decision {
	t := now.UnixNano()
	sl, b := l.lock(t, key, c)
	defer sl.s.mu.Unlock()
	capacity := c.Grant + b.extra
	d := Decision{Limit: capacity}
	if c.Period != noRefill {
		d.Reset = time.Duration(b.end - t)
	}
	if n > capacity-b.used {
		d.Remaining = max(capacity-b.used, 0)
		if c.Period != noRefill && n <= c.Grant {
			d.RetryAfter = d.Reset
		}
		return d
	}
	d.Allowed = true
	b.used += n
	d.Remaining = capacity - b.used
	if n > 0 {
		sl.store(b)
	}
	return d
}

// RefundAt gives back n ≥ 0 units of key's balance under c at time now:
// used goes down by n, never below zero, in the current period (after a
// refill if one is due). A key never seen is left alone.
func (l *Ledger) RefundAt(now time.Time, key string, c Credits, n int64) {
	sl, b := l.lock(now.UnixNano(), key, c)
	defer sl.s.mu.Unlock()
	if sl.ok {
		b.used -= min(n, b.used)
		sl.store(b)
	}
}

// TopUpAt adds n ≥ 1 units that do not expire to key's balance under c at
// time now and returns the new balance, unless the balance would then
// pass limit: then it adds nothing and returns the balance and false.
func (l *Ledger) TopUpAt(now time.Time, key string, c Credits, n, limit int64) (int64, bool) {
	sl, b := l.lock(now.UnixNano(), key, c)
	defer sl.s.mu.Unlock()
	left := c.Grant + b.extra - b.used
	if n > limit-left {
		return left, false
	}
	b.extra += n
	sl.store(b)
	return left + n, true
}

func (l *Ledger) hash(key string) uint64 { return hashKey(maphash.String(l.seed, key)) }

// A ledgerSlot is where a key's balance is in its shard, or would go if
// the key is not tracked (ok false): the slot that find returned for the
// key's hash h.
type ledgerSlot struct {
	s  *ledgerShard
	i  int
	ok bool
	h  uint64
}

// lock locks key's shard and returns key's slot and its balance at time
// t under c, refilled if its period has ended: used back to 0, and the
// top-ups less what the period took of them. The caller unlocks the
// shard.
//
// A balance is refilled only when t is in a later period than its own,
// or when c's period or day changed: if the clock steps back into an
// earlier period, the balance stays as it is.
func (l *Ledger) lock(t int64, key string, c Credits) (ledgerSlot, balance) {
	h := l.hash(key)
	s := &l.shards[shardOf(h)]
	s.mu.Lock()
	i, ok := s.bal.find(h)
	sl := ledgerSlot{s: s, i: i, ok: ok, h: h}
	if !ok {
		start, end := creditsWindow(t, c)
		return sl, balance{start: start, end: end, period: c.Period, day: c.Day}
	}
	b := s.bal.e[i].v
	same := b.period == c.Period && b.day == c.Day
	if same && t < b.end {
		// The common case, without the calendar arithmetic.
		return sl, b
	}
	start, end := creditsWindow(t, c)
	if (same && start > b.start) || (!same && (start != b.start || end != b.end)) {
		b = balance{start: start, end: end, extra: max(b.extra-max(b.used-c.Grant, 0), 0), period: c.Period, day: c.Day}
	} else {
		b.period, b.day = c.Period, c.Day
	}
	return sl, b
}

// creditsWindow returns the refill period of c that holds t; for
// NoRefill, one period for all time.
func creditsWindow(t int64, c Credits) (start, end int64) {
	if c.Period == noRefill {
		return 0, math.MaxInt64
	}
	return window(t, int64(c.Period), c.Day)
}

// store writes b to the slot, inserting it if its key was not tracked.
func (sl ledgerSlot) store(b balance) {
	if sl.ok {
		sl.s.bal.e[sl.i].v = b
		return
	}
	sl.s.bal.insert(sl.i, sl.h, b)
}

func (l *Ledger) sweepShard(i int, now time.Time) {
	t := now.UnixNano()
	s := &l.shards[i]
	s.mu.Lock()
	s.bal.removeIf(func(b balance) bool { return b.end <= t && b.extra == 0 })
	s.mu.Unlock()
}

// Len returns the number of balances tracked.
func (l *Ledger) Len() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += s.bal.n
		s.mu.Unlock()
	}
	return n
}

// Close stops the sweeper and waits for it to exit; the ledger still
// answers afterwards. It is idempotent.
func (l *Ledger) Close() { l.sweeper.close() }
