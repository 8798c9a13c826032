package inmem

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"
)

var it0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// at0 is a clock stopped at it0, so that the background sweeper does not
// forget keys that the tests create at explicit times.
func at0() time.Time { return it0 }

// limit is a rate limit as the tests write it; params returns the GCRA
// parameters apikey.Limit.GCRA would.
type limit struct {
	Rate   int
	Period time.Duration
	Burst  int
}

func (l limit) params() (interval, tolerance time.Duration) {
	burst := l.Burst
	if burst == 0 {
		burst = l.Rate
	}
	interval = l.Period / time.Duration(l.Rate)
	return interval, time.Duration(burst) * interval
}

func (l *Limiter) allowAt(now time.Time, key string, lim limit) Decision {
	interval, tolerance := lim.params()
	return l.AllowAt(now, key, interval, tolerance)
}

func newTestLimiter(t *testing.T, now func() time.Time, maxKeys int) *Limiter {
	l := NewLimiter(Config{Now: now, Sweep: time.Minute, MaxKeys: maxKeys})
	t.Cleanup(l.Close)
	return l
}

func (l *Limiter) sweepAll(now time.Time) {
	for i := range l.shards {
		l.sweepShard(i, now)
	}
}

func (c *Counter) sweepAll(now time.Time) {
	for i := range c.shards {
		c.sweepShard(i, now)
	}
}

// Eviction forgets only keys whose bucket is full, which are the same as
// keys never seen: it never gives an active key a fresh bucket.
func TestSweepDoesNotResetActiveKey(t *testing.T) {
	l := newTestLimiter(t, at0, 0)
	limit := limit{Rate: 1, Period: time.Second, Burst: 3}
	for range 3 {
		l.allowAt(it0, "active", limit)
	}
	l.allowAt(it0, "idle", limit) // full again at +1s

	for _, at := range []time.Duration{time.Second, 2 * time.Second} {
		l.sweepAll(it0.Add(at))
	}
	if n := l.Len(); n != 1 {
		t.Fatalf("after sweeping at +2s: %d keys, want 1 (active is full only at +3s)", n)
	}
	// At +2s the active key has 2 tokens, not a fresh 3.
	allowed := 0
	for range 5 {
		if d := l.allowAt(it0.Add(2*time.Second), "active", limit); d.Allowed {
			allowed++
		}
	}
	if allowed != 2 {
		t.Fatalf("active key after sweep: %d allowed, want 2", allowed)
	}
	l.sweepAll(it0.Add(time.Hour))
	if n := l.Len(); n != 0 {
		t.Fatalf("after an hour: %d keys, want 0", n)
	}
}

func TestSweepShrinksTables(t *testing.T) {
	l := newTestLimiter(t, at0, 0)
	limit := limit{Rate: 1, Period: time.Second}
	for i := range 1500 * shards {
		l.allowAt(it0, fmt.Sprint(i), limit)
	}
	l.allowAt(it0.Add(time.Hour), "late", limit)
	l.sweepAll(it0.Add(time.Minute))
	if n := l.Len(); n != 1 {
		t.Fatalf("%d keys left, want 1", n)
	}
	for i := range l.shards {
		if size := len(l.shards[i].tat.e); size > minTableSize {
			t.Fatalf("shard %d: %d slots for %d keys", i, size, l.shards[i].tat.n)
		}
	}
	if d := l.allowAt(it0.Add(time.Hour), "late", limit); d.Allowed {
		t.Fatal("the key left after the sweep lost its state")
	}
}

func TestMaxKeysBound(t *testing.T) {
	l := newTestLimiter(t, at0, 1000)
	limit := limit{Rate: 1, Period: time.Hour}
	for i := range 100_000 {
		if d := l.allowAt(it0, fmt.Sprint(i), limit); !d.Allowed {
			t.Fatalf("new key %d refused", i)
		}
	}
	if n, bound := l.Len(), perShard(1000)*shards; n > bound {
		t.Fatalf("%d keys tracked, bound %d", n, bound)
	}
}

// The displaced key is the one closest to full among those sampled.
func TestMaxKeysDisplacesFullestBucket(t *testing.T) {
	l := newTestLimiter(t, at0, 1) // one key per shard
	s := &l.shards[0]
	for h, tat := range map[uint64]int64{1: it0.Add(time.Second).UnixNano(), 2: it0.Add(-time.Second).UnixNano(), 3: it0.Add(time.Minute).UnixNano()} {
		i, _ := s.tat.find(h)
		s.tat.insert(i, h, tat)
	}
	s.displace(it0.UnixNano())
	if _, ok := s.tat.find(2); ok || s.tat.n != 2 {
		t.Fatalf("displace kept %v", s.tat.e)
	}
	s.displace(it0.UnixNano())
	if _, ok := s.tat.find(1); ok || s.tat.n != 1 {
		t.Fatalf("displace kept %v", s.tat.e)
	}
}

