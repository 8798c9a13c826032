package redislimit

import (
	"fmt"
	"time"

	"github.com/apikeykit/apikey"
)

// A LimiterOption configures NewLimiter.
type LimiterOption interface {
	applyLimiter(*config) error
}

// A CounterOption configures NewCounter.
type CounterOption interface {
	applyCounter(*config) error
}

// A LedgerOption configures NewLedger.
type LedgerOption interface {
	applyLedger(*ledgerConfig) error
}

// An Option configures NewLimiter, NewCounter, NewLeaseLimiter and
// NewLedger.
type Option interface {
	LimiterOption
	CounterOption
	LeaseOption
	LedgerOption
}

type config struct {
	prefix string
}

// bothOption sets what a Limiter and a Counter have in common.
type bothOption func(*config) error

func (o bothOption) applyLimiter(c *config) error      { return o(c) }
func (o bothOption) applyCounter(c *config) error      { return o(c) }
func (o bothOption) applyLedger(c *ledgerConfig) error { return o(&c.config) }

type ledgerConfig struct {
	config
	now func() time.Time
}

type ledgerOption func(*ledgerConfig) error

func (o ledgerOption) applyLedger(c *ledgerConfig) error { return o(c) }

// WithClock makes a Ledger read the time from now, at microsecond
// precision, instead of from Redis's clock (TIME), the default. Tests pass
// a fake clock so that they can move to a refill without waiting; in
// production Redis's clock is better, since every instance then agrees on
// when a period ends. now must be safe for concurrent use.
func WithClock(now func() time.Time) LedgerOption {
	return ledgerOption(func(c *ledgerConfig) error {
		if now == nil {
			return fmt.Errorf("%w: redislimit: WithClock(nil)", apikey.ErrInvalidRequest)
		}
		c.now = now
		return nil
	})
}

// WithPrefix sets the prefix of the Redis keys (default
// DefaultLimiterPrefix for a Limiter and a LeaseLimiter, DefaultCounterPrefix for a Counter,
// DefaultLedgerPrefix for a Ledger).
// Use distinct prefixes for distinct applications sharing a Redis. It may
// be empty.
func WithPrefix(prefix string) Option {
	return bothOption(func(c *config) error {
		c.prefix = prefix
		return nil
	})
}

// A LeaseOption configures NewLeaseLimiter.
type LeaseOption interface {
	applyLease(*leaseConfig) error
}

type leaseConfig struct {
	config
	interval time.Duration
	advance  int
	fallback bool
}

func (o bothOption) applyLease(c *leaseConfig) error { return o(&c.config) }

type leaseOption func(*leaseConfig) error

func (o leaseOption) applyLease(c *leaseConfig) error { return o(c) }

// MaxSyncInterval is the longest sync interval WithSyncInterval accepts.
const MaxSyncInterval = time.Minute

// WithSyncInterval sets how long a LeaseLimiter's share of a bucket stays
// usable after it is leased (default DefaultSyncInterval): the longest a
// key used on an instance goes without a Redis command there, and the T
// of the overshoot bound (see LeaseLimiter). A longer interval costs
// fewer commands for keys with little traffic and allows more overshoot.
// It must be positive and at most MaxSyncInterval.
func WithSyncInterval(d time.Duration) LeaseOption {
	return leaseOption(func(c *leaseConfig) error {
		if d <= 0 || d > MaxSyncInterval {
			return fmt.Errorf("%w: redislimit: sync interval %v out of range (0, %v]", apikey.ErrInvalidRequest, d, MaxSyncInterval)
		}
		c.interval = d
		return nil
	})
}

// WithAdvance sets how many requests per key a LeaseLimiter instance
// allows, at most, before Redis has charged them to the key's bucket
// (default DefaultAdvance): a request for a key that has no token in the
// instance's share is allowed at once as an advance, and the call that
// leases the next share charges it (see LeaseLimiter). Each advance
// adds one request per instance to the overshoot bound: a fleet of N
// instances allows at most ceil(T/I) + N×n requests per key beyond the
// limit. With the default of 1, a request for a key without a share (one
// new to the instance, or quiet for a sync interval) does not wait for
// Redis, and the leases of such keys asked for one after another share
// script calls, which is what the lease mode is for, at the price of one
// request per instance in the bound; a request for the key while its
// call is on its way waits for it. More advances serve a key asked for
// again while its lease waits for the batched call. With 0 a request
// without a share waits for its lease, as the exact Limiter's requests
// wait for Redis, and the bound is ceil(T/I). n must not be negative.
//
// Against a small limit the advances weigh more: with the default, two
// instances taking turns on a key limited to 5 a minute allowed 6
// requests before the first refusal, where the Limiter allows 5; the
// bucket being overdrawn, the second refusal then said Retry-After 24 s
// where the Limiter says 12 s. For such limits, use the Limiter, or a
// LeaseLimiter with WithAdvance(0).
func WithAdvance(n int) LeaseOption {
	return leaseOption(func(c *leaseConfig) error {
		if n < 0 {
			return fmt.Errorf("%w: redislimit: advance %d is negative", apikey.ErrInvalidRequest, n)
		}
		c.advance = n
		return nil
	})
}

// WithLocalFallback makes a LeaseLimiter that has no share left and
// cannot lease one (Redis does not answer) apply the limit on its own, in
// this process's memory, instead of returning an error: a fleet of N
// instances then allows up to N times the limit until Redis answers
// again. By default a LeaseLimiter fails closed.
func WithLocalFallback() LeaseOption {
	return leaseOption(func(c *leaseConfig) error {
		c.fallback = true
		return nil
	})
}
