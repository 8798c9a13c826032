// Package memlimit is an apikey.Limiter, an apikey.Counter and an
// apikey.Ledger in this process's memory, for services that run as one
// process. With many processes each would apply the limits on its own:
// use package redislimit, which makes the same decisions on a shared
// Redis.
//
// The Limiter's decisions are those of golang.org/x/time/rate (see
// apikey.Limit); the Counter keeps fixed windows aligned to the Unix epoch
// or calendar months (see apikey.Quota); the Ledger keeps credit balances
// (see apikey.Credits). All three track a key by a 64-bit hash seeded at
// random, never by the key itself, and forget keys in the background once
// their state is back to that of a key never seen; Close stops that.
//
// Manager.Middleware already enforces every key's own limits and credits
// with a Limiter, a Counter and a Ledger of this kind that it owns; create
// your own to share one between middlewares and other code (a Ledger, to
// top balances up), or to bound a Limiter's memory with WithMaxKeys.
package memlimit

import (
	"context"
	"fmt"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/internal/inmem"
)

// DefaultSweepInterval is how long the background sweeper takes to visit
// every key once, unless WithSweepInterval says otherwise.
const DefaultSweepInterval = time.Minute

// Limiter is an apikey.Limiter that keeps one token bucket per key in
// memory. It is safe for concurrent use. Allow does not allocate for a
// key already tracked, nor for a new key unless its shard's table grows.
type Limiter struct {
	l *inmem.Limiter
}

// NewLimiter returns a Limiter and starts its sweeper, which runs until
// Close. It returns an error wrapping apikey.ErrInvalidRequest if an
// option is invalid.
func NewLimiter(opts ...LimiterOption) (*Limiter, error) {
	c := limiterConfig{config: config{now: time.Now, sweep: DefaultSweepInterval}}
	for _, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("%w: memlimit: nil option", apikey.ErrInvalidRequest)
		}
		if err := o.applyLimiter(&c); err != nil {
			return nil, err
		}
	}
	return &Limiter{l: inmem.NewLimiter(inmem.Config{Now: c.now, Sweep: c.sweep, MaxKeys: c.maxKeys})}, nil
}

// Allow takes one request from key's bucket under limit at the limiter's
// clock's current time. It returns limit.Validate's error if limit is not
// usable, and no other error. ctx is not used.
func (l *Limiter) Allow(_ context.Context, key string, limit apikey.Limit) (apikey.Decision, error) {
	return l.AllowAt(l.l.Now(), key, limit)
}

// AllowAt is Allow at time now, like rate.Limiter's AllowN(now, 1). Times
// need not increase from call to call, but the sweeper uses the limiter's
// clock, so keep them close to it. A step of the wall clock neither
// refills nor drains buckets: times are compared on the monotonic clock
// when both readings have one, as time.Now's do.
func (l *Limiter) AllowAt(now time.Time, key string, limit apikey.Limit) (apikey.Decision, error) {
	interval, tolerance, err := limit.GCRA()
	if err != nil {
		return apikey.Decision{}, err
	}
	return apikey.Decision(l.l.AllowAt(now, key, interval, tolerance)), nil
}

// Len returns the number of keys tracked, for tests and metrics.
func (l *Limiter) Len() int { return l.l.Len() }

// Close stops the sweeper and waits for it to exit. The limiter still
// answers afterwards, but no longer forgets idle keys. Close is
// idempotent and always returns nil.
func (l *Limiter) Close() error {
	l.l.Close()
	return nil
}

// Counter is an apikey.Counter that keeps usage in memory. Counts are
// lost when the process exits. It is safe for concurrent use. Add does
// not allocate for a key already tracked.
type Counter struct {
	c *inmem.Counter
}

// NewCounter returns a Counter and starts its sweeper, which runs until
// Close. It returns an error wrapping apikey.ErrInvalidRequest if an
// option is invalid.
func NewCounter(opts ...CounterOption) (*Counter, error) {
	c := counterConfig{config: config{now: time.Now, sweep: DefaultSweepInterval}}
	for _, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("%w: memlimit: nil option", apikey.ErrInvalidRequest)
		}
		if err := o.applyCounter(&c); err != nil {
			return nil, err
		}
	}
	return &Counter{c: inmem.NewCounter(inmem.Config{Now: c.now, Sweep: c.sweep})}, nil
}

// Add adds n units to key's usage in the current window of q, at the
// counter's clock's time. See AddAt.
func (c *Counter) Add(_ context.Context, key string, q apikey.Quota, n int64) (apikey.Decision, error) {
	return c.AddAt(c.c.Now(), key, q, n)
}

// AddAt adds n units to key's usage in the window of q that contains now.
// If the usage would exceed q.Limit, nothing is added and the Decision is
// refused, with RetryAfter the time until the window ends (even when n
// alone exceeds q.Limit and can never be allowed). n = 0 reports the usage
// without changing it. Reset is the time until the window ends. It returns
// an error wrapping apikey.ErrInvalidRequest if q.Validate refuses q or n
// is negative, and no other error.
func (c *Counter) AddAt(now time.Time, key string, q apikey.Quota, n int64) (apikey.Decision, error) {
	if err := q.Validate(); err != nil {
		return apikey.Decision{}, err
	}
	if n < 0 {
		return apikey.Decision{}, fmt.Errorf("%w: negative quota cost %d", apikey.ErrInvalidRequest, n)
	}
	return apikey.Decision(c.c.AddAt(now, key, q.Limit, q.Period, q.Day, n)), nil
}

// Refund implements apikey.Refunder: RefundAt at the counter's clock's
// time.
func (c *Counter) Refund(_ context.Context, key string, q apikey.Quota, n int64) error {
	return c.RefundAt(c.c.Now(), key, q, n)
}

// RefundAt takes n units off key's usage in the window of q that contains
// now, never below zero: the units of a request counted by AddAt and then
// refused. It returns an error wrapping apikey.ErrInvalidRequest if
// q.Validate refuses q or n is negative, and no other error.
func (c *Counter) RefundAt(now time.Time, key string, q apikey.Quota, n int64) error {
	if err := q.Validate(); err != nil {
		return err
	}
	if n < 0 {
		return fmt.Errorf("%w: negative quota refund %d", apikey.ErrInvalidRequest, n)
	}
	c.c.RefundAt(now, key, q.Period, q.Day, n)
	return nil
}

// Len returns the number of keys tracked, for tests and metrics.
func (c *Counter) Len() int { return c.c.Len() }

// Close stops the sweeper and waits for it to exit. The counter still
// answers afterwards. Close is idempotent and always returns nil.
func (c *Counter) Close() error {
	c.c.Close()
	return nil
}

var (
	_ apikey.Limiter  = (*Limiter)(nil)
	_ apikey.Counter  = (*Counter)(nil)
	_ apikey.Refunder = (*Counter)(nil)
)