func TestCloseStopsSweepers(t *testing.T) {
	before := runtime.NumGoroutine()
	l := NewLimiter(Config{Now: time.Now, Sweep: time.Millisecond})
	c := NewCounter(Config{Now: time.Now, Sweep: time.Millisecond})
	time.Sleep(5 * time.Millisecond) // let the sweeper run a few shards
	l.Close()
	c.Close()
	select {
	case <-l.sweeper.done:
	default:
		t.Fatal("limiter sweeper still running after Close")
	}
	select {
	case <-c.sweeper.done:
	default:
		t.Fatal("counter sweeper still running after Close")
	}
	for range 100 {
		if runtime.NumGoroutine() <= before {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("%d goroutines after Close, %d before", runtime.NumGoroutine(), before)
}

func TestCounterSweepForgetsEndedWindows(t *testing.T) {
	c := NewCounter(Config{Now: at0, Sweep: time.Minute})
	defer c.Close()
	c.AddAt(it0, "hourly", 10, time.Hour, 0, 1)
	c.AddAt(it0, "daily", 10, 24*time.Hour, 0, 1)
	c.sweepAll(it0.Add(time.Hour))
	if n := c.Len(); n != 1 {
		t.Fatalf("%d keys after the hour, want 1", n)
	}
	c.sweepAll(it0.Add(24 * time.Hour))
	if n := c.Len(); n != 0 {
		t.Fatalf("%d keys after the day, want 0", n)
	}
}

// TestCounterRefund takes units off the current window only, never below
// zero, and leaves keys and windows it has no usage for alone.
func TestCounterRefund(t *testing.T) {
	c := NewCounter(Config{Now: at0, Sweep: time.Hour})
	defer c.Close()
	const period = time.Hour
	now := it0.Truncate(period).Add(10 * time.Minute)
	if d := c.AddAt(now, "k", 10, period, 0, 7); !d.Allowed || d.Remaining != 3 {
		t.Fatalf("add: %+v", d)
	}
	steps := []struct {
		name      string
		at        time.Time
		refund    int64
		remaining int64
	}{
		{"refund 2", now.Add(time.Minute), 2, 5},
		{"refund 0", now, 0, 5},
		{"refund more than used: zero, not below", now, 100, 10},
	}
	for _, s := range steps {
		c.RefundAt(s.at, "k", period, 0, s.refund)
		if d := c.AddAt(s.at, "k", 10, period, 0, 0); d.Remaining != s.remaining {
			t.Fatalf("%s: remaining %d, want %d", s.name, d.Remaining, s.remaining)
		}
	}
	// The next window's usage is its own: a refund there does not touch
	// this one's, nor create anything.
	c.AddAt(now, "k", 10, period, 0, 4)
	c.RefundAt(now.Add(period), "k", period, 0, 4)
	if d := c.AddAt(now, "k", 10, period, 0, 0); d.Remaining != 6 {
		t.Fatalf("refund in the next window changed this one: %+v", d)
	}
	n := c.Len()
	c.RefundAt(now, "unknown", period, 0, 1)
	if c.Len() != n {
		t.Fatal("a refund for a key with no usage created one")
	}
}

// TestMonthWindowCache: the cached month windows are those computed
// afresh, for every start day, across month ends, leap days and times
// that go back, in any order.
func TestMonthWindowCache(t *testing.T) {
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var times []int64
	for d := range 800 { // 2024 (a leap year) into 2026
		day := base.AddDate(0, 0, d)
		times = append(times, day.UnixNano(), day.Add(-time.Nanosecond).UnixNano(), day.Add(13*time.Hour).UnixNano())
	}
	rand.Shuffle(len(times), func(i, j int) { times[i], times[j] = times[j], times[i] })
	for _, tm := range times {
		for day := range 32 {
			gotStart, gotEnd := monthWindow(tm, day)
			wantStart, wantEnd := computeMonthWindow(tm, day)
			if gotStart != wantStart || gotEnd != wantEnd {
				t.Fatalf("day %d at %v: cached [%v, %v), computed [%v, %v)", day, time.Unix(0, tm).UTC(),
					time.Unix(0, gotStart).UTC(), time.Unix(0, gotEnd).UTC(), time.Unix(0, wantStart).UTC(), time.Unix(0, wantEnd).UTC())
			}
			if !(gotStart <= tm && tm < gotEnd) {
				t.Fatalf("day %d at %v: [%v, %v) does not hold it", day, time.Unix(0, tm).UTC(), time.Unix(0, gotStart).UTC(), time.Unix(0, gotEnd).UTC())
			}
		}
	}
}
