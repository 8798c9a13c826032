package apikey_test

import (
	"context"
	"errors"
	"math"
	"sync"
	"time"

	"github.com/apikeykit/apikey"
	"golang.org/x/time/rate"
)

// recordingLimiter is a test-only apikey.Limiter on golang.org/x/time/rate: one
// token bucket per key in a locked map, on an injectable clock. The real
// in-memory limiter lives in the package; this one only exercises the
// middleware's hook.
type recordingLimiter struct {
	now    func() time.Time
	err    error // returned by every call when set
	shards [16]struct {
		mu      sync.Mutex
		buckets map[string]*rate.Limiter
		calls   map[string]int // nil: not counted (benchmarks)
	}
}

func newRecordingLimiter(now func() time.Time) *recordingLimiter {
	if now == nil {
		now = time.Now
	}
	l := &recordingLimiter{now: now}
	for i := range l.shards {
		l.shards[i].buckets = make(map[string]*rate.Limiter)
		l.shards[i].calls = make(map[string]int)
	}
	return l
}

func (l *recordingLimiter) shard(key string) int {
	h := uint32(2166136261) // FNV-1a
	for i := 0; i < len(key); i++ {
		h = (h ^ uint32(key[i])) * 16777619
	}
	return int(h % uint32(len(l.shards)))
}

func (l *recordingLimiter) Allow(ctx context.Context, key string, lim apikey.Limit) (apikey.Decision, error) {
	s := &l.shards[l.shard(key)]
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.calls != nil {
		s.calls[key]++
	}
	if l.err != nil {
		return apikey.Decision{}, l.err
	}
	burst := lim.Burst
	if burst == 0 {
		burst = lim.Rate
	}
	perSec := float64(lim.Rate) / lim.Period.Seconds()
	b, ok := s.buckets[key]
	if !ok {
		b = rate.NewLimiter(rate.Limit(perSec), burst)
		s.buckets[key] = b
	}
	now := l.now()
	allowed := b.AllowN(now, 1)
	tokens := b.TokensAt(now)
	d := apikey.Decision{
		Allowed:   allowed,
		Limit:     int64(burst),
		Remaining: int64(math.Max(math.Floor(tokens), 0)),
		Reset:     time.Duration((float64(burst) - tokens) / perSec * float64(time.Second)),
	}
	if !allowed {
		d.RetryAfter = time.Duration((1 - tokens) / perSec * float64(time.Second))
	}
	return d, nil
}

func (l *recordingLimiter) callCount(key string) int {
	s := &l.shards[l.shard(key)]
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[key]
}

// recordingCounter is a test-only apikey.Counter: usage per key, one period
// that never ends.
type recordingCounter struct {
	mu   sync.Mutex
	used map[string]int64
	err  error
}

func newRecordingCounter() *recordingCounter { return &recordingCounter{used: make(map[string]int64)} }

func (c *recordingCounter) Add(ctx context.Context, key string, q apikey.Quota, n int64) (apikey.Decision, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return apikey.Decision{}, c.err
	}
	d := apikey.Decision{Limit: q.Limit, Reset: q.Period}
	if c.used[key]+n > q.Limit {
		d.Remaining = q.Limit - c.used[key]
		d.RetryAfter = q.Period
		return d, nil
	}
	c.used[key] += n
	d.Allowed = true
	d.Remaining = q.Limit - c.used[key]
	return d, nil
}

var errBackend = errors.New("connection refused by 10.0.0.9:5432")
